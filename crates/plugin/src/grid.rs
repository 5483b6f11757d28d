//! The host's bar grid: where a block of samples sits in bars and quarter notes, and at which
//! sample of the block a position in quarter notes falls. Arithmetic only, so the audio thread
//! may use all of it.

/// A meter and tempo: what a bar of the host's grid is.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    /// Beats in a bar.
    pub numerator: u8,
    /// The note value of a beat: 4 for quarters, 8 for eighths.
    pub denominator: u8,
    /// Quarter notes a minute.
    pub bpm: f64,
}

impl Signature {
    /// 4/4 at 120 BPM.
    pub const DEFAULT: Signature = Signature { numerator: 4, denominator: 4, bpm: 120.0 };

    /// A signature from what a host says, with 4/4 and 120 BPM for what it does not say, and
    /// for values no bar can have (a zero, a denominator that is not a power of two up to 64, a
    /// tempo outside 1 to 1000 BPM).
    pub fn of_host(
        numerator: Option<i32>,
        denominator: Option<i32>,
        bpm: Option<f64>,
    ) -> Signature {
        let meter = match (numerator, denominator) {
            (Some(n), Some(d))
                if (1..=64).contains(&n) && [1, 2, 4, 8, 16, 32, 64].contains(&d) =>
            {
                (n as u8, d as u8)
            }
            _ => (4, 4),
        };
        let bpm = bpm.filter(|b| b.is_finite() && (1.0..=1000.0).contains(b)).unwrap_or(120.0);
        Signature { numerator: meter.0, denominator: meter.1, bpm }
    }

    /// Quarter notes in a bar: 4 in 4/4, 3.5 in 7/8.
    pub fn bar_quarters(&self) -> f64 {
        f64::from(self.numerator) * 4.0 / f64::from(self.denominator)
    }
}

/// Where a block of samples starts on the host's grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    /// Samples a second.
    pub sample_rate: f64,
    /// The meter and tempo.
    pub signature: Signature,
    /// The block's first sample, in quarter notes from the song's start.
    pub pos: f64,
    /// Where the bar that holds the block's first sample starts, in quarter notes.
    pub bar_start: f64,
    /// That bar's number, from 0.
    pub bar: i64,
}

/// Positions closer than this (in quarter notes) are the same: a host's fixed-point beat
/// time is exact to 2^-31 of a quarter.
const SAME: f64 = 1e-7;

impl Clock {
    /// The clock at `pos` quarter notes, the bar found from the host's bar start and number
    /// where it gives them, else by counting bars of `signature` from the song's start.
    pub fn new(
        sample_rate: f64,
        signature: Signature,
        pos: f64,
        host_bar: Option<(f64, i32)>,
    ) -> Clock {
        let len = signature.bar_quarters();
        let (bar_start, bar) = match host_bar {
            Some((start, n)) if start <= pos + SAME && pos - start < len + SAME => {
                (start, i64::from(n))
            }
            _ => {
                let n = ((pos + SAME) / len).floor();
                (n * len, n as i64)
            }
        };
        // A position on a bar line that the host counts in the bar before is the next bar's.
        if pos - bar_start > len - SAME {
            return Clock { sample_rate, signature, pos, bar_start: bar_start + len, bar: bar + 1 };
        }
        Clock { sample_rate, signature, pos, bar_start, bar }
    }

    /// Samples in a quarter note.
    pub fn samples_per_quarter(&self) -> f64 {
        self.sample_rate * 60.0 / self.signature.bpm
    }

    /// The first bar line at or after the block's first sample: its position in quarter notes
    /// and its bar number.
    pub fn next_bar_line(&self) -> (f64, i64) {
        if self.pos - self.bar_start < SAME {
            (self.bar_start, self.bar)
        } else {
            (self.bar_start + self.signature.bar_quarters(), self.bar + 1)
        }
    }

    /// The sample of the block at which position `at` (quarter notes) falls, rounded to the
    /// nearest; negative before the block.
    pub fn sample_of(&self, at: f64) -> i64 {
        ((at - self.pos) * self.samples_per_quarter()).round() as i64
    }

    /// The position (quarter notes) of sample `offset` of the block.
    pub fn at_sample(&self, offset: u32) -> f64 {
        self.pos + f64::from(offset) / self.samples_per_quarter()
    }

    /// The bar that holds position `at` and where in it `at` falls (quarter notes from its
    /// start), for positions in the block (the bar grid of the block's signature).
    pub fn bar_of(&self, at: f64) -> (i64, f64) {
        let len = self.signature.bar_quarters();
        let bars = ((at - self.bar_start + SAME) / len).floor();
        let within = (at - self.bar_start - bars * len).max(0.0);
        (self.bar + bars as i64, within)
    }
}
