//! fine_drums in the DAW: a CLAP and VST3 MIDI plugin that listens to the drum track and
//! plays the drum GPT's next bars in time, on the host's bar grid.
//!
//! The plugin is this crate built as a `cdylib` (see the README for bundling and installing).
//! The library underneath it works without a host: capture bars, generate a phrase, put it
//! on a grid.
//!
//! ```
//! use fine_drums_plugin::{Ask, Capture, Generator, Heard, Signature};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Two bars of a rock beat as a host would deliver them: kick, snare and eighth hi-hats.
//! let mut capture = Capture::default();
//! for bar in 0..2 {
//!     capture.take(Heard::Bar { bar, signature: Signature::DEFAULT });
//!     for eighth in 0..8 {
//!         let at = eighth as f64 / 2.0;
//!         capture.take(Heard::Hit { bar, at, pitch: 42, velocity: 80 });
//!         let drum = match eighth { 0 | 4 => Some(36), 2 | 6 => Some(38), _ => None };
//!         if let Some(pitch) = drum {
//!             capture.take(Heard::Hit { bar, at, pitch, velocity: 100 });
//!         }
//!     }
//! }
//!
//! // Asked in bar 2, the built-in model plays the two bars after it (bars 3 and 4).
//! let generator = Generator::load(None)?;
//! let mut ask = Ask::default();
//! (ask.bars, ask.seed) = (2, 7);
//! let phrase = generator.generate(&capture, 2, &ask)?;
//! assert_eq!(phrase.first_bar, 3);
//! assert_eq!(phrase.bars, 2);
//! assert!(phrase.hits().all(|n| n.at >= 0.0 && n.at < 8.0));
//! // The same seed plays the same notes.
//! assert_eq!(generator.generate(&capture, 2, &ask)?, phrase);
//! # Ok(())
//! # }
//! ```
//!
//! # How it works in the host
//!
//! - **Capture.** While the transport plays, every note-on that comes in is placed on the
//!   host's bar grid ([`Clock`]: tempo, meter and bar position from the transport) and sent,
//!   as a [`Heard`], through a lock-free ring to the rest of the plugin, which keeps the most
//!   recent [`Capture::MAX_BARS`] bars. A bar played again (a loop) replaces its capture.
//! - **Continue.** A press of *Continue* (a rising edge of the parameter) in bar *k* asks for
//!   the bars after it: the model reads the bars before *k*, writes bar *k* as well (the
//!   drummer is playing it: that bar is dropped) and the bars after it, which play from bar
//!   *k + 1*. *Auto continue* asks after every *prompt bars* bars while nothing plays. *Fill
//!   next bar* asks for a one-bar fill.
//! - **Generate.** The framework's background thread takes the captured bars, writes them as
//!   a MIDI file and continues it with [`fine_drums_continue::continue_midi`] and the drum GPT
//!   ([`Generator`]): the style, intensity, fills, feel, temperature and seed of the
//!   parameters ([`Ask`]). The phrase goes back to the audio thread through a second ring.
//! - **Play.** The [`Player`] starts the phrase at the first bar line after it arrived (never
//!   in the middle of a bar) and sends its notes sample-accurately. `process` never
//!   allocates, locks or waits: in debug builds nice-plug aborts on any allocation there
//!   (the default feature `assert_process_allocs`).
//! - **State.** The parameters and the [`Saved`] session (captured bars, last phrase, seed
//!   presses, model folder) are saved in the host's project. The last phrase is also written
//!   to [`LAST_PHRASE`] in [`phrases_dir`], to drag into the arrangement.
//! - **Model.** The built-in model, or the folder that the session names, or the one that
//!   [`MODEL_ENV`] names.
#![deny(missing_docs)]

pub mod bundle;
mod capture;
mod error;
mod generate;
mod grid;
mod params;
mod phrase;
mod plugin;
mod session;

pub use capture::{Capture, CapturedBar, CapturedHit, Heard};
pub use error::{Error, Result};
pub use generate::{Ask, Generator};
pub use grid::{Clock, Signature};
pub use params::{DrumParams, SessionField, Style, Voices};
pub use phrase::{Note, Phrase, Player, Sent, Timed};
pub use plugin::{FineDrums, Task};
pub use session::{LAST_PHRASE, MODEL_ENV, PHRASES_ENV, Saved, Shared, phrases_dir, write_phrase};
