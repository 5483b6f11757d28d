//! Bad input gets a typed error, never a panic.

use fine_drums_codec::midi::{self, ReadOptions};
use fine_drums_codec::{Error, Limits, Position};

use crate::util::{raw_track, smf};

fn read(bytes: &[u8]) -> Result<fine_drums_codec::Groove, Error> {
    midi::read(bytes, &ReadOptions::default())
}

#[test]
fn empty_file() {
    assert!(matches!(read(b""), Err(Error::Midi { .. })));
}

#[test]
fn not_midi() {
    let err = read(b"RIFX this is not a MIDI file at all").unwrap_err();
    assert!(matches!(err, Error::Midi { at: Position { track: None, .. }, .. }), "{err}");
}

#[test]
fn truncated_header() {
    assert!(matches!(read(b"MThd\0\0\0\x06\0\0"), Err(Error::Midi { .. })));
}

#[test]
fn truncated_track() {
    let mut bytes = smf(480, 1, &[(0, 9, 36, 100, 10), (480, 9, 38, 90, 10)], &[], &[]);
    bytes.truncate(bytes.len() - 5);
    let err = read(&bytes).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn delta_overflow() {
    // 20 deltas of 0x0FFFFFFF ticks each, then a note: past u32::MAX ticks.
    let mut body = Vec::new();
    for _ in 0..20 {
        body.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0x7F, 0xB9, 0x04, 0x10]);
    }
    body.extend_from_slice(&[0x00, 0x99, 36, 100, 0x00, 0xFF, 0x2F, 0x00]);
    let err = read(&raw_track(480, &body)).unwrap_err();
    assert!(matches!(err, Error::TickOverflow { track: 0, .. }), "{err}");
}

/// A broken event inside a well-framed track is named by track, event and byte, not dropped
/// with the rest of the track.
#[test]
fn broken_event_is_named() {
    // Two notes, then a note-on whose velocity byte has its top bit set.
    let body =
        [0x00, 0x99, 36, 100, 0x10, 0x89, 36, 0, 0x10, 0x99, 38, 0x90, 0x00, 0xFF, 0x2F, 0x00];
    let err = read(&raw_track(480, &body)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Midi { at: Position { track: Some(0), event: Some(2), byte: Some(33), .. }, .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("top bit set (byte 11 of the track data)"), "{err}");
}

/// With no drums on the channel read, the error says where the notes are and what to do
/// (issue 29, item 15).
#[test]
fn no_drums() {
    let bytes = smf(480, 1, &[(0, 0, 60, 100, 10), (10, 3, 64, 100, 10)], &[], &[]);
    let err = read(&bytes).unwrap_err();
    assert!(matches!(&err, Error::NoDrums { channel: 10, others } if *others == [1, 4]), "{err:?}");
    assert!(
        err.to_string().contains("channels 1 and 4") && err.to_string().contains("--channel"),
        "{err}"
    );
    let bytes = smf(480, 1, &[(0, 0, 60, 100, 10)], &[], &[]);
    let err = read(&bytes).unwrap_err();
    assert!(err.to_string().contains("channel 1: name it (--channel 1)"), "{err}");
}

/// A track of `events` (delta 0 each) and a drum note on channel 10 and a melody note on
/// channel 1, as raw bytes.
fn track_with(events: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for e in events {
        data.push(0);
        data.extend_from_slice(e);
    }
    for note in [[0x99, 36, 100], [0x89, 36, 0], [0x90, 60, 100], [0x80, 60, 0]] {
        data.push(0);
        data.extend_from_slice(&note);
    }
    data.extend_from_slice(&[0, 0xFF, 0x2F, 0]);
    let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk".to_vec();
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&data);
    bytes
}

/// A GS or XG message that makes channel 10 melodic (and channel 1 the drums) is refused
/// with the reason and the channel to read, not read as drums; one that leaves channel 10
/// the drums changes nothing (issue 29, item 14).
#[test]
fn gs_and_xg_drum_part_changes_are_refused_with_the_channel_to_read() {
    // GS: part 10 (block 0) to normal, part 1 (block 1) to drum map 1.
    let gs_ten_off: &[u8] = &[0xF0, 10, 0x41, 0x10, 0x42, 0x12, 0x40, 0x10, 0x15, 0x00, 0x1B, 0xF7];
    let gs_one_on: &[u8] = &[0xF0, 10, 0x41, 0x10, 0x42, 0x12, 0x40, 0x11, 0x15, 0x01, 0x19, 0xF7];
    let err = read(&track_with(&[gs_ten_off, gs_one_on])).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::DrumPart { channel: 10, standard: fine_drums_codec::Standard::Gs, drums, .. } if drums.as_ref() == [1]),
        "{err:?}"
    );
    assert!(text.contains("--channel 1"), "{text}");
    let mut o = ReadOptions::default();
    o.channel = fine_drums_codec::Channel::new(1);
    let g = midi::read(&track_with(&[gs_ten_off, gs_one_on]), &o).expect("channel 1 is the drums");
    assert_eq!(g.hit_count(), 1);
    // XG: part 9 (channel 10) to normal.
    let xg_ten_off: &[u8] = &[0xF0, 8, 0x43, 0x10, 0x4C, 0x08, 0x09, 0x07, 0x00, 0xF7];
    let err = read(&track_with(&[xg_ten_off])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DrumPart { channel: 10, standard: fine_drums_codec::Standard::Xg, .. }
        ),
        "{err:?}"
    );
    // Only channel 1 made drums too: channel 10 stays the drums.
    assert_eq!(read(&track_with(&[gs_one_on])).expect("drums on 10").hit_count(), 1);
}

/// A time signature whose denominator exponent is past 2^6 is named as it is, not as "0/0"
/// (issue 29, item 15).
#[test]
fn a_huge_meter_denominator_is_named() {
    let bytes = smf(480, 1, &[(0, 9, 36, 100, 10)], &[], &[(0, 4, 255)]);
    let err = read(&bytes).unwrap_err();
    assert!(err.to_string().contains("4/2^255") && !err.to_string().contains("0/0"), "{err}");
}

#[test]
fn another_channel_can_be_named() {
    let bytes = smf(480, 1, &[(0, 0, 36, 100, 10)], &[], &[]);
    let mut o = ReadOptions::default();
    o.channel = fine_drums_codec::Channel::new(1);
    assert_eq!(midi::read(&bytes, &o).unwrap().hit_count(), 1);
}

#[test]
fn smpte_timing() {
    let mut bytes = smf(480, 1, &[(0, 9, 36, 100, 10)], &[], &[]);
    bytes[12] = 0xE7; // -25 fps
    bytes[13] = 40;
    assert!(matches!(read(&bytes), Err(Error::Smpte { fps: 25, subframes: 40 })));
}

/// An SMPTE frame byte of 0x80 (-128 fps) is refused before midly, whose reader negates it
/// and overflows; also inside a RIFF (RMID) wrapper, behind an unknown chunk.
#[test]
fn smpte_minus_128_fps() {
    let mut bytes = smf(480, 1, &[(0, 9, 36, 100, 10)], &[], &[]);
    bytes[12] = 0x80;
    let err = read(&bytes).unwrap_err();
    assert!(matches!(err, Error::Midi { at: Position { track: None, .. }, .. }), "{err}");
    assert!(err.to_string().contains("-128 frames per second"), "{err}");
    let mut smf_data = b"XTRA\0\0\0\x01!".to_vec();
    smf_data.extend_from_slice(&bytes);
    let mut riff = b"RMIDJUNK\x03\0\0\0abc\0data".to_vec();
    riff.extend_from_slice(&(smf_data.len() as u32).to_le_bytes());
    riff.extend_from_slice(&smf_data);
    let mut wrapped = b"RIFF".to_vec();
    wrapped.extend_from_slice(&(riff.len() as u32).to_le_bytes());
    wrapped.extend_from_slice(&riff);
    let err = read(&wrapped).unwrap_err();
    assert!(err.to_string().contains("-128 frames per second"), "{err}");
}

/// Two million note events: reading stops at the hit limit, with memory bounded by it.
#[test]
fn millions_of_events_hit_the_limit() {
    let mut body = Vec::with_capacity(2_000_000 * 4);
    body.extend_from_slice(&[0x00, 0x99, 36, 100]);
    for i in 0..2_000_000u32 {
        // Running status: delta, key, velocity.
        body.extend_from_slice(&[0x01, 36, if i % 2 == 0 { 0 } else { 100 }]);
    }
    body.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);
    let bytes = raw_track(480, &body);
    let mut o = ReadOptions::default();
    o.limits = Limits::default();
    o.limits.max_hits = 10_000;
    let err = midi::read(&bytes, &o).unwrap_err();
    assert!(matches!(err, Error::Limit { what: "hits", limit: 10_000 }), "{err}");
}

/// Millions of controller messages are counted, not stored.
#[test]
fn millions_of_controllers_are_fine() {
    let mut body = vec![0x00, 0x99, 36, 100, 0x00, 0xB9, 0x04, 0x00];
    for _ in 0..2_000_000u32 {
        body.extend_from_slice(&[0x00, 0x04, 0x10]);
    }
    body.extend_from_slice(&[0x00, 0x89, 36, 0, 0x00, 0xFF, 0x2F, 0x00]);
    let (g, report) =
        midi::read_with_report(&raw_track(480, &body), &ReadOptions::default()).unwrap();
    assert_eq!(g.hit_count(), 1);
    assert_eq!(report.controllers, 2_000_001);
}

#[test]
fn a_far_note_hits_the_bar_limit() {
    let bytes = smf(480, 1, &[(0, 9, 36, 100, 10), (200_000_000, 9, 36, 100, 10)], &[], &[]);
    assert!(matches!(read(&bytes), Err(Error::Limit { what: "bars", .. })));
}

#[test]
fn bad_time_signature() {
    let bytes = smf(480, 1, &[(0, 9, 36, 100, 10)], &[], &[(0, 4, 9)]);
    let err = read(&bytes).unwrap_err();
    assert!(err.to_string().contains("track 0, event"), "{err}");
}

/// Byte strings that once looked dangerous; each must give an error, never a panic.
#[test]
fn regressions() {
    let cases: &[&[u8]] = &[
        b"MThd",
        b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x04\0\x99",
        b"MThd\0\0\0\x06\0\x01\0\x02\0\x60MTrk\xff\xff\xff\xff",
        b"MThd\0\0\0\x06\0\0\0\x01\0\0MTrk\0\0\0\x08\0\x99\x24\x64\0\xff\x2f\0",
        b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x07\0\xff\x58\x04\x00\x02\x18",
    ];
    for bytes in cases {
        assert!(read(bytes).is_err(), "{bytes:?}");
    }
}

/// Inputs the fuzz targets crashed on (kept in `fuzz/regressions/`): each must give an
/// error, never a panic.
#[test]
fn fuzz_regressions() {
    use fine_drums_codec::beat::BeatOptions;
    use fine_drums_codec::{Context, Format, TextFormat};
    // text_formats: a header with micro=0 divided by zero at the first offset (2026-12-01).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/text_formats");
    let bytes = std::fs::read(dir.join("micro-zero")).expect("the kept input");
    let text = std::str::from_utf8(&bytes[1..]).expect("UTF-8");
    let beat = Format::default();
    let err = beat.decode(text, &Context::default()).expect_err("micro=0").to_string();
    assert!(err.contains("micro=0: expected off, or the divisions of a step"), "{err}");
    let lenient =
        beat.decode_lenient(text, &Context::default()).expect("the header line is dropped");
    assert!(lenient.dropped.iter().any(|e| e.to_string().contains("divisions of a step")));
    // A header line that does not read changes nothing: the bar after it is in 16ths still.
    let lenient = beat
        .decode_lenient("#beat grid=8 levels=1000\nk.h.h.h ... ... ...\n", &Context::default())
        .expect("lenient");
    assert_eq!((lenient.dropped.len(), lenient.groove.bars.len()), (1, 1), "{:?}", lenient.dropped);
    let exact = Format::EXACT
        .decode_lenient(
            "#exact tpq=96 grid=nonsense\n0:36:100:10 480:38:90:10\n",
            &Context::default(),
        )
        .expect("lenient");
    assert_eq!(exact.groove.ticks_per_quarter, 480);
    for r in [0, 1] {
        let mut o = BeatOptions::default();
        o.microtiming = Some(r);
        let groove = beat.decode("k... ... ... ...\n", &Context::default()).expect("a bar");
        assert!(o.encode(&groove).is_err(), "micro={r}");
        assert!(o.decode("k+0... ... ... ...\n", &Context::default()).is_err(), "micro={r}");
    }
}

/// The beat decoder keeps to the hit limit, strict and lenient: a text that must hold more
/// hits than the limit (a letter a hit at least, two for a ghost) is refused before any bar
/// is built, and one that holds more than it seemed is refused at the bar that passes it.
#[test]
fn the_beat_decoder_keeps_to_the_hit_limit() {
    use fine_drums_codec::beat::BeatOptions;
    use fine_drums_codec::{Context, Format};
    let mut o = BeatOptions::default();
    o.limits.max_hits = 10;
    let format = Format::Beat(o);
    let ctx = Context::default();
    // 48 single hits (4 bars of 12): 24 is more than 10 even counted as ghosts.
    let dense = "kh.h.h.h kh.h.h.h kh.h.h.h kh.h.h.h\n".repeat(4);
    let err = format.decode(&dense, &ctx).expect_err("over the limit");
    assert!(matches!(err, Error::Limit { what: "hits", limit: 10 }), "{err}");
    // Leniently, the bars that fit are kept (none: the first holds 12) and the rest reported.
    let l = format.decode_lenient(&dense, &ctx).expect("what fits");
    assert!(l.groove.bars.is_empty());
    let said = l.dropped.last().map(ToString::to_string).unwrap_or_default();
    assert!(
        said.contains("more than 10 hits: this line and the 3 after it were not read"),
        "{said}"
    );
    // 12 hits in 12 letters: 6 at the least, under the limit, until the bar that makes 12.
    let err = format.decode("k.k.k.k k.k.k.k k.k.k.k ...\n", &ctx).expect_err("12 hits");
    assert!(matches!(err, Error::Limit { what: "hits", limit: 10 }), "{err}");
    assert!(format.decode("k.k.k.k k.k.k.k ..k. ...\n", &ctx).is_ok(), "9 hits are fine");
}

/// The drumroll decoder keeps to the hit limit too (96 hits a bar at most, 100,000 bars).
#[test]
fn the_drumroll_decoder_keeps_to_the_hit_limit() {
    use fine_drums_codec::{Context, Format};
    let mut limits = Limits::default();
    limits.max_hits = 100;
    let format = Format::DRUMROLL.with_limits(limits);
    let bar = "oooooo\n".repeat(16);
    let ctx = Context::default();
    assert!(format.decode(&format!("{bar}END\n"), &ctx).is_ok(), "96 hits");
    let err = format.decode(&format!("{bar}SEP\n{bar}END\n"), &ctx).expect_err("192 hits");
    assert!(matches!(err, Error::Limit { what: "hits", limit: 100 }), "{err}");
}

/// Messages say what is wrong with what was written: the value as given, the character as
/// written (not the first of its bytes), the range a MIDI file can hold.
#[test]
fn messages_name_what_was_written() {
    use fine_drums_codec::{Context, Format};
    let ctx = Context::default();
    let bar = "kh.h.h.h sh.h.h.h kh.h.h.h sh.h.h.h\n";
    let err =
        |text: String| Format::default().decode(&text, &ctx).expect_err("refused").to_string();
    assert_eq!(
        err(format!("#beat levels=1000\n{bar}")),
        "line 1, column 7: levels=1000: expected 1 to 127"
    );
    assert_eq!(
        err(format!("#beat tpq=65535\n{bar}")),
        "line 1, column 7: tpq=65535: a MIDI file holds 1 to 32767 ticks per quarter"
    );
    assert!(Format::default().decode(&format!("#beat tpq=32767\n{bar}"), &ctx).is_ok());
    assert_eq!(
        err("kh.h.h.h sh.h.é.h kh.h.h.h sh.h.h.h\n".into()),
        "line 1, column 15: expected a dot between steps, found 'é'"
    );
}

/// Lenient decoding keeps its promise line by line: every dropped line is reported (blank
/// ones, and ones that are not UTF-8, included), and a limit keeps what came before it.
#[test]
fn lenient_decoding_reports_every_line_and_keeps_what_fits() {
    use fine_drums_codec::beat::BeatOptions;
    use fine_drums_codec::{Context, Format};
    let ctx = Context::default();
    let bar = "kh.h.h.h sh.h.h.h kh.h.h.h sh.h.h.h";
    let mut bytes = format!("{bar}\n\n   \n").into_bytes();
    bytes.extend_from_slice(b"kh.h.h.h s\xffh.h.h.h kh.h.h.h sh.h.h.h\n");
    bytes.extend_from_slice(format!("{bar}\n").as_bytes());
    let l = Format::default().decode_lenient_bytes(&bytes, &ctx).expect("lenient");
    assert_eq!(l.groove.bars.len(), 2);
    let dropped: Vec<String> = l.dropped.iter().map(ToString::to_string).collect();
    assert_eq!(
        dropped,
        [
            "line 2, column 1: a blank line (a bar is a line of beats)",
            "line 3, column 1: a blank line (a bar is a line of beats)",
            "line 4, column 11: not UTF-8 text (byte 0xff)",
        ]
    );
    // One bar repeated past the bar limit: the bars that fit are kept, the rest reported.
    let mut o = BeatOptions::default();
    o.limits.max_bars = 100;
    let text = format!("{bar}\n").repeat(250);
    let l = Format::Beat(o).decode_lenient(&text, &ctx).expect("what fits");
    assert_eq!(l.groove.bars.len(), 100);
    let last = l.dropped.last().map(ToString::to_string).unwrap_or_default();
    assert_eq!(
        last,
        "line 101, column 1: limit exceeded: more than 100 bars: this line and the 149 after it were not read"
    );
    assert!(matches!(Format::Beat(o).decode(&text, &ctx), Err(Error::Limit { what: "bars", .. })));
}

/// An exact note out of range names the field at fault: the tick, the pitch, the velocity
/// or the length.
#[test]
fn exact_notes_name_the_field_at_fault() {
    use fine_drums_codec::{Context, Format};
    let g = fine_drums_codec::midi::read(
        &fine_drums_codec::pattern::rock_beat(1, 100.0).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let text = Format::EXACT.encode(&g).unwrap();
    let ctx = Context::default();
    // The first note word of the first bar, changed one field at a time.
    let word = text.split_whitespace().find(|w| w.split(':').count() == 4).unwrap().to_string();
    let fields: Vec<&str> = word.split(':').collect();
    for (i, value, expected) in [
        (0, "-99999", "is before the start of the piece"),
        (0, "99999999999", "is past the last tick a piece may have"),
        (1, "128", "pitch 128 is not a MIDI note"),
        (2, "0", "velocity 0 is not a note-on velocity"),
        (3, "4294967296", "length 4294967296 is not 0 to 268435455"),
        (3, "4294967295", "length 4294967295 is not 0 to 268435455"),
    ] {
        let mut f = fields.clone();
        f[i] = value;
        let bad = text.replacen(&word, &f.join(":"), 1);
        let err = Format::EXACT.decode(&bad, &ctx).expect_err("out of range").to_string();
        assert!(err.contains(expected), "{err}");
        // Leniently, only that bar's line goes, and the rest writes as MIDI.
        let lenient = Format::EXACT.decode_lenient(&bad, &ctx).unwrap();
        assert_eq!(lenient.dropped.len(), 1, "{bad}");
        assert!(lenient.dropped[0].to_string().contains(expected));
        assert_eq!(lenient.groove.bars.len(), g.bars.len() - 1);
        fine_drums_codec::midi::write(&lenient.groove, &Default::default()).unwrap();
    }
    // A note may not ring past the last tick a piece may have.
    let far = "#exact tpq=480\n4294967290:36:100:200000000\n";
    let err = Format::EXACT.decode(far, &ctx).unwrap_err().to_string();
    assert!(err.contains("ends the note past the last tick"), "{err}");
}

/// midi_read: a second header chunk after the track, with SMPTE timing at -128 fps, made
/// midly negate -128 (a panic where overflow is checked) as it looked for tracks
/// (2026-12-04). Every reader setting now refuses it with the reason.
#[test]
fn a_later_header_at_minus_128_fps_is_refused() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/midi_read/second-header-minus-128"),
    )
    .expect("the kept input");
    let mut lenient = ReadOptions::lossless();
    lenient.lenient = true;
    for options in [ReadOptions::default(), ReadOptions::lossless(), lenient] {
        let err = midi::read(&bytes, &options).unwrap_err();
        assert!(err.to_string().contains("-128 frames per second"), "{err}");
    }
    // The same inside a RIFF (RMID) file.
    let mut riff = b"RIFF\0\0\0\0RMIDdata".to_vec();
    riff.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    riff.extend_from_slice(&bytes);
    let len = (riff.len() - 8) as u32;
    riff[4..8].copy_from_slice(&len.to_le_bytes());
    let err = midi::read(&riff, &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("-128 frames per second"), "{err}");
}
