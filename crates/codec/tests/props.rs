//! Property tests: round trips on arbitrary grooves, and decoders that never panic.

use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Format, Grid, Groove, Levels, VoiceMap};
use proptest::prelude::*;

use crate::util::{N, smf};

/// Meter events as (bar, (numerator, log2 denominator)).
type Meters = Vec<(u32, (u8, u8))>;

/// Arbitrary MIDI: resolution, 1-3 tracks, tempo and meter changes, drum notes (and a few
/// on another channel).
fn arb_midi() -> impl Strategy<Value = Vec<u8>> {
    let tpq = prop::sample::select(vec![96u16, 120, 192, 384, 480, 960]);
    (tpq, 1usize..=3).prop_flat_map(|(tpq, tracks)| {
        let span = u32::from(tpq) * 4 * 12;
        let note = (
            0..span,
            prop::sample::select(vec![9u8, 9, 9, 9, 0]),
            0u8..128,
            1u8..128,
            0..u32::from(tpq),
        );
        let notes = prop::collection::vec(note, 1..60);
        let tempos = prop::collection::vec((0..span, 200_000u32..1_500_000), 0..4);
        let meter = (
            0..span / (u32::from(tpq) * 4),
            prop::sample::select(vec![(4u8, 2u8), (3, 2), (6, 3), (5, 2), (7, 3), (2, 1)]),
        );
        let meters = prop::collection::vec(meter, 0..3);
        (notes, tempos, meters).prop_map(move |(mut notes, tempos, meters): (Vec<N>, _, Meters)| {
            if notes.iter().all(|n| n.1 != 9) {
                notes[0].1 = 9;
            }
            let meters: Vec<(u32, u8, u8)> =
                meters.iter().map(|&(bar, (n, d))| (bar * u32::from(tpq) * 4, n, d)).collect();
            smf(tpq, tracks, &notes, &tempos, &meters)
        })
    })
}

fn grid_formats() -> Vec<Format> {
    let mut out = vec![Format::Beat(BeatOptions::default())];
    for (levels, micro, voices, grid, header) in [
        (1, None, VoiceMap::Gmd9, Grid::SIXTEENTH, false),
        (2, Some(4), VoiceMap::Paper6, Grid::EIGHTH, true),
        (3, Some(8), VoiceMap::Gmd9, Grid::SIXTEENTH, true),
        (9, Some(2), VoiceMap::Gmd9, Grid::THIRTY_SECOND, false),
    ] {
        let mut o = BeatOptions::default();
        o.levels = Levels::new(levels).expect("levels in range");
        o.microtiming = micro;
        o.voices = voices;
        o.grid = grid;
        o.header = header;
        out.push(Format::Beat(o));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lossless_roundtrip(bytes in arb_midi()) {
        let g = midi::read(&bytes, &ReadOptions::lossless()).unwrap();
        let text = Format::EXACT.encode(&g).unwrap();
        prop_assert_eq!(&Format::EXACT.decode(&text, &g.context()).unwrap(), &g);
        let written = midi::write(&g, &WriteOptions::default()).unwrap();
        prop_assert_eq!(&midi::read(&written, &ReadOptions::lossless()).unwrap(), &g);
    }

    #[test]
    fn grid_formats_give_the_quantised_groove(bytes in arb_midi()) {
        let g = midi::read(&bytes, &ReadOptions::lossless()).unwrap();
        for format in grid_formats() {
            let text = match format.encode(&g) {
                Ok(t) => t,
                // A meter that is not a whole number of steps on this grid, or a
                // microtiming finer than a tick: refused, never wrong.
                Err(fine_drums_codec::Error::Invalid { .. }) => continue,
                Err(e) => panic!("{e}"),
            };
            let decoded = format.decode(&text, &g.context()).unwrap();
            prop_assert_eq!(&decoded, &format.quantise(&g).unwrap(), "{}", text);
            prop_assert_eq!(format.encode(&decoded).unwrap(), text);
        }
    }

    #[test]
    fn drumroll_gives_the_quantised_groove(bytes in arb_midi()) {
        let mut o = ReadOptions::default();
        o.meter = Some(fine_drums_codec::Meter::FOUR_FOUR);
        let g = midi::read(&bytes, &o);
        // Arbitrary pitches may all fall outside the map.
        prop_assume!(!matches!(g, Err(fine_drums_codec::Error::NoDrums { .. })));
        let g = g.unwrap();
        let text = Format::DRUMROLL.encode(&g).unwrap();
        prop_assert_eq!(Format::DRUMROLL.decode(&text, &g.context()).unwrap(), Format::DRUMROLL.quantise(&g).unwrap());
    }

    #[test]
    fn reading_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = midi::read(&bytes, &ReadOptions::default());
        let mut with_header = b"MThd\0\0\0\x06\0\x01\0\x02\x01\xe0MTrk".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = midi::read(&with_header, &ReadOptions::default());
    }

    #[test]
    fn mangled_midi_never_panics(bytes in arb_midi(), cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = bytes;
        for (i, b) in cuts {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        let _ = midi::read(&bytes, &ReadOptions::default());
    }

    #[test]
    fn decoders_never_panic(text in "[ksholmtcrKSHOLMTCR.+\\- 0-9/q=#\n\r:mxyzSEPEND-]{0,300}") {
        let ctx = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Gmd9).context();
        for format in grid_formats().into_iter().chain([Format::DRUMROLL, Format::EXACT]) {
            let _ = format.decode(&text, &ctx);
            let _ = format.decode_lenient(&text, &ctx);
        }
    }

    #[test]
    fn decoders_never_panic_on_any_string(text in any::<String>()) {
        let ctx = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Gmd9).context();
        for format in grid_formats().into_iter().chain([Format::DRUMROLL, Format::EXACT]) {
            let _ = format.decode(&text, &ctx);
            let _ = format.decode_lenient(&text, &ctx);
        }
    }

    /// Text built straight from the grammar (not by the encoder) always decodes strictly.
    #[test]
    fn well_formed_text_decodes(bars in prop::collection::vec(prop::collection::vec((prop::sample::subsequence(b"ksholmtcr".to_vec(), 0..4), prop::collection::vec(1u8..=3, 4), -4i8..=4), 16), 1..8)) {
        let mut o = BeatOptions::default();
        o.microtiming = Some(8);
        let mut text = String::new();
        for bar in &bars {
            for (s, (voices, levels, off)) in bar.iter().enumerate() {
                if s > 0 { text.push(if s % 4 == 0 { ' ' } else { '.' }); }
                for (v, l) in voices.iter().zip(levels) {
                    let c = char::from(*v);
                    match l { 1 => { text.push(c); text.push(c); } 2 => text.push(c), _ => text.push(c.to_ascii_uppercase()) }
                }
                if !voices.is_empty() && *off != 0 { text.push_str(&format!("{off:+}")); }
            }
            text.push('\n');
        }
        let g = Format::Beat(o).decode(&text, &Default::default()).unwrap();
        prop_assert_eq!(g.bars.len(), bars.len());
        let lenient = Format::Beat(o).decode_lenient(&text, &Default::default()).unwrap();
        prop_assert!(lenient.dropped.is_empty());
    }
}
