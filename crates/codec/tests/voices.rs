//! The voice maps' pitch tables, pinned.

use fine_drums_codec::{Pitch, VoiceMap};

/// Each pitch's gmd9 letter, 16 pitches a row, `.` for a dropped pitch: the Roland TD-11
/// assignments of the GMD's kit (22, 26, 58; 45 the mid tom, 43 the floor tom) and every
/// General MIDI percussion pitch from 27 to 87 where Magenta's drum-type table puts it.
#[test]
fn gmd9_covers_every_general_midi_percussion_pitch() {
    let rows = [
        "................",
        "......h...osslts",
        "ssskksssslhlhmom",
        "tctrcrhcsclrmltm",
        "lssohhhhohostmho",
        "hortlsmm........",
        "................",
        "................",
    ];
    let map = VoiceMap::Gmd9;
    let got: Vec<String> = (0..8)
        .map(|r| {
            (0..16)
                .map(|c| {
                    let voice = map.voice_of(Pitch::new(r * 16 + c));
                    voice.and_then(|v| map.letter(v)).map_or('.', char::from)
                })
                .collect()
        })
        .collect();
    assert_eq!(got, rows);
    // Each voice is still written with its GMD pitch.
    let written: Vec<u8> =
        (0..9).map(|v| map.pitch_of(fine_drums_codec::Voice::new(v)).as_int()).collect();
    assert_eq!(written, [36, 38, 42, 46, 43, 47, 50, 49, 51]);
}

/// What a map cannot take is counted by pitch, so that the tools can say what they dropped.
#[test]
fn unmapped_counts_the_hits_a_map_drops() {
    use fine_drums_codec::{Bar, Grid, Groove, Hit, Meter, Velocity, Voice};
    let mut g = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Full);
    let mut bar = Bar::new(Meter::FOUR_FOUR);
    for (step, pitch) in [(0, 35), (1, 90), (2, 90), (3, 20), (4, 41)] {
        let velocity = Velocity::new(100);
        bar.hits.push(Hit { step, offset: 0, voice: Voice::new(pitch), velocity, length: 60 });
    }
    g.bars.push(bar);
    let counts = g.unmapped(VoiceMap::Gmd9);
    let dropped: Vec<(usize, u32)> =
        (0..128).filter(|&p| counts[p] > 0).map(|p| (p, counts[p])).collect();
    assert_eq!(dropped, [(20, 1), (90, 2)]);
    assert_eq!(g.with_voices(VoiceMap::Gmd9).expect("gmd9").bars[0].hits.len(), 2);
}
