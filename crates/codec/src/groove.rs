//! The model of a groove that every format goes through: hits in bars, with the tempo and
//! meter they were played in.

use crate::error::Result;
use crate::primitive::Velocity;
use crate::units::{Grid, Meter, Tempo, TempoChange};
use crate::voice::{Voice, VoiceMap};

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

/// Upper bounds on what one groove may hold, so that hostile input cannot exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most bars. Default: 100,000 (over 55 hours of 4/4 at 120 BPM).
    pub max_bars: usize,
    /// Most hits. Default: 4,000,000.
    pub max_hits: usize,
}

impl Limits {
    /// The default limits, as a constant.
    pub const DEFAULT: Limits = Limits { max_bars: 100_000, max_hits: 4_000_000 };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Whether `a` may come before `b` in a bar (see [`hit_key`]), comparing the position first
/// because it nearly always decides.
#[inline]
pub(crate) fn in_order(a: &Hit, b: &Hit) -> bool {
    let (pa, pb) = (position(a), position(b));
    pa < pb || (pa == pb && hit_key(a) <= hit_key(b))
}

/// A hit's step and offset as one number ordered as they are: the high half of its
/// [`hit_key`].
#[inline]
fn position(h: &Hit) -> u64 {
    u64::from(h.step) << 32 | u64::from((h.offset as u32) ^ 0x8000_0000)
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
    /// The hits [`with_voices`](Groove::with_voices) would drop for `voices`, counted by
    /// their written pitch (`[pitch] = hits`): what a map loses of a groove read with
    /// [`VoiceMap::Full`].
    pub fn unmapped(&self, voices: VoiceMap) -> [u32; 128] {
        let mut out = [0; 128];
        for hit in self.bars.iter().flat_map(|b| &b.hits) {
            let pitch = self.voices.pitch_of(hit.voice);
            if voices.voice_of(pitch).is_none() {
                out[usize::from(pitch.as_int() & 127)] += 1;
            }
        }
        out
    }

    /// The same notes under another voice map, through each voice's written pitch.
    /// Hits the new map does not know are dropped (see [`unmapped`](Groove::unmapped)).
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
