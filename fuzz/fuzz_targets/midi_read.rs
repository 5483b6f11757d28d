//! MIDI bytes into a groove, as every reader setting takes them (strict and lenient); what
//! reads is written and read again, strictly, and must come back the same:
//! `read(write(g)) == g` for every `g` that `read` accepts, but for one thing MIDI cannot
//! say: which release ends which of two overlapping notes of one pitch, so that their lengths
//! may come back paired otherwise (and, as a groove runs to its last release, the silent bars
//! at its end with them). A second round trip is then exact, lengths and all.
#![no_main]

use fine_drums_codec::Groove;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};

/// The groove with every length 0 and no silent bar at its end: what survives any pairing of
/// releases.
fn without_lengths(g: &Groove) -> Groove {
    let mut g = g.clone();
    while g.bars.last().is_some_and(|b| b.hits.is_empty() && b.tempos.is_empty()) {
        g.bars.pop();
    }
    for bar in &mut g.bars {
        for hit in &mut bar.hits {
            hit.length = 0;
        }
    }
    g
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut lenient = ReadOptions::lossless();
    lenient.lenient = true;
    for options in [ReadOptions::default(), ReadOptions::lossless(), lenient] {
        let Ok(groove) = midi::read(data, &options) else { continue };
        let mut write = WriteOptions::default();
        write.channel = options.channel;
        let mut strict = options;
        strict.lenient = false;
        // A groove the writer refuses (a gap past MIDI's longest delta time) is a typed
        // error, not a round trip.
        let round_trip = |g: &Groove| -> Option<Groove> {
            let bytes = midi::write(g, &write).ok()?;
            match midi::read(&bytes, &strict) {
                Ok(back) => Some(back),
                Err(e) => panic!("a written groove does not read back: {e}"),
            }
        };
        let Some(back) = round_trip(&groove) else { continue };
        assert!(
            without_lengths(&back) == without_lengths(&groove),
            "read(write(g)) != g, beyond lengths, with {options:?}"
        );
        if let Some(again) = round_trip(&back) {
            assert!(again == back, "a second round trip changed the groove: {options:?}");
        }
    }
});
