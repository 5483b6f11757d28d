//! The text formats on hand-made input: errors name line and column, lenient keeps good bars.

use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::{Context, Error, Format, Levels, Meter, pattern};

fn beat() -> Format {
    Format::Beat(BeatOptions::default())
}

#[test]
fn strict_error_names_line_and_column() {
    let text = "kh..h. sh..h.s h.s.kh. sh..h.k\nkh..h. sh..x.s h.s.kh. sh..h.k\n";
    let err = beat().decode(text, &Context::default()).unwrap_err();
    assert_eq!(err.position(), Some((2, 12)), "{err}");
}

#[test]
fn levels_read_as_drummers_write_them() {
    let g = beat().decode("kkSh... ... ... ...\n", &Context::default()).unwrap();
    let v: Vec<_> = g.bars[0].hits.iter().map(|h| Levels::THREE.level(h.velocity)).collect();
    assert_eq!(v, [1, 3, 2]);
}

#[test]
fn lenient_keeps_good_bars_and_says_why_others_went() {
    let text = " kh..h. sh..h.s h.s.kh. sh..h.k\r\ngarbage here\nkh..h. sh..h.s h.s\n\nkh..h. sh..h.s h.s.kh. sh..h.k\n";
    let l = beat().decode_lenient(text, &Context::default()).unwrap();
    assert_eq!(l.groove.bars.len(), 2);
    let lines: Vec<_> = l.dropped.iter().map(|e| e.position().unwrap().0).collect();
    // The blank line 4 is reported too: lenient decoding drops no line silently.
    assert_eq!(lines, [2, 3, 4]);
    assert!(l.dropped[1].to_string().contains("cut short"), "{}", l.dropped[1]);
    assert!(l.dropped[2].to_string().contains("a blank line"), "{}", l.dropped[2]);
}

#[test]
fn meter_and_tempo_marks() {
    let mut o = BeatOptions::default();
    o.header = true;
    let text = "#beat grid=16 levels=3 micro=off map=gmd9 tpq=96 meter=4/4 q=100\n\
                k... ... ... ...\n3/4 q=90 k... ... ...\n";
    let g = Format::Beat(o).decode(text, &Context::default()).unwrap();
    assert_eq!(g.ticks_per_quarter, 96);
    assert_eq!(g.bars[1].meter, Meter::new(3, 4).unwrap());
    assert_eq!(g.tempo_at_bar(1).bpm_text(), "90");
    assert_eq!(Format::Beat(o).encode(&g).unwrap(), text);
}

#[test]
fn microtiming_offsets() {
    let mut o = BeatOptions::default();
    o.microtiming = Some(8);
    let g = Format::Beat(o).decode("kh-2... ... ... ...\n", &Context::default()).unwrap();
    assert!(g.bars[0].hits.iter().all(|h| h.offset == -30));
    let err = Format::Beat(o).decode("k+5... ... ... ...\n", &Context::default()).unwrap_err();
    assert!(err.to_string().contains("beyond half a step"), "{err}");
}

#[test]
fn drumroll_matches_the_paper() {
    let g = pattern::rock_groove(2, 120.0).unwrap();
    let text = Format::DRUMROLL.encode(&g).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 16 + 1 + 16 + 1);
    assert_eq!(lines[0], "o--oo-"); // crash, kick, hi-hat
    assert_eq!(lines[4], "--o-o-"); // snare, hi-hat
    assert_eq!(lines[16], "SEP");
    assert_eq!(lines[33], "END");
    let back = Format::DRUMROLL.decode(&text, &g.context()).unwrap();
    assert_eq!(back, Format::DRUMROLL.quantise(&g).unwrap());
}

#[test]
fn exact_is_lossless_for_the_pattern() {
    let bytes = pattern::rock_beat(3, 97.5).unwrap();
    let g = fine_drums_codec::midi::read(&bytes, &fine_drums_codec::midi::ReadOptions::lossless())
        .unwrap();
    let text = Format::EXACT.encode(&g).unwrap();
    assert_eq!(Format::EXACT.decode(&text, &Context::default()).unwrap(), g);
    let err = Format::EXACT.decode("#exact tpq=480\n0:36:100\n", &Context::default()).unwrap_err();
    assert!(matches!(err, Error::Syntax { line: 2, column: 1, .. }), "{err}");
}

#[test]
fn full_map_is_refused_by_the_beat_format() {
    let mut o = BeatOptions::default();
    o.voices = fine_drums_codec::VoiceMap::Full;
    let g = pattern::rock_groove(1, 120.0).unwrap();
    assert!(matches!(Format::Beat(o).encode(&g), Err(Error::Invalid { .. })));
}

/// Line endings and marks that editors and other systems add are read alike in both modes
/// and in every format: CRLF, a leading byte-order mark (the header on line 1 still counts),
/// and blank lines at the end (issue 29, item 13).
#[test]
fn crlf_a_bom_and_trailing_blank_lines_read_in_both_modes() {
    let groove = pattern::rock_groove(2, 100.0).expect("rock");
    let ctx = Context::new(
        480,
        Meter::FOUR_FOUR,
        fine_drums_codec::Tempo::from_bpm(120.0).expect("tempo"),
    );
    for format in [beat(), Format::DRUMROLL, Format::EXACT] {
        let mut beat_header = BeatOptions::default();
        beat_header.header = true;
        let format = if format == beat() { Format::Beat(beat_header) } else { format };
        let text = format.encode(&groove).expect("text");
        let expected = format.decode(&text, &ctx).expect("plain text");
        let crlf = text.replace('\n', "\r\n");
        let bom = format!("\u{feff}{text}");
        let mut variants = vec![crlf, bom];
        if format != Format::EXACT {
            // In the exact format a blank line is an empty bar.
            variants.push(format!("{text}\n\n"));
        }
        for variant in variants {
            let strict = format.decode(&variant, &ctx);
            assert_eq!(
                strict.as_ref().ok(),
                Some(&expected),
                "{}: {variant:?}: {strict:?}",
                format.name()
            );
            let lenient = format.decode_lenient(&variant, &ctx).expect("lenient");
            assert_eq!(lenient.groove, expected, "{}: {variant:?}", format.name());
            assert!(lenient.dropped.is_empty(), "{:?}", lenient.dropped);
        }
    }
}

/// A line that is not UTF-8 is dropped by the exact format's lenient decoding, as by the
/// beat format's, not turned into an empty bar (issue 29, item 13).
#[test]
fn a_line_that_is_not_utf8_is_dropped_in_every_format() {
    let groove = pattern::rock_groove(3, 100.0).expect("rock");
    for format in [beat(), Format::EXACT] {
        let text = format.encode(&groove).expect("text");
        let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        let bad = lines.len() - 2;
        lines[bad] = vec![0xff, 0xfe, b'x'];
        let bytes = lines.join(&b'\n');
        let l = format.decode_lenient_bytes(&bytes, &groove.context()).expect("lenient");
        assert_eq!(l.groove.bars.len(), 2, "{}: the bad line is no bar", format.name());
        assert_eq!(l.dropped.len(), 1, "{:?}", l.dropped);
        assert!(l.dropped[0].to_string().contains("not UTF-8"), "{}", l.dropped[0]);
    }
}

/// A header line of 8 MB is read in one pass: its fields' columns are counted on from the
/// previous one's (issue 29, item 11). Before, each field counted from the line's start.
#[test]
fn a_long_header_line_is_read_in_one_pass() {
    let fields = " grid=16".repeat(1 << 20);
    let text = format!("#beat{fields}\nKh..h. Sh..h. Kh..Kh. Sh..h.\n");
    assert!(text.len() > 8 << 20);
    let groove = beat().decode(&text, &Context::default()).expect("a long but valid header");
    assert_eq!(groove.bars.len(), 1);
    // An error in the last field still names its column.
    let text = format!("#beat{fields} bad\nKh..h. Sh..h. Kh..Kh. Sh..h.\n");
    let e = beat().decode(&text, &Context::default()).expect_err("a bad field");
    assert_eq!(e.position(), Some((1, 5 + fields.len() + 2)), "{e}");
}

/// Messages say what a value may be (issue 29, item 15).
#[test]
fn bad_header_values_say_what_is_allowed() {
    let e = beat().decode("#beat micro=1000000\n", &Context::default()).expect_err("micro");
    assert!(e.to_string().contains("micro=1000000: expected off, or the divisions"), "{e}");
    let e = beat().decode("#beat micro=1\n", &Context::default()).expect_err("micro");
    assert!(e.to_string().contains("2 to 255"), "{e}");
    let e = beat().decode("#beat q=1e9\n", &Context::default()).expect_err("q");
    assert!(e.to_string().contains("too fast") && e.to_string().contains("60,000,000 BPM"), "{e}");
}

/// A groove with no bar encodes to a drumroll of `END` alone, which decodes to no bar (the
/// text_formats fuzz target's round trip found it refused, 2026-12-04; kept as
/// `fuzz/regressions/text_formats/empty-drumroll`).
#[test]
fn an_empty_drumroll_round_trips() {
    let empty = fine_drums_codec::Groove::new(
        480,
        fine_drums_codec::Grid::SIXTEENTH,
        fine_drums_codec::VoiceMap::Paper6,
    );
    let text = Format::DRUMROLL.encode(&empty).expect("text");
    assert_eq!(text, "END\n");
    let back = Format::DRUMROLL.decode(&text, &empty.context()).expect("no bar");
    assert!(back.bars.is_empty());
    // An END after a bar that is cut short is still an error.
    assert!(Format::DRUMROLL.decode("oo----\nEND\n", &Context::default()).is_err());
}

/// A tempo mark of the tempo already in force is not kept as a change: the encoder writes
/// none, and a kept one broke `decode(encode(g)) == g` (the text_formats fuzz target,
/// 2026-12-04).
#[test]
fn a_repeated_tempo_mark_is_no_change() {
    let text = "4/64 t\nq=64 t\nq=64 t\nt\n";
    let groove = beat().decode(text, &Context::default()).expect("bars");
    assert!(groove.bars[2].tempos.is_empty(), "{:?}", groove.bars[2].tempos);
    let again = beat().encode(&groove).expect("text");
    assert_eq!(again, "4/64 t\nq=64 t\nt\nt\n");
    assert_eq!(beat().decode(&again, &groove.context()).expect("bars"), groove);
}
