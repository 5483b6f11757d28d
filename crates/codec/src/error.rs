//! The crate's one error type.

use std::fmt;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading MIDI, encoding or decoding text.
///
/// Every variant says *where*: the track and event of a MIDI file, or the line and column
/// of a text. No input, however hostile, makes this crate panic; it returns one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a Standard MIDI File, or one is cut short.
    #[error("not a valid MIDI file ({at}): {source}")]
    Midi {
        /// Where reading stopped.
        at: Position,
        /// What went wrong: midly's report on the header and chunks, the event scanner's
        /// (with the byte offset) on a track's events.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file counts time in SMPTE frames, not in ticks per quarter note.
    #[error(
        "SMPTE timecode timing ({fps} fps, {subframes} subframes) is not supported: \
         drum grooves need ticks per quarter note; re-export the file with metrical timing"
    )]
    Smpte {
        /// Frames per second the file declares.
        fps: u8,
        /// Subframes per frame the file declares.
        subframes: u8,
    },
    /// The file has no note on the drum channel.
    #[error("no drum notes on MIDI channel {channel}; {}", elsewhere(others))]
    NoDrums {
        /// The channel that was searched, 1 to 16.
        channel: u8,
        /// The channels that hold notes, 1 to 16.
        others: Vec<u8>,
    },
    /// A GS or XG system exclusive message makes the channel read a melodic part: its notes
    /// are not drums, and reading them as drums would turn a melody into a drum part.
    #[error(
        "a {standard} system exclusive message at tick {tick} makes MIDI channel {channel} a melodic part, not the drums{}",
        drums_on(drums)
    )]
    DrumPart {
        /// The channel that was to be read, 1 to 16.
        channel: u8,
        /// Roland's GS or Yamaha's XG.
        standard: Standard,
        /// Where the message is.
        tick: u64,
        /// The channels the file's messages make drum parts, 1 to 16 (boxed: the error stays
        /// small, see the test below).
        drums: Box<[u8]>,
    },
    /// Bytes after the file's last track that do not frame as a chunk: junk that players
    /// ignore, and that a read with [`ReadOptions::lenient`](crate::midi::ReadOptions::lenient)
    /// ignores too.
    #[error(
        "{count} byte{} after the last track, from byte {byte}, {} not a chunk: players ignore them, and reading leniently does the same (--lenient on encode and continue, ReadOptions::lenient)",
        if *count == 1 { "" } else { "s" },
        if *count == 1 { "is" } else { "are" }
    )]
    TrailingBytes {
        /// The first of them, from the start of the file.
        byte: u64,
        /// How many there are.
        count: u64,
    },
    /// The input is larger than a configured limit; nothing more was read.
    #[error("limit exceeded: more than {limit} {what}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The configured maximum.
        limit: u64,
    },
    /// Delta times add up past the largest supported position.
    #[error(
        "track {track}, event {event}: time overflows ({tick} ticks is past the supported maximum)"
    )]
    TickOverflow {
        /// Track index, from 0.
        track: usize,
        /// Event index in the track, from 0.
        event: usize,
        /// The position reached, in ticks.
        tick: u64,
    },
    /// A bar of this meter is not a whole number of steps of the grid, so no grid format can
    /// write it on that grid (a 7/16 bar on a grid of eighths).
    #[error("a {numerator}/{denominator} bar is not a whole number of {grid} steps")]
    MeterOffGrid {
        /// The meter's beats per bar.
        numerator: u8,
        /// The meter's beat value.
        denominator: u8,
        /// The grid's name (`8`, `16t`, …).
        grid: &'static str,
    },
    /// A bar of this meter is not a whole number of ticks at this resolution.
    #[error(
        "a {numerator}/{denominator} bar is not a whole number of ticks at {ticks_per_quarter} ticks per quarter"
    )]
    MeterOffResolution {
        /// The meter's beats per bar.
        numerator: u8,
        /// The meter's beat value.
        denominator: u8,
        /// The resolution.
        ticks_per_quarter: u16,
    },
    /// A meter, grid or option value that this crate cannot use.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The option or field.
        what: &'static str,
        /// Why it cannot be used.
        message: String,
    },
    /// Text that does not follow the format's grammar.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// Line number, from 1.
        line: usize,
        /// Column (character) number, from 1.
        column: usize,
        /// What was expected.
        message: String,
    },
}

/// Where in a Standard MIDI File reading stopped: the chunk, the event and the byte, as far
/// as each is known.
///
/// It displays as `header`, `track 2`, `track 2, event 17` or `track 2, event 17, byte 311`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Position {
    /// The track chunk, from 0; `None` for the header and the file's framing.
    pub track: Option<u32>,
    /// The event in the track, from 0.
    pub event: Option<u32>,
    /// The byte from the start of the file.
    pub byte: Option<u64>,
}

impl Position {
    /// The file's header (or its framing as a whole).
    pub const HEADER: Position = Position { track: None, event: None, byte: None };

    /// Track `track`, from 0. (Positions are 32-bit, as SMF chunk lengths are: a track cannot
    /// hold more events than bytes; the values saturate.)
    pub fn track(track: usize) -> Position {
        Position { track: Some(saturate(track)), ..Position::HEADER }
    }

    /// Event `event` of track `track`, both from 0.
    pub fn event(track: usize, event: usize) -> Position {
        Position { track: Some(saturate(track)), event: Some(saturate(event)), byte: None }
    }

    /// The same position, at byte `byte` of the file.
    pub fn at_byte(self, byte: usize) -> Position {
        Position { byte: Some(byte as u64), ..self }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.track {
            None => f.write_str("header")?,
            Some(t) => write!(f, "track {t}")?,
        }
        if let Some(e) = self.event {
            write!(f, ", event {e}")?;
        }
        if let Some(b) = self.byte {
            write!(f, ", byte {b}")?;
        }
        Ok(())
    }
}

impl Error {
    pub(crate) fn invalid(what: &'static str, message: impl fmt::Display) -> Error {
        Error::Invalid { what, message: message.to_string() }
    }

    pub(crate) fn syntax(line: usize, column: usize, message: impl fmt::Display) -> Error {
        Error::Syntax { line, column, message: message.to_string() }
    }

    /// The line and column of a text error, if this is one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match *self {
            Error::Syntax { line, column, .. } => Some((line, column)),
            _ => None,
        }
    }
}
/// A MIDI standard whose system exclusive messages can change which part plays drums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Standard {
    /// Roland's GS (`41 .. 42 12 40 1x 15 mode`).
    Gs,
    /// Yamaha's XG (`43 1n 4C 08 part 07 mode`).
    Xg,
}

impl std::fmt::Display for Standard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Standard::Gs => "GS",
            Standard::Xg => "XG",
        })
    }
}

/// A list of channels: `1`, `1 and 2`, `1, 2 and 3`.
fn channels(list: &[u8]) -> String {
    match list {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(u8::to_string).collect();
            format!("{} and {last}", rest.join(", "))
        }
    }
}

/// Where the notes of a file without drums on the channel read are.
fn elsewhere(others: &[u8]) -> String {
    match others {
        [] => "the file has no notes on any channel".into(),
        [one] => format!(
            "its notes are on channel {one}: name it (--channel {one}) if they are the drums"
        ),
        _ => format!(
            "its notes are on channels {}: name the drums' channel (--channel N)",
            channels(others)
        ),
    }
}

/// The channels a file makes drum parts, and what to do.
fn drums_on(drums: &[u8]) -> String {
    match drums {
        [] => ": name the drums' channel (--channel N)".into(),
        [one] => format!(", and channel {one} the drums: read it (--channel {one})"),
        _ => format!(", and channels {} drums: name one (--channel N)", channels(drums)),
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, Position};

    /// Every fallible call in the read loop returns this error by value: when `Position` held
    /// three `Option<usize>` (an error of 64 bytes instead of 48), reading the GMD took
    /// 16.2 ms instead of 13.2 ms (`cargo bench --bench codec`, interleaved A/B).
    #[test]
    fn the_error_stays_small() {
        assert!(size_of::<Error>() <= 48, "{} bytes", size_of::<Error>());
    }

    #[test]
    fn positions_name_what_is_known() {
        assert_eq!(Position::HEADER.to_string(), "header");
        assert_eq!(Position::track(2).to_string(), "track 2");
        assert_eq!(Position::event(2, 17).at_byte(311).to_string(), "track 2, event 17, byte 311");
    }
}
