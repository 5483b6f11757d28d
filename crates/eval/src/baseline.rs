//! Simple systems to compare with: repeat the prompt, and random hits at human density.

use fine_drums_codec::{Bar, Groove, Hit, Velocity, Voice};
use rand_core::Rng;
use serde::{Deserialize, Serialize};

/// The prompt's bars played again and again: `bars` of them.
pub fn repeat(prompt: &Groove, bars: usize) -> Groove {
    let mut g = Groove { bars: Vec::with_capacity(bars), ..prompt.clone() };
    if prompt.bars.is_empty() {
        return g;
    }
    for i in 0..bars {
        let mut bar = prompt.bars[i % prompt.bars.len()].clone();
        bar.tempos.clear();
        g.bars.push(bar);
    }
    g
}

/// How often each voice plays at each step of a 4/4 bar, and at what velocities: what
/// [`random`] draws from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Density {
    /// `p[voice][step]`: the chance of an onset.
    pub p: Vec<Vec<f64>>,
    /// Velocities seen, to draw from.
    pub velocities: Vec<u8>,
}

impl Density {
    /// Counts `grooves` (all on one grid, bars of `steps` steps; other bars are skipped).
    pub fn of(grooves: &[Groove], voices: usize, steps: usize) -> Density {
        let mut counts = vec![vec![0usize; steps]; voices];
        let mut velocities = Vec::new();
        let mut bars = 0usize;
        for g in grooves {
            for bar in &g.bars {
                if bar.meter.steps(g.grid).ok() != Some(steps as u32) {
                    continue;
                }
                bars += 1;
                for h in &bar.hits {
                    if let Some(c) =
                        counts.get_mut(h.voice.index()).and_then(|v| v.get_mut(h.step as usize))
                    {
                        *c += 1;
                        velocities.push(h.velocity.as_int());
                    }
                }
            }
        }
        let p = counts
            .into_iter()
            .map(|v| {
                v.into_iter()
                    .map(|c| if bars == 0 { 0.0 } else { c as f64 / bars as f64 })
                    .collect()
            })
            .collect();
        Density { p, velocities }
    }
}

/// `bars` bars like `template`'s last bar (meter, grid, voices), each step of each voice
/// struck with its chance in `density`, at a velocity drawn from those seen. `rng` is any
/// seeded generator (the `evaluate` protocol uses SplitMix64 from `rand_xoshiro`).
pub fn random(
    template: &Groove,
    density: &Density,
    bars: usize,
    rng: &mut (impl Rng + ?Sized),
) -> Groove {
    let mut g = Groove { bars: Vec::with_capacity(bars), ..template.clone() };
    let meter = template.bars.last().map(|b| b.meter).unwrap_or_default();
    let length = Groove::default_length(g.ticks_per_quarter, g.grid);
    for _ in 0..bars {
        let mut bar = Bar::new(meter);
        let steps = meter.steps(g.grid).unwrap_or(16) as usize;
        for step in 0..steps {
            for (v, p) in density.p.iter().enumerate() {
                if unit(rng) < p.get(step).copied().unwrap_or(0.0) {
                    let vel = density
                        .velocities
                        .get(below(rng, density.velocities.len() as u64) as usize)
                        .copied()
                        .unwrap_or(80);
                    bar.hits.push(Hit {
                        step: step as u32,
                        offset: 0,
                        voice: Voice::new(v as u8),
                        velocity: Velocity::new(vel.max(1)),
                        length,
                    });
                }
            }
        }
        g.bars.push(bar);
    }
    g
}

/// A number in `[0, 1)` from the top 53 bits of the generator's next number.
fn unit(rng: &mut (impl Rng + ?Sized)) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A number in `0..n` (`n` > 0), by multiplying rather than by a biased remainder.
fn below(rng: &mut (impl Rng + ?Sized), n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n.max(1))) >> 64) as u64
}
