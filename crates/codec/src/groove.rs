//! The model of a groove that every format goes through.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::primitive::{Pitch, Velocity};
use crate::voice::{Voice, VoiceMap};

/// A time signature: `numerator` beats of a `1/denominator` note per bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Meter {
    numerator: u8,
    denominator: u8,
}

impl Meter {
    /// Common time, 4/4.
    pub const FOUR_FOUR: Meter = Meter { numerator: 4, denominator: 4 };

    /// A meter; the denominator must be a power of two from 1 to 64.
    pub fn new(numerator: u8, denominator: u8) -> Result<Meter> {
        if numerator == 0 || !denominator.is_power_of_two() || denominator > 64 {
            return Err(Error::invalid(
                "meter",
                format!(
                    "{numerator}/{denominator} (need a numerator of 1 or more and a power-of-two denominator up to 64)"
                ),
            ));
        }
        Ok(Meter { numerator, denominator })
    }

    /// Beats per bar.
    pub fn numerator(self) -> u8 {
        self.numerator
    }

    /// The note value of a beat (4 for a quarter note).
    pub fn denominator(self) -> u8 {
        self.denominator
    }

    /// Whether this is 4/4.
    pub fn is_four_four(self) -> bool {
        self == Meter::FOUR_FOUR
    }

    /// The length of a bar in ticks at `ticks_per_quarter`, if whole.
    #[inline]
    pub fn bar_ticks(self, ticks_per_quarter: u16) -> Result<u32> {
        let whole = u32::from(ticks_per_quarter) * 4 * u32::from(self.numerator);
        // The denominator is a power of two: shifts and masks, not divisions (this runs for
        // every bar read or written).
        let shift = self.denominator.trailing_zeros();
        if whole & ((1 << shift) - 1) != 0 {
            return Err(Error::invalid(
                "meter",
                format!(
                    "a {self} bar is not a whole number of ticks at {ticks_per_quarter} ticks per quarter"
                ),
            ));
        }
        Ok(whole >> shift)
    }

    /// The number of grid steps in a bar, if whole.
    #[inline]
    pub fn steps(self, grid: Grid) -> Result<u32> {
        let whole = u32::from(grid.per_quarter()) * 4 * u32::from(self.numerator);
        let shift = self.denominator.trailing_zeros();
        if whole & ((1 << shift) - 1) != 0 {
            return Err(Error::invalid(
                "grid",
                format!("a {self} bar is not a whole number of {grid} steps"),
            ));
        }
        Ok(whole >> shift)
    }

    /// How many steps a beat group holds in the text formats: a beat of the denominator
    /// when that is whole, else a quarter note, else the whole bar.
    pub fn group_steps(self, grid: Grid) -> Result<u32> {
        let bar = self.steps(grid)?;
        let per_quarter = u32::from(grid.per_quarter());
        let beat = per_quarter * 4 / u32::from(self.denominator);
        Ok(if per_quarter * 4 % u32::from(self.denominator) == 0 && beat > 0 && bar % beat == 0 {
            beat
        } else if bar % per_quarter == 0 {
            per_quarter
        } else {
            bar
        })
    }
}

impl Default for Meter {
    fn default() -> Meter {
        Meter::FOUR_FOUR
    }
}

impl fmt::Display for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

impl FromStr for Meter {
    type Err = Error;

    fn from_str(s: &str) -> Result<Meter> {
        let bad = || Error::invalid("meter", format!("{s:?} (expected N/D such as 4/4 or 6/8)"));
        let (n, d) = s.split_once('/').ok_or_else(bad)?;
        Meter::new(n.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?)
    }
}

/// A tempo, in microseconds per quarter note as MIDI stores it (1 to 16,777,215).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tempo(u32);

impl Tempo {
    /// 120 BPM, MIDI's tempo when a file names none.
    pub const DEFAULT: Tempo = Tempo(500_000);

    /// A tempo from microseconds per quarter note.
    pub fn from_micros(micros: u32) -> Result<Tempo> {
        if micros == 0 || micros > 0xFF_FFFF {
            return Err(Error::invalid("tempo", format!("{micros} microseconds per quarter")));
        }
        Ok(Tempo(micros))
    }

    /// A tempo from beats (quarter notes) per minute, rounded to a whole microsecond.
    pub fn from_bpm(bpm: f64) -> Result<Tempo> {
        if !(bpm.is_finite() && bpm > 0.0) {
            return Err(Error::invalid("tempo", format!("{bpm} BPM")));
        }
        let micros = (60_000_000.0 / bpm).round();
        if micros > f64::from(u32::MAX) {
            return Err(Error::invalid("tempo", format!("{bpm} BPM is too slow")));
        }
        Tempo::from_micros(micros as u32)
    }

    /// Microseconds per quarter note.
    pub fn micros(self) -> u32 {
        self.0
    }

    /// Quarter notes per minute.
    pub fn bpm(self) -> f64 {
        60_000_000.0 / f64::from(self.0)
    }

    /// The shortest decimal BPM that reads back as exactly this tempo.
    pub fn bpm_text(self) -> String {
        let exact = self.bpm();
        for decimals in 0..=9 {
            let s = format!("{exact:.decimals$}");
            if s.parse::<f64>().ok().and_then(|b| Tempo::from_bpm(b).ok()) == Some(self) {
                return s;
            }
        }
        format!("{exact}")
    }
}

impl Default for Tempo {
    fn default() -> Tempo {
        Tempo::DEFAULT
    }
}

/// A tempo change inside a bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TempoChange {
    /// Ticks from the start of the bar.
    pub tick: u32,
    /// The new tempo.
    pub tempo: Tempo,
}

/// The step grid: how many steps a quarter note holds.
///
/// Named by the note value of a step: `8`, `16` (default), `32` and `64`, and the triplet grids
/// `8t`, `16t` and `32t`. `4` is a grid of quarter notes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grid(u8);

impl Grid {
    /// Quarter notes.
    pub const QUARTER: Grid = Grid(1);
    /// Eighth notes.
    pub const EIGHTH: Grid = Grid(2);
    /// Eighth-note triplets.
    pub const EIGHTH_TRIPLET: Grid = Grid(3);
    /// Sixteenth notes (the default).
    pub const SIXTEENTH: Grid = Grid(4);
    /// Sixteenth-note triplets.
    pub const SIXTEENTH_TRIPLET: Grid = Grid(6);
    /// Thirty-second notes.
    pub const THIRTY_SECOND: Grid = Grid(8);
    /// Thirty-second-note triplets.
    pub const THIRTY_SECOND_TRIPLET: Grid = Grid(12);
    /// Sixty-fourth notes.
    pub const SIXTY_FOURTH: Grid = Grid(16);

    const NAMES: [(Grid, &'static str); 8] = [
        (Grid::QUARTER, "4"),
        (Grid::EIGHTH, "8"),
        (Grid::EIGHTH_TRIPLET, "8t"),
        (Grid::SIXTEENTH, "16"),
        (Grid::SIXTEENTH_TRIPLET, "16t"),
        (Grid::THIRTY_SECOND, "32"),
        (Grid::THIRTY_SECOND_TRIPLET, "32t"),
        (Grid::SIXTY_FOURTH, "64"),
    ];

    /// Steps per quarter note.
    pub fn per_quarter(self) -> u8 {
        self.0
    }

    /// The grid's name, such as `"16"` or `"8t"`.
    pub fn as_str(self) -> &'static str {
        Grid::NAMES.iter().find(|(g, _)| *g == self).map_or("?", |(_, n)| n)
    }

    /// The tick of `step` from a bar's start (rounded down where a step is not a whole tick).
    #[inline]
    pub fn step_tick(self, step: u32, ticks_per_quarter: u16) -> i64 {
        i64::from(step) * i64::from(ticks_per_quarter) / i64::from(self.0)
    }

    /// The step nearest to `tick` (from a bar's start; halfway rounds up).
    #[inline]
    pub fn nearest_step(self, tick: i64, ticks_per_quarter: u16) -> i64 {
        let tpq = i64::from(ticks_per_quarter);
        (2 * tick * i64::from(self.0) + tpq).div_euclid(2 * tpq)
    }
}

impl Default for Grid {
    fn default() -> Grid {
        Grid::SIXTEENTH
    }
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Grid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Grid> {
        Grid::NAMES.iter().find(|(_, n)| *n == s).map(|(g, _)| *g).ok_or_else(|| {
            Error::invalid("grid", format!("{s:?} (expected 4, 8, 8t, 16, 16t, 32, 32t or 64)"))
        })
    }
}

/// Velocity levels: 1 to 127 equal bins of MIDI velocity (127 keeps velocity exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Levels(u8);

impl Levels {
    /// Three levels: ghost (1-43), normal (44-85) and accent (86-127).
    pub const THREE: Levels = Levels(3);

    /// `n` levels, 1 to 127.
    pub fn new(n: u8) -> Result<Levels> {
        if (1..=127).contains(&n) {
            Ok(Levels(n))
        } else {
            Err(Error::invalid("velocity levels", format!("{n} (expected 1 to 127)")))
        }
    }

    /// `n` levels, for constants; `n` must be 1 to 127.
    pub const fn new_const(n: u8) -> Levels {
        assert!(n >= 1 && n <= 127, "velocity levels are 1 to 127");
        Levels(n)
    }

    /// How many levels.
    pub fn count(self) -> u8 {
        self.0
    }

    /// The level of a velocity, 1 to `count`.
    #[inline]
    pub fn level(self, v: Velocity) -> u8 {
        ((u32::from(v.as_int()) - 1) * u32::from(self.0) / 127) as u8 + 1
    }

    /// The velocity written for a level: the middle of its bin.
    #[inline]
    pub fn velocity(self, level: u8) -> Velocity {
        let n = u32::from(self.0);
        let l = u32::from(level.clamp(1, self.0));
        let lower = ((l - 1) * 127).div_ceil(n) + 1;
        let upper = (l * 127).div_ceil(n);
        Velocity::new(((lower + upper) / 2) as u8)
    }
}

impl Default for Levels {
    fn default() -> Levels {
        Levels::THREE
    }
}

/// One drum hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hit {
    /// The grid step it belongs to (the nearest one), from 0 at the bar's start.
    pub step: u32,
    /// Microtiming: ticks from the step to the hit (negative: early).
    pub offset: i32,
    /// Which drum.
    pub voice: Voice,
    /// How hard.
    pub velocity: Velocity,
    /// Ticks from note-on to note-off.
    pub length: u32,
}

/// One bar of a groove.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bar {
    /// The bar's meter.
    pub meter: Meter,
    /// Tempo changes in this bar, by tick.
    pub tempos: Vec<TempoChange>,
    /// The hits, ordered by step, offset, voice, velocity, length.
    pub hits: Vec<Hit>,
}

impl Bar {
    /// An empty bar.
    pub fn new(meter: Meter) -> Bar {
        Bar { meter, tempos: Vec::new(), hits: Vec::new() }
    }
}

/// A drum groove: bars of hits on a grid, with the tempo and meter they were played in.
///
/// Positions are exact: a hit's tick is its bar's start plus its step's tick plus its
/// offset, so a groove read from MIDI writes back the same notes. Grid formats
/// [quantise](Groove::quantised) it first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Groove {
    /// The MIDI resolution: ticks per quarter note.
    pub ticks_per_quarter: u16,
    /// The step grid that hits are placed on.
    pub grid: Grid,
    /// What the hits' voices mean.
    pub voices: VoiceMap,
    /// The bars.
    pub bars: Vec<Bar>,
}

/// The tempo, meter and resolution that bars without their own marks are read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    /// Ticks per quarter note. Default: 480.
    pub ticks_per_quarter: u16,
    /// Meter of the first bar. Default: 4/4.
    pub meter: Meter,
    /// Tempo at the first bar. Default: 120 BPM.
    pub tempo: Tempo,
}

impl Default for Context {
    fn default() -> Context {
        Context { ticks_per_quarter: 480, meter: Meter::FOUR_FOUR, tempo: Tempo::DEFAULT }
    }
}

impl Context {
    /// A context with the given resolution, meter and tempo.
    pub fn new(ticks_per_quarter: u16, meter: Meter, tempo: Tempo) -> Context {
        Context { ticks_per_quarter, meter, tempo }
    }
}

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

/// One note at an absolute position, as MIDI holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Note {
    pub tick: u64,
    pub pitch: Pitch,
    pub velocity: Velocity,
    pub length: u32,
}

/// Upper bounds on what one groove may hold, so that hostile input cannot exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most bars. Default: 100,000 (over 55 hours of 4/4 at 120 BPM).
    pub max_bars: usize,
    /// Most hits. Default: 4,000,000.
    pub max_hits: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bars: 100_000, max_hits: 4_000_000 }
    }
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

/// Whether `a` may come before `b` in a bar (see [`hit_key`]), comparing the position first
/// because it nearly always decides.
#[inline]
fn in_order(a: &Hit, b: &Hit) -> bool {
    let (pa, pb) = (position(a), position(b));
    pa < pb || (pa == pb && hit_key(a) <= hit_key(b))
}

/// A hit's step and offset as one number ordered as they are: the high half of its
/// [`hit_key`].
#[inline]
fn position(h: &Hit) -> u64 {
    u64::from(h.step) << 32 | u64::from((h.offset as u32) ^ 0x8000_0000)
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

/// The order of hits in a bar: step, offset, voice, velocity, length, packed into one number.
#[inline]
pub(crate) fn hit_key(h: &Hit) -> u128 {
    u128::from(position(h)) << 64
        | u128::from(h.voice.index() as u8) << 40
        | u128::from(h.velocity.as_int()) << 32
        | u128::from(h.length)
}

impl Groove {
    /// An empty groove.
    pub fn new(ticks_per_quarter: u16, grid: Grid, voices: VoiceMap) -> Groove {
        Groove { ticks_per_quarter, grid, voices, bars: Vec::new() }
    }

    /// How many hits all bars hold.
    pub fn hit_count(&self) -> usize {
        self.bars.iter().map(|b| b.hits.len()).sum()
    }

    /// The tempo in force at the start of bar `i`, counting changes on its first tick.
    pub fn tempo_at_bar(&self, i: usize) -> Tempo {
        self.bars[..=i.min(self.bars.len().saturating_sub(1))]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(j, b)| {
                let mut it = b.tempos.iter().filter(|t| j < i || t.tick == 0);
                it.next_back().map(|t| t.tempo)
            })
            .unwrap_or_default()
    }

    /// The context a continuation of this groove is read in: its resolution, and the
    /// meter and tempo in force at its end.
    pub fn context_after(&self) -> Context {
        let n = self.bars.len();
        let tempo = if n == 0 { Tempo::DEFAULT } else { self.tempo_at_bar(n) };
        Context {
            ticks_per_quarter: self.ticks_per_quarter,
            meter: self.bars.last().map_or(Meter::FOUR_FOUR, |b| b.meter),
            tempo,
        }
    }

    /// The context of the groove's first bar.
    pub fn context(&self) -> Context {
        Context {
            ticks_per_quarter: self.ticks_per_quarter,
            meter: self.bars.first().map_or(Meter::FOUR_FOUR, |b| b.meter),
            tempo: if self.bars.is_empty() { Tempo::DEFAULT } else { self.tempo_at_bar(0) },
        }
    }

    /// Bars `range` as a groove of their own, starting in the tempo in force at the first
    /// of them (written as a change on its first tick), so that the slice plays and encodes
    /// as it sounded inside the whole. A range past the end is cut to the bars there are.
    ///
    /// ```
    /// use fine_drums_codec::pattern::rock_groove;
    ///
    /// let g = rock_groove(8, 96.0)?;
    /// let tail = g.slice(6..8);
    /// assert_eq!(tail.bars.len(), 2);
    /// assert_eq!(tail.context().tempo, g.tempo_at_bar(6));
    /// # Ok::<(), fine_drums_codec::Error>(())
    /// ```
    pub fn slice(&self, range: std::ops::Range<usize>) -> Groove {
        let end = range.end.min(self.bars.len());
        let start = range.start.min(end);
        let mut bars = self.bars[start..end].to_vec();
        if let Some(first) = bars.first_mut()
            && first.tempos.first().is_none_or(|t| t.tick != 0)
        {
            first.tempos.insert(0, TempoChange { tick: 0, tempo: self.tempo_at_bar(start) });
        }
        Groove { bars, ..*self }
    }

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

    /// The same notes under another voice map, through each voice's written pitch.
    /// Hits the new map does not know are dropped.
    pub fn with_voices(&self, voices: VoiceMap) -> Result<Groove> {
        if voices == self.voices {
            return Ok(self.clone());
        }
        let mut g = self.clone();
        g.voices = voices;
        for bar in &mut g.bars {
            bar.hits.retain_mut(|h| match voices.voice_of(self.voices.pitch_of(h.voice)) {
                Some(v) => {
                    h.voice = v;
                    true
                }
                None => false,
            });
            bar.hits.sort_by_key(hit_key);
        }
        Ok(g)
    }

    /// The default note length on a grid: half a step, at least one tick.
    pub fn default_length(ticks_per_quarter: u16, grid: Grid) -> u32 {
        (u32::from(ticks_per_quarter) / (2 * u32::from(grid.per_quarter()))).max(1)
    }

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

    /// This groove on `grid` and under `voices`: itself when it already is, else a copy.
    pub(crate) fn on(&self, grid: Grid, voices: VoiceMap) -> Result<std::borrow::Cow<'_, Groove>> {
        if self.grid == grid && self.voices == voices {
            Ok(std::borrow::Cow::Borrowed(self))
        } else {
            Ok(std::borrow::Cow::Owned(self.with_grid(grid)?.with_voices(voices)?))
        }
    }

    /// The tempo in force at the start of each bar, as [`Groove::tempo_at_bar`] gives it,
    /// in one pass.
    pub(crate) fn start_tempos(&self) -> impl Iterator<Item = Tempo> + '_ {
        let mut running = Tempo::DEFAULT;
        self.bars.iter().map(move |bar| {
            let at_start = bar.tempos.iter().rev().find(|t| t.tick == 0).map(|t| t.tempo);
            let start = at_start.unwrap_or(running);
            running = bar.tempos.last().map_or(running, |t| t.tempo);
            start
        })
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

    use super::{FastDiv, Grid, Hit, Levels, Quantise, Quantiser};
    use crate::primitive::Velocity;
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
            hits.sort_by_key(super::hit_key);
            hits
        })
    }

    proptest! {
        #[test]
        fn fast_division_is_division(d in 1u32.., n in any::<u32>(), big in any::<u64>()) {
            let f = FastDiv::new(d);
            prop_assert_eq!(f.div(u64::from(n)), u64::from(n) / u64::from(d));
            prop_assert_eq!(f.div(big), big / u64::from(d));
        }

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
