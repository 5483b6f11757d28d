//! Continue a drum MIDI file with any language model that implements `fine-drums-llm`'s
//! [`Complete`](fine_drums_llm::Complete).
//!
//! ```
//! use fine_drums_codec::pattern::rock_beat;
//! use fine_drums_continue::{ContinueOptions, continue_midi};
//! use fine_drums_dataset::Manifest;
//! use fine_drums_llm::{
//!     BoxFuture, Choice, Complete, Completion, CompletionRequest, FinishReason, Result, Usage,
//! };
//!
//! /// A "model" that always plays the same bar: any backend implements this one method.
//! struct OneBar;
//!
//! impl Complete for OneBar {
//!     fn complete<'a>(&'a self, r: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
//!         Box::pin(async move {
//!             let bar = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n";
//!             let text = format!("\n{}{}", bar.repeat(4), r.stop[0]);
//!             Ok(Completion::new(vec![Choice::new(text, FinishReason::Stop)], Usage::default()))
//!         })
//!     }
//! }
//!
//! # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! // The manifest `prepare` wrote says how prompts were built; here, the defaults.
//! let manifest = Manifest::of_settings(&Default::default());
//! let midi = rock_beat(2, 96.0)?;
//! let mut options = ContinueOptions::new("one-bar");
//! options.bars = 4;
//! let future = continue_midi(&midi, &manifest, &OneBar, &options);
//! let out = tokio::runtime::Builder::new_current_thread().build()?.block_on(future)?;
//! assert_eq!(out.report.bars_kept, 4);
//! assert_eq!(out.groove.bars.len(), 6); // the 2 source bars, unchanged, then 4 new ones
//! # Ok(())
//! # }
//! ```
//!
//! [`continue_midi`] builds the prompt from the source's last bars through the dataset
//! manifest, exactly as the training files did, asks the backend, decodes leniently,
//! resamples unusable samples, gives the new bars a drummer's velocity and microtiming (the
//! `fine-drums-feel` crate's `Feel`), and returns every bar of the source, unchanged,
//! followed by the new bars, as a MIDI file in the source's tempo and meter, with a
//! [`Report`] that lists each bar the decoder dropped as a [`Dropped`] (request, line,
//! column, reason).
//!
//! The crate does no I/O: MIDI bytes in, MIDI bytes out; the backend does what it must.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list.
mod error;
mod infill;
mod pipeline;

pub use error::{Error, Result};
pub use infill::{SUFFIX_BARS, humanize_midi, infill_midi};
pub use pipeline::{Continuation, ContinueOptions, Dropped, Report, continue_midi};
