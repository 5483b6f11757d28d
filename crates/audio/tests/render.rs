//! Rendering grooves: length from bars and tempos, sound where the hits are, bad input named.

use fine_drums_audio::{Error, Kit};
use fine_drums_codec::pattern::rock_groove;
use fine_drums_codec::{
    Bar, Grid, Groove, Hit, Meter, Tempo, TempoChange, Velocity, Voice, VoiceMap,
};

fn kit() -> Kit {
    Kit::built_in(44_100).expect("kit")
}

fn kick(step: u32, velocity: u8) -> Hit {
    Hit { step, offset: 0, voice: Voice::new(0), velocity: Velocity::new(velocity), length: 60 }
}

/// The mean square of `s`.
fn power(s: &[f32]) -> f32 {
    s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32
}

#[test]
fn the_length_follows_every_bar_its_meter_and_its_tempo() {
    // Sixteen bars of 4/4 at 120: 32 s.
    let audio = kit().render(&rock_groove(16, 120.0).unwrap()).unwrap();
    assert_eq!(audio.samples.len(), 32 * 44_100);
    assert!(audio.peak() > 0.3 && audio.peak() <= 0.99, "{}", audio.peak());
    // Two bars at 120 (2 s each), then 60 from the third (4 s each), then a 3/4 bar (3 s).
    let mut g = rock_groove(4, 120.0).unwrap();
    g.bars[2].tempos.push(TempoChange { tick: 0, tempo: Tempo::from_bpm(60.0).unwrap() });
    let mut waltz = Bar::new(Meter::new(3, 4).unwrap());
    waltz.hits.push(kick(0, 100));
    g.bars.push(waltz);
    let audio = kit().render(&g).unwrap();
    assert_eq!(audio.samples.len(), (2 * 2 + 2 * 4 + 3) * 44_100);
}

#[test]
fn a_hit_sounds_at_its_time_and_louder_with_its_velocity() {
    let mut g = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Gmd9);
    g.bars.push(Bar::new(Meter::FOUR_FOUR));
    let mut bar = Bar::new(Meter::FOUR_FOUR);
    bar.hits.push(kick(0, 50));
    bar.hits.push(kick(8, 120));
    g.bars.push(bar);
    // 120 beats a minute by default: the kicks at 2 s and 3 s.
    let s = kit().render(&g).unwrap().samples;
    let sec = 44_100;
    assert_eq!(power(&s[..2 * sec - 10]), 0.0, "silence before the first hit");
    let (soft, loud) =
        (power(&s[2 * sec..2 * sec + sec / 4]), power(&s[3 * sec..3 * sec + sec / 4]));
    assert!(soft > 1e-4 && loud > 2.0 * soft, "{soft} {loud}");
    // A hit 30 ticks late sounds 31 ms later.
    let mut late = g.clone();
    late.bars[1].hits[0].offset = 30;
    let l = kit().render(&late).unwrap().samples;
    let onset = |s: &[f32]| s.iter().position(|x| x.abs() > 1e-3).unwrap();
    assert_eq!(onset(&l) - onset(&s), (30.0 / 480.0 * 0.5 * 44_100.0_f64).round() as usize);
}

#[test]
fn bad_input_is_an_error_that_says_what() {
    assert!(matches!(Kit::built_in(0), Err(Error::Invalid { what: "sample rate", .. })));
    // 500 bars of 4/4 at 30 beats a minute: 4,000 s.
    let mut g = rock_groove(500, 30.0).unwrap();
    let err = kit().render(&g).unwrap_err();
    assert!(matches!(err, Error::TooLong { bar: 451, .. }), "{err}");
    // A pitch the kit has no drum for is left silent and counted.
    g = rock_groove(1, 100.0).unwrap().with_voices(VoiceMap::Full).unwrap();
    let odd = Hit { voice: Voice::new(90), ..g.bars[0].hits[0] };
    g.bars[0].hits.push(odd);
    assert_eq!(kit().render(&g).unwrap().skipped, 1);
}

#[path = "../../../tests/common/soundfont.rs"]
mod soundfont_file;
use soundfont_file::soundfont;

#[test]
#[ignore = "needs a General MIDI SoundFont (FINE_DRUMS_SOUNDFONT, default Debian's timgm6mb-soundfont): cargo test -- --ignored"]
fn a_general_midi_soundfont_plays_every_pitch_in_time() {
    use fine_drums_audio::SoundFont;
    let (_, bytes) = soundfont();
    let font = SoundFont::from_bytes(&bytes).expect("the SoundFont reads");
    // A General MIDI groove, kicks on Acoustic Bass Drum (35): 4 bars at 120, 8 s.
    let mut g = rock_groove(4, 120.0).unwrap().with_voices(VoiceMap::Full).unwrap();
    for h in g.bars.iter_mut().flat_map(|b| b.hits.iter_mut()) {
        if h.voice.index() == 36 {
            h.voice = Voice::new(35);
        }
    }
    let audio = font.render(&g, 44_100).expect("rendered");
    assert_eq!(audio.samples.len(), 8 * 44_100);
    assert!(audio.peak() > 0.05, "{}", audio.peak());
    // Sound from the first hit on, in every bar.
    for bar in 0..4 {
        let s = &audio.samples[bar * 2 * 44_100..(bar * 2 + 1) * 44_100];
        assert!(power(s) > 1e-5, "bar {} is silent", bar + 1);
    }
    // Bytes that are no SoundFont are an error that says so.
    let err = SoundFont::from_bytes(b"RIFF\x04\x00\x00\x00junk").expect_err("not a SoundFont");
    assert!(err.to_string().starts_with("SoundFont: "), "{err}");
    assert!(matches!(font.render(&g, 8_000), Err(Error::Invalid { .. })));
}
