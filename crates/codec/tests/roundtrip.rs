//! Hand-made files for each way a round trip used to lose something, and the departures from
//! the standard that a lenient read accepts.

use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Context, Error, Format, Groove};

use crate::util::{raw_track, smf};

/// encode -> decode (no header: the default context) -> write -> read -> encode gives the same
/// text, in the beat and the exact format; returns the beat text.
fn round_trips(bytes: &[u8]) -> String {
    let mut beat_text = String::new();
    for (format, read) in
        [(beat(), ReadOptions::default()), (Format::EXACT, ReadOptions::lossless())]
    {
        let g = midi::read(bytes, &read).expect("the file reads");
        let text = format.encode(&g).expect("the groove encodes");
        let decoded = format.decode(&text, &Context::default()).expect("its text decodes");
        let written = midi::write(&decoded, &WriteOptions::default()).expect("that writes");
        let again = midi::read(&written, &read).expect("what was written reads");
        assert_eq!(format.encode(&again).expect("and encodes"), text, "{}", format.name());
        if format == beat() {
            beat_text = text;
        }
    }
    beat_text
}

/// A track of one kick at tick 0, ending `end` ticks later (tpq 480, 4/4: 1920 ticks a bar).
fn kick_then_end(end: u32) -> Vec<u8> {
    let mut body = vec![0x00, 0x99, 36, 100, 0x3C, 0x89, 36, 0];
    let rest = end - 60;
    // The end of track's delta as a variable-length number.
    let mut v = vec![(rest & 0x7F) as u8];
    let mut r = rest >> 7;
    while r > 0 {
        v.insert(0, (r & 0x7F) as u8 | 0x80);
        r >>= 7;
    }
    body.extend_from_slice(&v);
    body.extend_from_slice(&[0xFF, 0x2F, 0x00]);
    raw_track(480, &body)
}

fn beat() -> Format {
    Format::Beat(Default::default())
}

fn lenient() -> ReadOptions {
    let mut read = ReadOptions::default();
    read.lenient = true;
    read
}

fn bars(bytes: &[u8]) -> usize {
    midi::read(bytes, &ReadOptions::default()).expect("the file reads").bars.len()
}

#[test]
fn silent_bars_up_to_the_end_of_track_are_kept() {
    // The end on the fifth bar line: five bars, four of them silent.
    let five = kick_then_end(5 * 1920);
    assert_eq!(bars(&five), 5);
    let text = round_trips(&five);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.lines().skip(1).all(|l| !l.contains(|c: char| c.is_ascii_alphabetic())));
    // An end inside a bar does not add that bar; one just past the last note adds none.
    assert_eq!(bars(&kick_then_end(5 * 1920 + 960)), 5);
    assert_eq!(bars(&kick_then_end(100)), 1);
    round_trips(&kick_then_end(5 * 1920 + 960));
}

#[test]
fn an_end_of_track_past_the_bar_limit_is_refused() {
    // One kick, then 15 markers each the longest delta apart (4 billion ticks: 2 million bars
    // of 4/4), then the end of track.
    let mut body = vec![0x00, 0x99, 36, 100, 0x3C, 0x89, 36, 0];
    for _ in 0..15 {
        body.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0x06, 0x00]);
    }
    body.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);
    let err = midi::read(&raw_track(480, &body), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Limit { what: "bars", .. }), "{err}");
    // The limit counts the silent bars: 20 bars are refused under a limit of 10.
    let mut read = ReadOptions::default();
    read.limits.max_bars = 10;
    let err = midi::read(&kick_then_end(20 * 1920), &read).unwrap_err();
    assert!(matches!(err, Error::Limit { what: "bars", limit: 10 }), "{err}");
    read.limits.max_bars = 20;
    assert_eq!(midi::read(&kick_then_end(20 * 1920), &read).unwrap().bars.len(), 20);
}

#[test]
fn a_first_bar_not_in_4_4_carries_its_meter() {
    for (n, log2, mark) in [(5, 2, "5/4 "), (7, 3, "7/8 "), (3, 2, "3/4 ")] {
        let bytes = smf(480, 1, &[(0, 9, 36, 100, 60), (480, 9, 38, 90, 60)], &[], &[(0, n, log2)]);
        let text = round_trips(&bytes);
        assert!(text.starts_with(mark), "{text}");
        // It decodes on its own, in its meter, without a header.
        let g: Groove = beat().decode(&text, &Context::default()).unwrap();
        assert_eq!(g.bars[0].meter.to_string(), mark.trim());
    }
    // 4/4, the default, stays unmarked.
    let bytes = smf(480, 1, &[(0, 9, 36, 100, 60)], &[], &[(0, 4, 2)]);
    assert!(round_trips(&bytes).starts_with('K') || round_trips(&bytes).starts_with('k'));
}

#[test]
fn a_trailing_byte_is_refused_strictly_and_ignored_leniently() {
    let clean = smf(480, 1, &[(0, 9, 36, 100, 60), (480, 9, 38, 90, 60)], &[], &[]);
    let lenient = lenient();
    let expected = midi::read(&clean, &ReadOptions::default()).unwrap();
    // One stray byte, and 20 bytes of junk that look like a chunk header with a huge length.
    for junk in [&[0x00][..], &[0xAB; 20][..]] {
        let mut bytes = clean.clone();
        bytes.extend_from_slice(junk);
        let err = midi::read(&bytes, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::TrailingBytes { byte, count } if byte == clean.len() as u64 && count == junk.len() as u64),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("after the last track") && !message.contains("truncated"));
        // "1 byte ... is", "20 bytes ... are" (issue 29, item 15).
        let counted = if junk.len() == 1 { "1 byte after" } else { "20 bytes after" };
        assert!(message.starts_with(counted) && message.contains("--lenient"), "{message}");
        assert_eq!(midi::read(&bytes, &lenient).unwrap(), expected);
    }
    // A track cut short is still a truncation, named by its track.
    let mut cut = clean.clone();
    cut.truncate(clean.len() - 3);
    let err = midi::read(&cut, &lenient).unwrap_err().to_string();
    assert!(err.contains("truncated") && err.contains("track 0"), "{err}");
}

#[test]
fn running_status_after_a_meta_event_is_read_leniently() {
    // A note-on, a marker meta event, then a note-on in running status (no status byte), then
    // the two releases the same way after a SysEx.
    let body = [
        0x00, 0x99, 36, 100, // note-on, status present
        0x00, 0xFF, 0x06, 0x01, b'A', // marker
        0x00, 38, 90, // running status after the meta event
        0x3C, 0xF0, 0x01, 0xF7, // SysEx
        0x00, 36, 0, // running note-on, velocity 0: the kick's release
        0x00, 38, 0, //
        0x00, 0xFF, 0x2F, 0x00,
    ];
    let bytes = raw_track(480, &body);
    let err = midi::read(&bytes, &ReadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("ended the running status") && err.contains("event 2"), "{err}");
    let lenient = lenient();
    let g = midi::read(&bytes, &lenient).unwrap();
    assert_eq!(g.hit_count(), 2);
    assert!(g.bars[0].hits.iter().all(|h| h.length == 60), "{:?}", g.bars[0].hits);
    // A data byte with no status before it at all keeps the plain message.
    let err = midi::read(&raw_track(480, &[0x00, 36, 100]), &lenient).unwrap_err().to_string();
    assert!(err.contains("no running status"), "{err}");
}

#[test]
fn a_meter_change_inside_a_bar_moves_to_the_next_bar_line_and_then_round_trips() {
    // 4/4, then 3/4 from beat 3 of bar 1 (tick 960): it takes effect at bar 2 (tick 1920).
    let notes =
        [(0, 9, 36, 100, 60), (960, 9, 38, 90, 60), (1920, 9, 36, 100, 60), (3360, 9, 38, 90, 60)];
    let bytes = smf(480, 1, &notes, &[], &[(0, 4, 2), (960, 3, 2)]);
    let g = midi::read(&bytes, &ReadOptions::lossless()).expect("reads");
    let meters: Vec<String> = g.bars.iter().map(|b| b.meter.to_string()).collect();
    assert_eq!(meters, ["4/4", "3/4", "3/4"]);
    let text = round_trips(&bytes);
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("3/4 ")), "{text}");
    let exact = Format::EXACT.encode(&g).expect("encodes");
    assert!(exact.lines().nth(2).is_some_and(|l| l.starts_with("m=3/4")), "{exact}");
}
