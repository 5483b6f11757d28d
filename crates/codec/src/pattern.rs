//! Small grooves made by code, for examples, tests and a first run with no data at hand.

use crate::error::Result;
use crate::groove::{Bar, Groove, Hit};
use crate::midi;
use crate::primitive::Velocity;
use crate::units::{Grid, Meter, Tempo, TempoChange};
use crate::voice::{Voice, VoiceMap};

const KICK: Voice = Voice::new(0);
const SNARE: Voice = Voice::new(1);
const HAT: Voice = Voice::new(2);
const CRASH: Voice = Voice::new(7);

fn hit(step: u32, voice: Voice, velocity: u8) -> Hit {
    Hit { step, offset: 0, voice, velocity: Velocity::new(velocity), length: 60 }
}

/// A straight rock beat at `bpm`, 4/4, 480 ticks per quarter, as a gmd9 [`Groove`]: accented
/// kick on 1, 3 and the "and" of 3, accented snare on 2 and 4, hi-hat on every eighth, a
/// ghost snare before beat 4 in every other bar, and a crash on the first downbeat.
pub fn rock_groove(bars: usize, bpm: f64) -> Result<Groove> {
    let mut g = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Gmd9);
    for i in 0..bars {
        let mut bar = Bar::new(Meter::FOUR_FOUR);
        if i == 0 {
            bar.tempos.push(TempoChange { tick: 0, tempo: Tempo::from_bpm(bpm)? });
        }
        for step in (0..16).step_by(2) {
            if step % 8 == 0 {
                bar.hits.push(hit(step, KICK, 112));
            }
            if step % 8 == 4 {
                bar.hits.push(hit(step, SNARE, 108));
            }
            if step == 10 {
                bar.hits.push(hit(step, KICK, 100));
            }
            bar.hits.push(hit(step, HAT, 72));
            if i == 0 && step == 0 {
                bar.hits.push(hit(step, CRASH, 104));
            }
        }
        if i % 2 == 1 {
            bar.hits.push(hit(11, SNARE, 30));
        }
        bar.hits.sort_by_key(crate::groove::hit_key);
        g.bars.push(bar);
    }
    Ok(g)
}

/// [`rock_groove`] as the bytes of a Standard MIDI File.
pub fn rock_beat(bars: usize, bpm: f64) -> Result<Vec<u8>> {
    midi::write(&rock_groove(bars, bpm)?, &midi::WriteOptions::default())
}
