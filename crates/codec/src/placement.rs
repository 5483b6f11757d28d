//! Placing notes on the grid: which bar and step an absolute tick belongs to, and back.

use crate::error::{Error, Result};
use crate::groove::{Bar, Groove, Hit, Limits, hit_key, in_order};
use crate::primitive::{Pitch, Velocity};
use crate::units::{Grid, Meter, Tempo, TempoChange};
use crate::voice::{Voice, VoiceMap};

/// One note at an absolute position, as MIDI holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Note {
    pub tick: u64,
    pub pitch: Pitch,
    pub velocity: Velocity,
    pub length: u32,
}

/// Division of numbers below 2^32 by a divisor fixed in advance, by one multiplication
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019: with
/// `m = ceil(2^64 / d)`, `n / d == (m * n) >> 64` for every 32-bit `n`). Placing a hit on the
/// grid divides twice, and hardware division was most of the cost of reading a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastDiv {
    d: u64,
    m: u64,
}

impl FastDiv {
    /// A divisor of 1 or more.
    pub fn new(d: u32) -> FastDiv {
        let d = u64::from(d.max(1));
        FastDiv { d, m: if d == 1 { 0 } else { u64::MAX / d + 1 } }
    }

    #[inline]
    pub fn div(self, n: u64) -> u64 {
        if self.d == 1 {
            n
        } else if n <= u64::from(u32::MAX) {
            ((u128::from(self.m) * u128::from(n)) >> 64) as u64
        } else {
            n / self.d
        }
    }
}

/// Builds bars from absolute positions; the one place that decides which bar and step a tick
/// belongs to, so reading MIDI and decoding the exact format agree to the tick.
pub(crate) struct Builder {
    tpq: u16,
    grid: Grid,
    limits: Limits,
    bars: Vec<Bar>,
    starts: Vec<u64>,
    ends: Vec<u64>,
    steps: Vec<u32>,
    /// Meter changes not yet reached, as (tick, meter), latest first.
    pending: Vec<(u64, Meter)>,
    /// The bar of the last position placed: positions mostly come in order.
    cursor: usize,
    /// Hits with their bars, in the order they came; [`Builder::finish`] deals them out.
    hits: Vec<(u32, Hit)>,
    /// Divides by twice the resolution (rounding a tick to its nearest step).
    by_two_tpq: FastDiv,
    /// Divides by the steps per quarter (a step's tick).
    by_grid: FastDiv,
}

impl Builder {
    /// `meters` are (tick, meter) in tick order; a change that falls inside a bar takes
    /// effect at the next bar line.
    pub fn new(
        tpq: u16,
        grid: Grid,
        first: Meter,
        mut meters: Vec<(u64, Meter)>,
        limits: Limits,
    ) -> Result<Builder> {
        if tpq == 0 {
            return Err(Error::invalid("resolution", "0 ticks per quarter note"));
        }
        meters.reverse();
        let mut b = Builder {
            tpq,
            grid,
            limits,
            bars: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            steps: Vec::new(),
            pending: meters,
            cursor: 0,
            hits: Vec::new(),
            by_two_tpq: FastDiv::new(2 * u32::from(tpq)),
            by_grid: FastDiv::new(u32::from(grid.per_quarter())),
        };
        b.push_bar(0, first)?;
        Ok(b)
    }

    fn push_bar(&mut self, start: u64, mut meter: Meter) -> Result<()> {
        while let Some(&(tick, m)) = self.pending.last() {
            if tick > start {
                break;
            }
            meter = m;
            self.pending.pop();
        }
        if self.bars.len() >= self.limits.max_bars {
            return Err(Error::Limit { what: "bars", limit: self.limits.max_bars as u64 });
        }
        let ticks = meter.bar_ticks(self.tpq)?;
        self.steps.push(meter.steps(self.grid)?);
        self.starts.push(start);
        self.ends.push(start + u64::from(ticks));
        self.bars.push(Bar::new(meter));
        Ok(())
    }

    /// Makes room for `hits` hits and the bars up to `last_tick`, so that a file read whole
    /// grows no list as it goes (never beyond the limits).
    pub fn reserve(&mut self, last_tick: u64, hits: usize) {
        let ticks = self.ends[0] - self.starts[0];
        let bars = (last_tick / ticks.max(1)).saturating_add(2).min(self.limits.max_bars as u64);
        let bars = bars as usize;
        self.bars.reserve(bars);
        self.starts.reserve(bars);
        self.ends.reserve(bars);
        self.steps.reserve(bars);
        self.hits.reserve(hits.min(self.limits.max_hits));
    }

    /// Makes sure bar `i` exists.
    pub fn ensure(&mut self, i: usize) -> Result<()> {
        while self.bars.len() <= i {
            let last = self.bars.len() - 1;
            self.push_bar(self.ends[last], self.bars[last].meter)?;
        }
        Ok(())
    }

    /// Adds the silent bars a file keeps before its end at `tick`: every bar that ends at or
    /// before it. A bar the end falls inside of is not added (the end of a track often lands
    /// just past the last release, and the bar it lands in was not played).
    pub fn extend_to_end(&mut self, tick: u64) -> Result<()> {
        let before = self.bars.len();
        // Refused before a bar is built if even the longest bar of any meter still to come
        // would need more bars than the limit (an end of track far out in a hostile file).
        let last = before - 1;
        let mut longest = self.ends[last] - self.starts[last];
        for &(_, m) in &self.pending {
            longest = longest.max(u64::from(m.bar_ticks(self.tpq).unwrap_or(u32::MAX)));
        }
        let fewest = tick.saturating_sub(self.ends[last]) / longest.max(1);
        if fewest.saturating_add(before as u64) > self.limits.max_bars as u64 {
            return Err(Error::Limit { what: "bars", limit: self.limits.max_bars as u64 });
        }
        while self.ends[self.bars.len() - 1] < tick {
            self.ensure(self.bars.len())?;
        }
        let complete = self.ends.partition_point(|&end| end <= tick);
        let keep = complete.max(before);
        self.bars.truncate(keep);
        self.starts.truncate(keep);
        self.ends.truncate(keep);
        self.steps.truncate(keep);
        self.cursor = self.cursor.min(keep - 1);
        Ok(())
    }

    /// The bar holding `tick` (the last that starts at or before it).
    #[inline]
    fn bar_of(&mut self, tick: u64) -> Result<usize> {
        let c = self.cursor;
        if self.starts[c] <= tick && tick < self.ends[c] {
            return Ok(c);
        }
        while tick >= self.ends[self.bars.len() - 1] {
            self.ensure(self.bars.len())?;
        }
        self.cursor = self.starts.partition_point(|&s| s <= tick) - 1;
        Ok(self.cursor)
    }

    pub fn tempo(&mut self, tick: u64, tempo: Tempo) -> Result<()> {
        let b = self.bar_of(tick)?;
        let rel = (tick - self.starts[b]) as u32;
        let tempos = &mut self.bars[b].tempos;
        match tempos.last_mut() {
            Some(last) if last.tick == rel => last.tempo = tempo,
            _ => tempos.push(TempoChange { tick: rel, tempo }),
        }
        Ok(())
    }

    #[inline]
    pub fn hit(&mut self, tick: u64, voice: Voice, velocity: Velocity, length: u32) -> Result<()> {
        if self.hits.len() >= self.limits.max_hits {
            return Err(Error::Limit { what: "hits", limit: self.limits.max_hits as u64 });
        }
        let mut b = self.bar_of(tick)?;
        let rel = tick - self.starts[b];
        let tpq = u64::from(self.tpq);
        // Grid::nearest_step and Grid::step_tick, for a tick at or after the bar's start.
        let step = self.by_two_tpq.div(2 * rel * u64::from(self.grid.per_quarter()) + tpq);
        let (step, offset) = if step >= u64::from(self.steps[b]) {
            self.ensure(b + 1)?;
            b += 1;
            (0, tick as i64 - self.starts[b] as i64)
        } else {
            (step as u32, rel as i64 - self.by_grid.div(step * tpq) as i64)
        };
        self.hits.push((b as u32, Hit { step, offset: offset as i32, voice, velocity, length }));
        Ok(())
    }

    pub fn finish(mut self, voices: VoiceMap) -> Groove {
        if self.hits.is_sorted_by_key(|&(b, _)| b) {
            // Hits placed in time order come in runs, one per bar: copy each run at once.
            for run in self.hits.chunk_by(|a, b| a.0 == b.0) {
                let bar = &mut self.bars[run[0].0 as usize];
                bar.hits = run.iter().map(|&(_, h)| h).collect();
            }
        } else {
            let mut counts = vec![0u32; self.bars.len()];
            for &(b, _) in &self.hits {
                counts[b as usize] += 1;
            }
            for (bar, &n) in self.bars.iter_mut().zip(&counts) {
                bar.hits.reserve_exact(n as usize);
            }
            for &(b, h) in &self.hits {
                self.bars[b as usize].hits.push(h);
            }
        }
        for bar in &mut self.bars {
            if !bar.hits.is_sorted_by(in_order) {
                bar.hits.sort_unstable_by_key(hit_key);
            }
        }
        Groove { ticks_per_quarter: self.tpq, grid: self.grid, voices, bars: self.bars }
    }
}

/// Where a groove's hits are written: their absolute ticks and pitches.
pub(crate) struct Placement {
    tpq: u64,
    /// Divides by the steps per quarter (a step's tick, without a hardware division).
    step_tick: FastDiv,
    pitch: [u8; 256],
}

impl Placement {
    pub fn new(groove: &Groove) -> Placement {
        Placement {
            tpq: u64::from(groove.ticks_per_quarter),
            step_tick: FastDiv::new(u32::from(groove.grid.per_quarter())),
            pitch: groove.voices.pitch_table(),
        }
    }

    /// The tick (never before 0) and pitch of `h`, in a bar that starts at tick `start`.
    #[inline]
    pub fn of(&self, start: i64, h: &Hit) -> (u64, u8) {
        let at = self.step_tick.div(u64::from(h.step) * self.tpq) as i64;
        ((start + at + i64::from(h.offset)).max(0) as u64, self.pitch[h.voice.index()])
    }
}

impl Groove {
    /// Every note at its absolute tick, with the pitch it is written as.
    pub(crate) fn notes(&self) -> Result<Vec<Note>> {
        let mut out = Vec::with_capacity(self.hit_count());
        let place = Placement::new(self);
        let mut start = 0i64;
        for bar in &self.bars {
            for h in &bar.hits {
                let (tick, pitch) = place.of(start, h);
                out.push(Note {
                    tick,
                    pitch: Pitch::new(pitch),
                    velocity: h.velocity,
                    length: h.length,
                });
            }
            start += i64::from(bar.meter.bar_ticks(self.ticks_per_quarter)?);
        }
        Ok(out)
    }
    /// Every tempo change at its absolute tick.
    pub(crate) fn tempo_map(&self) -> Result<Vec<(u64, Tempo)>> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for bar in &self.bars {
            out.extend(bar.tempos.iter().map(|t| (start + u64::from(t.tick), t.tempo)));
            start += u64::from(bar.meter.bar_ticks(self.ticks_per_quarter)?);
        }
        Ok(out)
    }
    fn rebuild(&self, grid: Grid, voices: VoiceMap) -> Result<Groove> {
        let first = self.bars.first().map_or(Meter::FOUR_FOUR, |b| b.meter);
        let mut meters = Vec::new();
        let mut start = 0u64;
        for bar in &self.bars {
            meters.push((start, bar.meter));
            start += u64::from(bar.meter.bar_ticks(self.ticks_per_quarter)?);
        }
        let mut b = Builder::new(self.ticks_per_quarter, grid, first, meters, Limits::default())?;
        if !self.bars.is_empty() {
            b.ensure(self.bars.len() - 1)?;
        }
        for (tick, tempo) in self.tempo_map()? {
            b.tempo(tick, tempo)?;
        }
        for n in self.notes()? {
            if let Some(v) = voices.voice_of(n.pitch) {
                b.hit(n.tick, v, n.velocity, n.length)?;
            }
        }
        Ok(b.finish(voices))
    }
    /// The same notes placed on another grid (hits may move to a neighbouring bar).
    pub fn with_grid(&self, grid: Grid) -> Result<Groove> {
        if grid == self.grid {
            return Ok(self.clone());
        }
        self.rebuild(grid, self.voices)
    }
    /// This groove on `grid` and under `voices`: itself when it already is, else a copy.
    pub(crate) fn on(&self, grid: Grid, voices: VoiceMap) -> Result<std::borrow::Cow<'_, Groove>> {
        if self.grid == grid && self.voices == voices {
            Ok(std::borrow::Cow::Borrowed(self))
        } else {
            Ok(std::borrow::Cow::Owned(self.with_grid(grid)?.with_voices(voices)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::FastDiv;

    proptest! {
        #[test]
        fn fast_division_is_division(d in 1u32.., n in any::<u32>(), big in any::<u64>()) {
            let f = FastDiv::new(d);
            prop_assert_eq!(f.div(u64::from(n)), u64::from(n) / u64::from(d));
            prop_assert_eq!(f.div(big), big / u64::from(d));
        }

    }

    #[test]
    fn fast_division_edges() {
        for d in [1, 2, 3, 7, 120, 960, u32::MAX - 1, u32::MAX] {
            let f = FastDiv::new(d);
            for n in [0, 1, u64::from(d) - 1, u64::from(d), u64::from(u32::MAX), u64::MAX] {
                assert_eq!(f.div(n), n / u64::from(d), "{n} / {d}");
            }
        }
    }
}
