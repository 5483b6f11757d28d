//! Distributions of what is played, compared between a system and human drummers, in the
//! spirit of MGEval (Yang & Lerch 2020): histograms of features, compared by overlapping
//! area and Kullback-Leibler divergence.

use fine_drums_codec::{Grid, Groove, Meter};
use serde::{Deserialize, Serialize};

/// A histogram with labelled bins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Histogram {
    /// What each bin holds.
    pub bins: Vec<String>,
    /// Counts per bin.
    pub counts: Vec<f64>,
}

impl Histogram {
    fn new(bins: Vec<String>) -> Histogram {
        let n = bins.len();
        Histogram { bins, counts: vec![0.0; n] }
    }

    fn add(&mut self, bin: usize) {
        if let Some(c) = self.counts.get_mut(bin) {
            *c += 1.0;
        }
    }

    /// The counts scaled to sum to 1 (all zero when empty).
    pub fn normalised(&self) -> Vec<f64> {
        let total: f64 = self.counts.iter().sum();
        self.counts.iter().map(|c| if total > 0.0 { c / total } else { 0.0 }).collect()
    }
}

/// The overlapping area of two histograms, normalised: 1 for identical shapes, 0 for
/// disjoint ones.
pub fn overlap(p: &Histogram, q: &Histogram) -> f64 {
    p.normalised().iter().zip(q.normalised()).map(|(a, b)| a.min(b)).sum()
}

/// KL(p ‖ q) in nats, both normalised, with 1e-6 added to every bin so that a bin `q`
/// never fills costs a large but finite amount.
pub fn kl(p: &Histogram, q: &Histogram) -> f64 {
    const EPS: f64 = 1e-6;
    let smooth = |h: &Histogram| {
        let n = h.normalised();
        let total: f64 = n.iter().map(|x| x + EPS).sum();
        n.into_iter().map(|x| (x + EPS) / total).collect::<Vec<f64>>()
    };
    let (p, q) = (smooth(p), smooth(q));
    p.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum()
}

/// The feature histograms of a set of continuations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Distributions {
    /// Bars counted.
    pub bars: usize,
    /// Mean onsets per bar of each voice.
    pub density: Vec<f64>,
    /// Onsets per voice, as a histogram over voices.
    pub voices: Histogram,
    /// Onsets per bar, in bins of 2.
    pub hits_per_bar: Histogram,
    /// Velocities, in 8 bins of 16.
    pub velocity: Histogram,
    /// Offsets from the grid, in tenths of a 16th step from -0.5 to 0.5.
    pub microtiming: Histogram,
    /// The onset profile: onsets by 16th of the bar (bars in 4/4), one histogram per group of
    /// [`PROFILE_GROUPS`]. It shows where a groove puts its hits: the kicks off the beat, the
    /// hi-hat on odd 16ths.
    #[serde(default)]
    pub onset_profile: Vec<Histogram>,
}

/// The voice groups of [`Distributions::onset_profile`]: kick, snare, hi-hat (closed and
/// open), and every other voice pooled.
pub const PROFILE_GROUPS: [&str; 4] = ["kick", "snare", "hi-hat", "other voices"];

/// The group of [`PROFILE_GROUPS`] a voice named `name` falls in.
fn profile_group(name: &str) -> usize {
    match name {
        "kick" => 0,
        "snare" => 1,
        n if n.contains("hi-hat") => 2,
        _ => 3,
    }
}

/// Histograms of `grooves` (continuation bars only), whose voices are `names`.
pub fn distributions(grooves: &[Groove], names: &[String]) -> Distributions {
    let mut d = Distributions {
        voices: Histogram::new(names.to_vec()),
        hits_per_bar: Histogram::new(
            (0..20)
                .map(|i| format!("{}-{}", 2 * i, 2 * i + 1))
                .chain(["40+".to_string()])
                .collect(),
        ),
        velocity: Histogram::new((0..8).map(|i| format!("{}-{}", 16 * i, 16 * i + 15)).collect()),
        microtiming: Histogram::new(
            (0..10).map(|i| format!("{:+.1}", -0.5 + 0.1 * f64::from(i))).collect(),
        ),
        onset_profile: PROFILE_GROUPS
            .iter()
            .map(|_| Histogram::new((1..=16).map(|i| i.to_string()).collect()))
            .collect(),
        density: vec![0.0; names.len()],
        bars: 0,
    };
    let groups: Vec<usize> = names.iter().map(|n| profile_group(n)).collect();
    for g in grooves {
        let sixteenth = Grid::SIXTEENTH.step_tick(1, g.ticks_per_quarter).max(1) as f64;
        for bar in &g.bars {
            d.bars += 1;
            d.hits_per_bar.add((bar.hits.len() / 2).min(20));
            let common = bar.meter == Meter::FOUR_FOUR;
            for h in &bar.hits {
                let v = h.voice.index();
                if v < d.density.len() {
                    d.density[v] += 1.0;
                    d.voices.add(v);
                    if common && h.step < 16 {
                        d.onset_profile[groups[v]].add(h.step as usize);
                    }
                }
                d.velocity.add(usize::from(h.velocity.as_int()) / 16);
                let frac = f64::from(h.offset) / sixteenth;
                let bin = ((frac + 0.5) * 10.0).floor().clamp(0.0, 9.0) as usize;
                d.microtiming.add(bin);
            }
        }
    }
    if d.bars > 0 {
        for x in &mut d.density {
            *x /= d.bars as f64;
        }
    }
    d
}

/// How close a system's distributions are to the human ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    /// Overlap and KL of the voice histograms.
    pub voices: (f64, f64),
    /// Overlap and KL of onsets per bar.
    pub hits_per_bar: (f64, f64),
    /// Overlap and KL of velocities.
    pub velocity: (f64, f64),
    /// Overlap and KL of microtiming.
    pub microtiming: (f64, f64),
    /// Overlap and KL of the onset profile, per group of [`PROFILE_GROUPS`].
    #[serde(default)]
    pub onset_profile: Vec<(f64, f64)>,
}

/// Compares `system` with `human`: (overlapping area, KL(human ‖ system)) per feature.
pub fn compare(human: &Distributions, system: &Distributions) -> Comparison {
    let both = |a: &Histogram, b: &Histogram| (overlap(a, b), kl(a, b));
    Comparison {
        voices: both(&human.voices, &system.voices),
        hits_per_bar: both(&human.hits_per_bar, &system.hits_per_bar),
        velocity: both(&human.velocity, &system.velocity),
        microtiming: both(&human.microtiming, &system.microtiming),
        onset_profile: human
            .onset_profile
            .iter()
            .zip(&system.onset_profile)
            .map(|(h, s)| both(h, s))
            .collect(),
    }
}
