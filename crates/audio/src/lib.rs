//! Hear a drum groove: a drum kit synthesised in code, so nothing is downloaded, renders a
//! [`Groove`](fine_drums_codec::Groove) to audio and writes it as WAV.
//!
//! ```
//! use fine_drums_audio::Kit;
//! use fine_drums_codec::pattern::rock_groove;
//!
//! // Two bars of 4/4 at 100 beats a minute last 4.8 seconds.
//! let groove = rock_groove(2, 100.0)?;
//! let audio = Kit::built_in(44_100)?.render(&groove)?;
//! assert!((audio.seconds() - 4.8).abs() < 1e-3);
//! assert!(audio.peak() > 0.1 && audio.peak() <= 1.0);
//! let wav = audio.wav();
//! assert_eq!(&wav[..4], b"RIFF");
//! assert_eq!(wav.len(), 44 + 2 * audio.samples.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each of the nine gmd9 drums is a short synthesised sound: swept sines for the kick and the
//! toms, a tone and noise for the snare, high-passed noise for the hi-hats, inharmonic square
//! waves for the cymbals. A hit sounds at its exact tick (microtiming included), louder with
//! its velocity; the tempo and meter of each bar place it in time. [`SoundFont`] renders
//! the same way through any General MIDI SoundFont (rustysynth), each hit a note of its own
//! pitch on the percussion channel. The crate takes a groove (and a SoundFont's bytes) and
//! returns samples and bytes: it does no I/O.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod kit;
mod render;
mod soundfont;

pub use error::{Error, Result};
pub use kit::Kit;
pub use render::{Audio, MAX_SECONDS};
pub use soundfont::SoundFont;
