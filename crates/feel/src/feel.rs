//! The feel table, how it is learned, and how it humanises bars.

use std::collections::BTreeMap;

use fine_drums_codec::{Groove, Levels, Velocity};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::random;

/// Velocity bins of 4 (1-3, 4-7, ... 124-127).
const VELOCITY_BINS: usize = 32;
/// Offset bins of 1/40 of a step, from -1/2 to 1/2.
const OFFSET_BINS: usize = 40;
/// Hits a class needs before its own histogram is used instead of its voice's.
const ENOUGH: u32 = 20;
/// How much of the learned spread a hit copied from the prompt gets.
const SPREAD: f64 = 0.25;
/// Hits of a class the prompt needs before its mean shifts the feel.
const PROMPT_ENOUGH: usize = 2;

/// Velocity and offset histograms of one class of hits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Class {
    velocity: Vec<u32>,
    offset: Vec<u32>,
}

impl Default for Class {
    fn default() -> Class {
        Class { velocity: vec![0; VELOCITY_BINS], offset: vec![0; OFFSET_BINS] }
    }
}

impl Class {
    fn count(&self) -> u32 {
        self.velocity.iter().sum()
    }

    fn add(&mut self, other: &Class) {
        self.velocity.iter_mut().zip(&other.velocity).for_each(|(a, b)| *a += b);
        self.offset.iter_mut().zip(&other.offset).for_each(|(a, b)| *a += b);
    }

    /// The mean offset in steps and the mean velocity.
    fn means(&self) -> (f64, f64) {
        let n = f64::from(self.count().max(1));
        let off: f64 =
            self.offset.iter().enumerate().map(|(i, &c)| offset_of(i) * f64::from(c)).sum();
        let vel: f64 = self
            .velocity
            .iter()
            .enumerate()
            .map(|(i, &c)| (4.0 * i as f64 + 2.0) * f64::from(c))
            .sum();
        (off / n, vel / n)
    }
}

/// The centre of offset bin `i`, in steps.
fn offset_of(i: usize) -> f64 {
    -0.5 + (i as f64 + 0.5) / OFFSET_BINS as f64
}

/// A bin drawn from `counts` (which hold at least one hit) with `u` in `[0, 1)`.
fn draw(counts: &[u32], u: f64) -> usize {
    let total: u32 = counts.iter().sum();
    let mut target = (u * f64::from(total)) as u32;
    for (i, &c) in counts.iter().enumerate() {
        if target < c {
            return i;
        }
        target -= c;
    }
    counts.len() - 1
}

/// The class of a hit: its voice, its 16th in the bar (mod 16) and its loudness level.
fn key(voice: usize, step: u32, level: u8) -> String {
    format!("{voice}/{}/{level}", step % 16)
}

/// How drummers play the hits a model writes: velocity and microtiming by voice, step and
/// loudness level, learned from performances.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feel {
    /// The loudness levels the classes are keyed by.
    levels: u8,
    /// Histograms by class (`voice/step/level`).
    classes: BTreeMap<String, Class>,
}

impl Feel {
    /// Learns from `grooves`: performances on a 16th grid, with their offsets and velocities
    /// as played, in the voice map the model writes.
    pub fn learn<'a>(grooves: impl IntoIterator<Item = &'a Groove>, levels: Levels) -> Feel {
        let mut classes: BTreeMap<String, Class> = BTreeMap::new();
        for g in grooves {
            let step = sixteenth(g);
            for bar in &g.bars {
                for h in &bar.hits {
                    let class = classes
                        .entry(key(h.voice.index(), h.step, levels.level(h.velocity)))
                        .or_default();
                    let v = usize::from(h.velocity.as_int()) / 4;
                    class.velocity[v.min(VELOCITY_BINS - 1)] += 1;
                    let frac = f64::from(h.offset) / step + 0.5;
                    let bin =
                        (frac * OFFSET_BINS as f64).floor().clamp(0.0, OFFSET_BINS as f64 - 1.0);
                    class.offset[bin as usize] += 1;
                }
            }
        }
        Feel { levels: levels.count(), classes }
    }

    /// The feel learned from the GMD's train split (see `table/README.md`).
    pub fn gmd() -> Feel {
        // Checked by a test; a damaged build file would show there first.
        Feel::from_json(include_str!("../table/gmd-train.json")).unwrap_or_default()
    }

    /// Reads a feel written by [`to_json`](Feel::to_json).
    pub fn from_json(text: &str) -> Result<Feel> {
        let feel: Feel = serde_json::from_str(text)?;
        Levels::new(feel.levels).map_err(|e| Error::Table(e.to_string()))?;
        let bad = feel
            .classes
            .iter()
            .find(|(_, c)| c.velocity.len() != VELOCITY_BINS || c.offset.len() != OFFSET_BINS);
        if let Some((k, _)) = bad {
            return Err(Error::Table(format!("class {k} has the wrong number of bins")));
        }
        Ok(feel)
    }

    /// The feel as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether it learned anything.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Gives the hits of `new` (on the grid, in the voice map the feel was learned in) a
    /// drummer's velocity and microtiming, drawn with `seed`, shifted towards the feel of
    /// `prompt` (the same voices, as played). A hit on the first beat of `new` is not moved
    /// before its start.
    pub fn humanise(&self, new: &mut Groove, prompt: &Groove, seed: u64) {
        self.humanise_by(new, prompt, seed, 1.0);
    }

    /// [`humanise`](Feel::humanise) by `amount`, 0 to 1: each hit moves that share of the
    /// way from where it is (on the grid, at its level's velocity) to where the feel puts
    /// it. 0 leaves `new` as it is; 1 is [`humanise`](Feel::humanise). The same seed
    /// draws the same, whatever the amount.
    pub fn humanise_by(&self, new: &mut Groove, prompt: &Groove, seed: u64, amount: f64) {
        let amount = if amount.is_finite() { amount.clamp(0.0, 1.0) } else { 1.0 };
        let Ok(levels) = Levels::new(self.levels) else { return };
        if self.is_empty() {
            return;
        }
        // Each voice's hits at all steps and levels, for classes too rare to stand alone.
        let mut by_voice: BTreeMap<usize, Class> = BTreeMap::new();
        for (k, c) in &self.classes {
            let voice = k.split('/').next().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
            by_voice.entry(voice).or_default().add(c);
        }
        let shifts = Shifts::of(self, prompt, levels);
        // What the prompt's drummer played at each class: (offset in steps, velocity).
        let prompt_step = sixteenth(prompt);
        let mut played: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for h in prompt.bars.iter().flat_map(|b| &b.hits) {
            let k = key(h.voice.index(), h.step, levels.level(h.velocity));
            let v = f64::from(h.velocity.as_int());
            played.entry(k).or_default().push((f64::from(h.offset) / prompt_step, v));
        }
        let mut rng = random::seeded(seed);
        let step = sixteenth(new);
        for (b, bar) in new.bars.iter_mut().enumerate() {
            for h in &mut bar.hits {
                let (voice, level) = (h.voice.index(), levels.level(h.velocity));
                let own = self.classes.get(&key(voice, h.step, level));
                let class = match own {
                    Some(c) if c.count() >= ENOUGH => c,
                    _ => match by_voice.get(&voice) {
                        Some(c) => c,
                        None => continue,
                    },
                };
                let (v_draw, off_draw) = (
                    draw(&class.velocity, random::unit(&mut rng)) as f64 * 4.0
                        + 4.0 * random::unit(&mut rng),
                    offset_of(draw(&class.offset, random::unit(&mut rng)))
                        + (random::unit(&mut rng) - 0.5) / OFFSET_BINS as f64,
                );
                let (v, frac) = match played.get(&key(voice, h.step, level)) {
                    // The prompt's drummer played this class: one of theirs, with some of the
                    // learned spread around it.
                    Some(hits) => {
                        let i = ((random::unit(&mut rng) * hits.len() as f64) as usize)
                            .min(hits.len() - 1);
                        let (mean_off, mean_vel) = class.means();
                        (
                            hits[i].1 + SPREAD * (v_draw - mean_vel),
                            hits[i].0 + SPREAD * (off_draw - mean_off),
                        )
                    }
                    None => {
                        let (d_off, d_vel) = shifts.get(voice, h.step, level);
                        (v_draw + d_vel, off_draw + d_off)
                    }
                };
                let (v0, off0) = (f64::from(h.velocity.as_int()), f64::from(h.offset) / step);
                let (v, frac) = (v0 + amount * (v - v0), off0 + amount * (frac - off0));
                h.velocity = Velocity::new(v.round().clamp(1.0, 127.0) as u8);
                h.offset = (frac.clamp(-0.5, 0.49) * step).round() as i32;
                if b == 0 && h.step == 0 {
                    // Nothing before the groove's start.
                    h.offset = h.offset.max(0);
                }
            }
        }
    }
}

/// A 16th in ticks of `g`.
fn sixteenth(g: &Groove) -> f64 {
    (f64::from(g.ticks_per_quarter) / 4.0).max(1.0)
}

/// How the prompt's drummer differs from the learned ones: per voice and step of the beat,
/// the offset; per voice and level, the velocity.
struct Shifts {
    offset: BTreeMap<(usize, u32), f64>,
    velocity: BTreeMap<(usize, u8), f64>,
}

impl Shifts {
    fn of(feel: &Feel, prompt: &Groove, levels: Levels) -> Shifts {
        let step = sixteenth(prompt);
        let mut offsets: BTreeMap<(usize, u32), Vec<f64>> = BTreeMap::new();
        let mut velocities: BTreeMap<(usize, u8), Vec<f64>> = BTreeMap::new();
        let mut learned_off: BTreeMap<(usize, u32), Class> = BTreeMap::new();
        let mut learned_vel: BTreeMap<(usize, u8), Class> = BTreeMap::new();
        for bar in &prompt.bars {
            for h in &bar.hits {
                let (voice, level) = (h.voice.index(), levels.level(h.velocity));
                offsets.entry((voice, h.step % 4)).or_default().push(f64::from(h.offset) / step);
                velocities.entry((voice, level)).or_default().push(f64::from(h.velocity.as_int()));
            }
        }
        for (k, c) in &feel.classes {
            let parts: Vec<u32> = k.split('/').filter_map(|p| p.parse().ok()).collect();
            if let [voice, s, level] = parts[..] {
                let voice = voice as usize;
                learned_off.entry((voice, s % 4)).or_default().add(c);
                learned_vel.entry((voice, level as u8)).or_default().add(c);
            }
        }
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
        let offset = offsets
            .iter()
            .filter(|(_, xs)| xs.len() >= PROMPT_ENOUGH)
            .filter_map(|(k, xs)| learned_off.get(k).map(|c| (*k, mean(xs) - c.means().0)))
            .collect();
        let velocity = velocities
            .iter()
            .filter(|(_, xs)| xs.len() >= PROMPT_ENOUGH)
            .filter_map(|(k, xs)| learned_vel.get(k).map(|c| (*k, mean(xs) - c.means().1)))
            .collect();
        Shifts { offset, velocity }
    }

    fn get(&self, voice: usize, step: u32, level: u8) -> (f64, f64) {
        (
            self.offset.get(&(voice, step % 4)).copied().unwrap_or(0.0),
            self.velocity.get(&(voice, level)).copied().unwrap_or(0.0),
        )
    }
}
