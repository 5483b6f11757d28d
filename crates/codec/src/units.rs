//! The units a groove is measured in: meter, tempo, grid and velocity levels.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::primitive::Velocity;

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
            return Err(Error::MeterOffResolution {
                numerator: self.numerator,
                denominator: self.denominator,
                ticks_per_quarter,
            });
        }
        Ok(whole >> shift)
    }

    /// The number of grid steps in a bar, if whole.
    #[inline]
    pub fn steps(self, grid: Grid) -> Result<u32> {
        let whole = u32::from(grid.per_quarter()) * 4 * u32::from(self.numerator);
        let shift = self.denominator.trailing_zeros();
        if whole & ((1 << shift) - 1) != 0 {
            return Err(Error::MeterOffGrid {
                numerator: self.numerator,
                denominator: self.denominator,
                grid: grid.as_str(),
            });
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
        if !(1.0..=f64::from(0xFF_FFFF)).contains(&micros) {
            let why = if micros < 1.0 { "too fast" } else { "too slow" };
            return Err(Error::invalid(
                "tempo",
                format!(
                    "{bpm} BPM is {why}: a MIDI file holds 3.58 to 60,000,000 BPM (16,777,215 to 1 microseconds a quarter)"
                ),
            ));
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

#[cfg(test)]
mod tests {
    use super::{Grid, Meter};
    use crate::error::Error;

    #[test]
    fn a_meter_off_the_grid_is_its_own_error() {
        let seven_sixteen = Meter::new(7, 16).unwrap();
        let err = seven_sixteen.steps(Grid::EIGHTH).unwrap_err();
        assert!(
            matches!(err, Error::MeterOffGrid { numerator: 7, denominator: 16, grid: "8" }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "a 7/16 bar is not a whole number of 8 steps");
        assert_eq!(seven_sixteen.steps(Grid::SIXTEENTH).unwrap(), 7);
        let err = Meter::new(1, 64).unwrap().bar_ticks(8).unwrap_err();
        assert!(matches!(err, Error::MeterOffResolution { ticks_per_quarter: 8, .. }), "{err:?}");
    }
}
