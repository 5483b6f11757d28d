//! What grid formats keep of a groove: [`Quantise`] and [`Groove::quantised`].

use crate::error::{Error, Result};
use crate::groove::{Bar, Groove, Hit};
use crate::primitive::Velocity;
use crate::units::{Grid, Levels, TempoChange};
use crate::voice::{Voice, VoiceMap};

/// What grid formats keep of a groove; see [`Groove::quantised`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quantise {
    /// The grid. Default: 16ths.
    pub grid: Grid,
    /// The voice map. Default: `gmd9`.
    pub voices: VoiceMap,
    /// Velocity levels. Default: 3.
    pub levels: Levels,
    /// Microtiming resolution in divisions of a step, or `None` to snap hits to the grid.
    /// Default: `None`.
    pub microtiming: Option<u8>,
}

impl Default for Quantise {
    fn default() -> Quantise {
        Quantise {
            grid: Grid::SIXTEENTH,
            voices: VoiceMap::Gmd9,
            levels: Levels::THREE,
            microtiming: None,
        }
    }
}

impl Groove {
    /// What a grid format keeps of this groove.
    ///
    /// The groove moves to `q.grid` and `q.voices`; in each step, a voice keeps only its
    /// loudest hit; velocities snap to the middle of their level; the hits of a step share
    /// one offset, the mean of theirs rounded to `q.microtiming` divisions of a step (or none);
    /// every note gets [the default length](Groove::default_length); and a bar keeps one tempo,
    /// the one in force on its first tick, written where it changes.
    pub fn quantised(&self, q: &Quantise) -> Result<Groove> {
        let tpq = self.ticks_per_quarter;
        let quantiser = Quantiser::new(q, tpq)?;
        let g = self.on(q.grid, q.voices)?;
        let mut prev_tempo = None;
        let mut bars = Vec::with_capacity(g.bars.len());
        for (bar, tempo) in g.bars.iter().zip(g.start_tempos()) {
            let tempos = if prev_tempo == Some(tempo) {
                Vec::new()
            } else {
                vec![TempoChange { tick: 0, tempo }]
            };
            prev_tempo = Some(tempo);
            let mut hits = Vec::with_capacity(bar.hits.len());
            quantiser.bar(&bar.hits, &mut hits);
            bars.push(Bar { meter: bar.meter, tempos, hits });
        }
        Ok(Groove { ticks_per_quarter: tpq, grid: q.grid, voices: q.voices, bars })
    }
}

/// What [`Groove::quantised`] does to each bar, with its settings worked out once, so that an
/// encoder can quantise bar by bar into one reused buffer.
pub(crate) struct Quantiser {
    microtiming: Option<u8>,
    grid: Grid,
    tpq: u16,
    length: u32,
    /// The velocity each velocity snaps to: the middle of its level.
    snap: [Velocity; 128],
    /// Whether the voice map has at most 16 voices.
    small: bool,
}

impl Quantiser {
    /// Checks the microtiming resolution against the groove's resolution.
    pub fn new(q: &Quantise, tpq: u16) -> Result<Quantiser> {
        if let Some(r) = q.microtiming {
            let fine = u32::from(r) * u32::from(q.grid.per_quarter());
            if r < 2 || fine > u32::from(tpq) {
                return Err(Error::invalid(
                    "microtiming",
                    format!(
                        "{r} divisions per {} step (need 2 or more, and no finer than a tick at {tpq} ticks per quarter)",
                        q.grid
                    ),
                ));
            }
        }
        let mut snap = [Velocity::new(1); 128];
        let mut mid = [Velocity::new(1); 128];
        for level in 1..=q.levels.count() {
            mid[usize::from(level)] = q.levels.velocity(level);
        }
        for (v, s) in snap.iter_mut().enumerate().skip(1) {
            *s = mid[usize::from(q.levels.level(Velocity::new(v as u8)))];
        }
        Ok(Quantiser {
            microtiming: q.microtiming,
            grid: q.grid,
            tpq,
            length: Groove::default_length(tpq, q.grid),
            snap,
            small: q.voices.len() <= 16,
        })
    }

    /// Quantises one bar's hits (already on the target grid and voice map, in [`Bar`]
    /// order) into `out`, after what it holds.
    #[inline]
    pub fn bar(&self, hits: &[Hit], out: &mut Vec<Hit>) {
        if self.small {
            self.bar_small(hits, out);
            return;
        }
        for step_hits in hits.chunk_by(|a, b| a.step == b.step) {
            let first = out.len();
            for h in step_hits {
                match out[first..].iter_mut().find(|k| k.voice == h.voice) {
                    Some(k) if k.velocity < h.velocity => *k = *h,
                    Some(_) => {}
                    None => out.push(*h),
                }
            }
            let kept = &mut out[first..];
            let offset = self.offset(kept.iter().map(|h| h.offset), kept.len());
            for h in kept.iter_mut() {
                self.settle(h, offset);
            }
            kept.sort_unstable_by_key(|h| h.voice);
        }
    }

    /// [`Quantiser::bar`] for maps of at most 16 voices: the loudest hit of each voice in a
    /// step is kept in a slot per voice, and a bit mask gives them back in voice order.
    fn bar_small(&self, hits: &[Hit], out: &mut Vec<Hit>) {
        let mut loudest = [hits.first().copied().unwrap_or(NO_HIT); 16];
        let mut i = 0;
        while let Some(first) = hits.get(i) {
            let step = first.step;
            let mut mask = 0u16;
            while let Some(&h) = hits.get(i).filter(|h| h.step == step) {
                let v = h.voice.index() & 15;
                if mask & (1 << v) == 0 || loudest[v].velocity < h.velocity {
                    loudest[v] = h;
                }
                mask |= 1 << v;
                i += 1;
            }
            let offset = if self.microtiming.is_some() {
                let kept = BitIter(mask).map(|v| loudest[v].offset);
                self.offset(kept, mask.count_ones() as usize)
            } else {
                0
            };
            for v in BitIter(mask) {
                let mut h = loudest[v];
                self.settle(&mut h, offset);
                out.push(h);
            }
        }
    }

    /// The offset a step's kept hits share: the mean of theirs in microtiming divisions.
    #[inline]
    fn offset(&self, offsets: impl Iterator<Item = i32>, n: usize) -> i32 {
        let Some(r) = self.microtiming else { return 0 };
        let sum: i64 = offsets.map(i64::from).sum();
        let mean_num = sum * i64::from(r) * i64::from(self.grid.per_quarter());
        let den = n as i64 * i64::from(self.tpq);
        let half = i64::from(r) / 2;
        let units = div_round(mean_num, den).clamp(-half, half);
        offset_of_units(units, r, self.grid, self.tpq)
    }

    #[inline]
    fn settle(&self, h: &mut Hit, offset: i32) {
        h.offset = offset;
        h.velocity = self.snap[usize::from(h.velocity.as_int())];
        h.length = self.length;
    }
}

const NO_HIT: Hit =
    Hit { step: 0, offset: 0, voice: Voice::new(0), velocity: Velocity::MIN, length: 0 };

/// The indices of the set bits of a mask, lowest first.
struct BitIter(u16);

impl Iterator for BitIter {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

/// Rounds `n / d` to the nearest integer, halves away from zero (`d > 0`).
pub(crate) fn div_round(n: i64, d: i64) -> i64 {
    if n >= 0 { (2 * n + d) / (2 * d) } else { -((-2 * n + d) / (2 * d)) }
}

/// Ticks of `units` microtiming divisions (`r` per step).
pub(crate) fn offset_of_units(units: i64, r: u8, grid: Grid, tpq: u16) -> i32 {
    div_round(units * i64::from(tpq), i64::from(r) * i64::from(grid.per_quarter())) as i32
}

/// Microtiming divisions of an offset in ticks (`r` per step).
pub(crate) fn units_of_offset(offset: i32, r: u8, grid: Grid, tpq: u16) -> i64 {
    div_round(i64::from(offset) * i64::from(r) * i64::from(grid.per_quarter()), i64::from(tpq))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Quantise, Quantiser};
    use crate::groove::{Hit, hit_key};
    use crate::primitive::Velocity;
    use crate::units::{Grid, Levels};
    use crate::voice::{Voice, VoiceMap};

    fn arb_hits(voices: u8) -> impl Strategy<Value = Vec<Hit>> {
        let hit = (0u32..16, -59i32..60, 0..voices, 1u8..128, 0u32..500).prop_map(
            |(step, offset, voice, velocity, length)| Hit {
                step,
                offset,
                voice: Voice::new(voice),
                velocity: Velocity::new(velocity),
                length,
            },
        );
        proptest::collection::vec(hit, 0..40).prop_map(|mut hits| {
            hits.sort_by_key(hit_key);
            hits
        })
    }

    proptest! {
        /// The slot-per-voice path for small maps keeps what the general path keeps.
        #[test]
        fn both_quantiser_paths_agree(hits in arb_hits(9), micro in prop::option::of(2u8..9), levels in 1u8..10) {
            let q = Quantise {
                grid: Grid::SIXTEENTH,
                voices: VoiceMap::Gmd9,
                levels: Levels::new(levels).unwrap(),
                microtiming: micro,
            };
            let mut quantiser = Quantiser::new(&q, 480).unwrap();
            let (mut small, mut general) = (Vec::new(), Vec::new());
            quantiser.bar(&hits, &mut small);
            quantiser.small = false;
            quantiser.bar(&hits, &mut general);
            prop_assert_eq!(small, general);
        }
    }
}
