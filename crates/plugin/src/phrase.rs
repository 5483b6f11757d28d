//! A generated phrase, and the player that puts it on the host's grid in the audio thread.

use serde::{Deserialize, Serialize};

use crate::capture::{TPQ, empty_bar, hit_at, tempo_at_start, write_bars};
use crate::error::Result;
use crate::grid::{Clock, Signature};

/// One note event of a phrase.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Quarter notes from the phrase's first bar line (never negative: a first hit played
    /// early falls on the bar line).
    pub at: f64,
    /// The MIDI note.
    pub pitch: u8,
    /// The MIDI velocity (1 to 127; a note-off's is 0).
    pub velocity: u8,
    /// A note-on, or the note-off that ends it.
    pub on: bool,
}

/// The model's bars, ready to play: note events from the phrase's first bar line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phrase {
    /// Bars it spans.
    pub bars: usize,
    /// The meter and tempo it was written for (the host's at the prompt's last bar).
    pub signature: Signature,
    /// The note events, in time order (a note-off before a note-on at the same time).
    pub notes: Vec<Note>,
    /// The seed it was sampled with.
    pub seed: u64,
    /// The host's number (from 0) of the bar it was written to start at.
    pub first_bar: i64,
}

impl Phrase {
    /// Its length in quarter notes.
    pub fn quarters(&self) -> f64 {
        self.bars as f64 * self.signature.bar_quarters()
    }

    /// The note-ons.
    pub fn hits(&self) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(|n| n.on)
    }

    /// The phrase as a Standard MIDI File on channel 10, in its meter and tempo, one bar of
    /// the file per bar of the phrase: what can be dragged into the arrangement.
    pub fn to_midi(&self) -> Result<Vec<u8>> {
        let (first, bar_ticks) = empty_bar(self.signature, self.first_bar)?;
        let mut bars = vec![first; self.bars];
        if let Some(first) = bars.first_mut() {
            first.tempos.push(tempo_at_start(self.signature, self.first_bar)?);
        }
        for n in self.hits() {
            let tick = (n.at * f64::from(TPQ)).round() as i64;
            let bar = (tick / i64::from(bar_ticks)) as usize;
            if let Some(b) = bars.get_mut(bar) {
                b.hits.push(hit_at(tick - bar as i64 * i64::from(bar_ticks), n.pitch, n.velocity));
            }
        }
        write_bars(bars, self.first_bar)
    }
}

/// What the generating thread sends the audio thread, one note at a time through a
/// lock-free ring: `Copy`, no heap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sent {
    /// A phrase of `bars` bars of `quarters` quarter notes begins; its notes follow.
    Begin {
        /// Bars it spans.
        bars: u32,
        /// Its length in quarter notes.
        quarters: f64,
    },
    /// A note of the phrase begun.
    Note(Note),
    /// The phrase is whole: it plays from the next bar line.
    End,
}

/// A note of the phrase at `timing` samples into the block: what [`Player::play`] emits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timed {
    /// Samples from the block's start.
    pub timing: u32,
    /// The note.
    pub note: Note,
}

/// Plays phrases on the host's grid, sample-accurately, from the audio thread: it never
/// allocates after [`Player::new`] (a phrase longer than its capacity is cut).
#[derive(Debug)]
pub struct Player {
    /// The phrase being received.
    loading: Vec<Note>,
    loading_quarters: f64,
    /// The phrase playing or waiting for its bar line.
    notes: Vec<Note>,
    quarters: f64,
    /// Where the phrase playing started (quarter notes on the host's timeline), once a bar
    /// line came; `None` while it waits for one.
    start: Option<f64>,
    /// Its next note.
    next: usize,
    /// Whether a whole phrase is waiting or playing.
    armed: bool,
    /// Where the next block should start if the transport runs on: a jump (a loop, a
    /// locate) moves the phrase's start with it.
    expected: Option<f64>,
    /// The pitches whose note-on was played and whose note-off was not yet.
    sounding: [bool; 128],
    /// Whether the sounding notes are to be ended at the next block's start.
    flush: bool,
}

impl Player {
    /// A player for phrases of at most `capacity` note events.
    pub fn new(capacity: usize) -> Player {
        Player {
            loading: Vec::with_capacity(capacity),
            loading_quarters: 0.0,
            notes: Vec::with_capacity(capacity),
            quarters: 0.0,
            start: None,
            next: 0,
            armed: false,
            expected: None,
            sounding: [false; 128],
            flush: false,
        }
    }

    /// Takes what the generating thread sent. A whole phrase replaces the one before it (the
    /// notes of that one still sounding are ended in the next [`play`](Player::play)).
    pub fn receive(&mut self, sent: Sent) {
        match sent {
            Sent::Begin { quarters, .. } => {
                self.loading.clear();
                self.loading_quarters = quarters;
            }
            Sent::Note(n) => {
                if self.loading.len() < self.loading.capacity() {
                    self.loading.push(n);
                }
            }
            Sent::End => {
                std::mem::swap(&mut self.loading, &mut self.notes);
                self.loading.clear();
                self.quarters = self.loading_quarters;
                (self.start, self.next, self.armed, self.flush) = (None, 0, true, true);
            }
        }
    }

    /// Whether a phrase waits for its bar line or plays.
    pub fn is_busy(&self) -> bool {
        self.armed
    }

    /// Stops the phrase: what is left of it is not played, and its notes still sounding
    /// are ended at the next block's start.
    pub fn stop(&mut self) {
        (self.armed, self.start, self.flush) = (false, None, true);
    }

    /// Ends the notes still sounding, at the block's start, when a phrase was stopped or
    /// replaced.
    pub fn silence(&mut self, emit: &mut impl FnMut(Timed)) {
        if self.flush {
            self.end_sounding(emit);
        }
    }

    fn end_sounding(&mut self, emit: &mut impl FnMut(Timed)) {
        for pitch in 0..128u8 {
            if std::mem::take(&mut self.sounding[usize::from(pitch)]) {
                emit(Timed { timing: 0, note: Note { at: 0.0, pitch, velocity: 0, on: false } });
            }
        }
        self.flush = false;
    }

    /// The notes of the block that starts at `clock` and lasts `samples` samples, in time
    /// order, passed to `emit`: a waiting phrase starts at the first bar line in the block.
    pub fn play(&mut self, clock: &Clock, samples: u32, mut emit: impl FnMut(Timed)) {
        let spq = clock.samples_per_quarter();
        let end = clock.pos + f64::from(samples) / spq;
        if let (Some(start), Some(expected)) = (self.start, self.expected) {
            // The transport jumped (a loop, a locate): the phrase goes on from where it was.
            if (clock.pos - expected).abs() > 1e-6 {
                self.start = Some(start + clock.pos - expected);
            }
        }
        self.expected = Some(end);
        if self.flush {
            self.end_sounding(&mut emit);
        }
        if !self.armed {
            return;
        }
        if self.start.is_none() {
            let (line, _) = clock.next_bar_line();
            if clock.sample_of(line) >= i64::from(samples) {
                return;
            }
            self.start = Some(line);
        }
        let Some(start) = self.start else { return };
        while let Some(&note) = self.notes.get(self.next) {
            let at = clock.sample_of(start + note.at);
            if at >= i64::from(samples) {
                return;
            }
            self.sounding[usize::from(note.pitch & 127)] = note.on;
            emit(Timed { timing: at.max(0) as u32, note });
            self.next += 1;
        }
        // Every note played: the phrase is over at its last bar's end.
        if clock.sample_of(start + self.quarters) < i64::from(samples) {
            (self.armed, self.start) = (false, None);
        }
    }
}
