//! Standard MIDI Files in and out.
//!
//! [`read`] takes the bytes of any SMF (format 0, 1 or 2, any resolution, running status,
//! note-on with velocity 0 as note-off, tempo maps and meter changes) and returns the
//! [`Groove`](crate::Groove) of one channel's drum notes. [`write()`] turns a groove back into a format 0 file.
//! Neither touches the file system.
//!
//! midly reads the file's header and frames its chunks (RIFF-wrapped files included). The
//! events inside a track chunk are read by the crate's own scanner, and files are written by
//! the crate's own writer: midly's typed event iterator and writer took 21 ms and 13 ms for
//! the Groove MIDI Dataset, beyond the codec's 18 ms budget for a whole round trip. Both are
//! tested against midly: the scanner must read exactly what midly reads from any track midly
//! writes, and midly must read back exactly what the writer writes.
//!
//! An event that breaks the SMF grammar (a cut message, a data byte with its top bit set, a
//! missing status) is an [`Error::Midi`](crate::Error::Midi) naming the track, the event and the byte; midly's
//! lenient reader would end the track there without a word.

mod read;
mod write;

pub use read::{ReadOptions, ReadReport, read, read_with_report};
pub use write::{WriteOptions, write};
