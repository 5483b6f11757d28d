//! What the plugin heard: the drum hits of each bar on the host's grid, and the bars they
//! make as a MIDI file for the prompt.

use fine_drums_codec::midi::{self, WriteOptions};
use fine_drums_codec::{
    Bar, Grid, Groove, Hit, Meter, Tempo, TempoChange, Velocity, Voice, VoiceMap,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::grid::Signature;

/// What the audio thread tells the rest of the plugin, through a lock-free ring: `Copy`, no
/// heap, so sending it never allocates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Heard {
    /// Bar `bar` began while the transport played, in `signature`: what was captured in it
    /// before (a loop played again) is replaced.
    Bar {
        /// The bar's number, from 0.
        bar: i64,
        /// Its meter and tempo.
        signature: Signature,
    },
    /// A drum hit.
    Hit {
        /// The bar it fell in.
        bar: i64,
        /// Quarter notes from the bar's start.
        at: f64,
        /// The MIDI note.
        pitch: u8,
        /// The MIDI velocity, 1 to 127.
        velocity: u8,
    },
    /// "New seed" was pressed.
    Reseed,
    /// Generate the bars after bar `bar` (the one playing), from the bars before it, to play
    /// from the next bar line.
    Trigger {
        /// The bar playing when it was asked: the prompt is the bars before it.
        bar: i64,
        /// A one-bar fill rather than a phrase.
        fill: bool,
    },
}

/// One captured hit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapturedHit {
    /// Quarter notes from the bar's start.
    pub at: f64,
    /// The MIDI note.
    pub pitch: u8,
    /// The MIDI velocity, 1 to 127.
    pub velocity: u8,
}

/// One captured bar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapturedBar {
    /// Its number on the host's grid, from 0.
    pub bar: i64,
    /// Its meter and tempo.
    pub signature: Signature,
    /// Its hits, in the order heard.
    pub hits: Vec<CapturedHit>,
}

/// The bars captured so far, by bar number: the most recent [`Capture::MAX_BARS`] are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// The bars, in bar order.
    pub bars: Vec<CapturedBar>,
}

/// Ticks per quarter note of the MIDI files the plugin writes.
pub(crate) const TPQ: u16 = 480;
/// The longest a captured hit is written (a 32nd note).
const HIT_TICKS: u32 = TPQ as u32 / 8;

impl Capture {
    /// The most bars kept: older ones are forgotten.
    pub const MAX_BARS: usize = 64;
    /// The most hits kept in a bar: more are not drums but a flood.
    pub const MAX_HITS: usize = 512;

    /// Takes in what the audio thread heard (a trigger or a new seed is not a capture: it is
    /// left out).
    pub fn take(&mut self, heard: Heard) {
        match heard {
            Heard::Bar { bar, signature } => {
                let b = self.bar_mut(bar, signature);
                (b.signature, b.hits) = (signature, Vec::new());
            }
            Heard::Hit { bar, at, pitch, velocity } => {
                let signature = self.signature_near(bar);
                let b = self.bar_mut(bar, signature);
                if b.hits.len() < Capture::MAX_HITS && pitch < 128 && (1..128).contains(&velocity) {
                    b.hits.push(CapturedHit { at: at.max(0.0), pitch, velocity });
                }
            }
            Heard::Trigger { .. } | Heard::Reseed => {}
        }
    }

    /// The capture with what a saved session may not hold: bars past the most recent
    /// [`Capture::MAX_BARS`], hits past [`Capture::MAX_HITS`] a bar, and hits at no time, at
    /// no pitch or at no velocity (a damaged or crafted state).
    pub fn sanitized(mut self) -> Capture {
        self.bars.sort_by_key(|b| b.bar);
        self.bars.dedup_by_key(|b| b.bar);
        let extra = self.bars.len().saturating_sub(Capture::MAX_BARS);
        self.bars.drain(..extra);
        for b in &mut self.bars {
            b.hits.retain(|h| {
                h.at.is_finite() && h.at >= 0.0 && h.pitch < 128 && (1..128).contains(&h.velocity)
            });
            b.hits.truncate(Capture::MAX_HITS);
        }
        self
    }

    /// Hits captured, over every bar.
    pub fn hits(&self) -> usize {
        self.bars.iter().map(|b| b.hits.len()).sum()
    }

    fn signature_near(&self, bar: i64) -> Signature {
        let i = self.bars.partition_point(|b| b.bar <= bar);
        i.checked_sub(1).map_or(Signature::DEFAULT, |i| self.bars[i].signature)
    }

    fn bar_mut(&mut self, bar: i64, signature: Signature) -> &mut CapturedBar {
        let i = match self.bars.binary_search_by_key(&bar, |b| b.bar) {
            Ok(i) => i,
            Err(i) => {
                self.bars.insert(i, CapturedBar { bar, signature, hits: Vec::new() });
                if self.bars.len() > Capture::MAX_BARS {
                    self.bars.remove(0);
                    return self.bar_mut(bar, signature);
                }
                i
            }
        };
        &mut self.bars[i]
    }

    /// The captured bars before bar `end` as a Standard MIDI File on channel 10, from the
    /// first bar played, ending with bar `end - 1` (a bar never heard is empty, in its
    /// neighbour's meter). More than `most` bars lose whole 16-bar phrases from their start,
    /// so that the model still counts its phrases from where the drummer's began. Returns the
    /// file, the first bar's number and the last bar's signature.
    pub fn midi_before(&self, end: i64, most: usize) -> Result<(Vec<u8>, i64, Signature)> {
        let last = self.bars.iter().rev().find(|b| b.bar < end && !b.hits.is_empty());
        if last.is_none() || most == 0 {
            return Err(Error::NothingCaptured { bar: end });
        }
        let earliest = self.bars.iter().find(|b| b.bar < end && !b.hits.is_empty());
        let mut first = earliest.map_or(end - 1, |b| b.bar);
        while end - first > most as i64 {
            first += if most >= 16 { 16 } else { end - first - most as i64 };
        }
        let mut bars = Vec::new();
        for n in first..end {
            let signature = self.signature_near(n);
            let (mut bar, bar_ticks) = empty_bar(signature, n)?;
            bar.tempos.push(tempo_at_start(signature, n)?);
            if let Ok(i) = self.bars.binary_search_by_key(&n, |b| b.bar) {
                for h in &self.bars[i].hits {
                    let tick = (h.at * f64::from(TPQ)).round() as i64;
                    // A hit in the bar's last 64th is the next bar's downbeat played early:
                    // it stays in its bar, on its last step.
                    let tick = tick.clamp(0, i64::from(bar_ticks) - 1);
                    bar.hits.push(hit_at(tick, h.pitch, h.velocity));
                }
            }
            bars.push(bar);
        }
        let midi = write_bars(bars, first)?;
        Ok((midi, first, self.signature_near(end - 1)))
    }
}

/// An empty bar in `signature`'s meter, and its length in ticks; `number` (the host's) names
/// it in an error.
pub(crate) fn empty_bar(signature: Signature, number: i64) -> Result<(Bar, u32)> {
    let capture = |source| Error::Capture { bar: number, source };
    let meter = Meter::new(signature.numerator, signature.denominator).map_err(capture)?;
    Ok((Bar::new(meter), meter.bar_ticks(TPQ).map_err(capture)?))
}

/// `signature`'s tempo from a bar's first tick.
pub(crate) fn tempo_at_start(signature: Signature, number: i64) -> Result<TempoChange> {
    let tempo =
        Tempo::from_bpm(signature.bpm).map_err(|source| Error::Capture { bar: number, source })?;
    Ok(TempoChange { tick: 0, tempo })
}

/// `bars`, their hits put in order, as a Standard MIDI File on channel 10; `first` (the
/// host's number of the first) names them in an error.
pub(crate) fn write_bars(mut bars: Vec<Bar>, first: i64) -> Result<Vec<u8>> {
    for b in &mut bars {
        b.hits.sort_by_key(|h| (h.step, h.offset, h.voice.index()));
    }
    let groove = Groove { ticks_per_quarter: TPQ, grid: GRID, voices: VoiceMap::Full, bars };
    midi::write(&groove, &WriteOptions::default())
        .map_err(|source| Error::Capture { bar: first, source })
}

/// The grid hits are placed on: a 64th, so every hit's offset from its step is small.
const GRID: Grid = Grid::SIXTY_FOURTH;

/// A hit at `tick` of its bar.
pub(crate) fn hit_at(tick: i64, pitch: u8, velocity: u8) -> Hit {
    let step = GRID.nearest_step(tick, TPQ).max(0);
    Hit {
        step: step as u32,
        offset: (tick - GRID.step_tick(step as u32, TPQ)) as i32,
        voice: Voice::new(pitch),
        velocity: Velocity::new(velocity),
        length: HIT_TICKS,
    }
}
