//! From a folder of drum MIDI to the files a fine-tuning job takes.
//!
//! ```
//! use fine_drums_codec::pattern::rock_beat;
//! use fine_drums_dataset::{Added, Entry, Manifest, Prepared, Preparer, Split, SplitRule, cl100k};
//! use fine_drums_dataset::export::{Prices, legacy_jsonl};
//!
//! let tokens = cl100k()?;
//! let preparer = Preparer::default(); // beat format, 2 bars -> the next 14, 4,096 tokens
//! let mut prepared = Prepared::default();
//! let midi = rock_beat(32, 96.0)?; // a 32-bar groove made by code
//! let added = preparer.add(&mut prepared, &Entry::new("rock.mid", Split::Train), &midi, &tokens)?;
//! assert_eq!(added, Added::Used { examples: 2 });
//!
//! let train = legacy_jsonl(prepared.split(Split::Train));
//! assert_eq!(train.lines().count(), 2); // bars 1-16 and 17-32
//! assert!(train.starts_with(r#"{"prompt":"KhC..h. Sh..h. Kh..Kh. Sh..h.\n"#));
//!
//! // The manifest rebuilds the prompt of a new file byte for byte.
//! let manifest = Manifest::new(
//!     preparer.template.clone(),
//!     preparer.windows,
//!     preparer.filter.clone(),
//!     SplitRule::Hash(Default::default()),
//!     Prices::default(),
//!     &prepared,
//! );
//! assert_eq!(manifest.prompt(&midi)?.text, prepared.examples[0].pair.prompt);
//! // It stores the codec settings typed: the format as its text.
//! assert!(manifest.to_json().contains(r#""format": "beat""#));
//! # Ok::<(), fine_drums_dataset::Error>(())
//! ```
//!
//! # The pieces
//!
//! - [`Index`] parses GMD's `info.csv`; [`HashSplit`] splits any other folder
//!   deterministically, keeping each folder in one split (the leakage rule is in
//!   [`split`]).
//! - [`Preparer`] filters files ([`Filter`]), reads them through a [`Template`] (codec
//!   settings, separator, stop sequence), and cuts them into prompt -> completion
//!   [`Windows`] that fit a token budget, whole bars only. It takes bytes: the only I/O
//!   of the crate is in [`fs`].
//! - [`export`] writes legacy prompt/completion JSONL for `babbage-002` and
//!   `davinci-002`, chat JSONL and plain text, checks a file the way OpenAI does before
//!   training, and estimates the cost per epoch from a price table you can override.
//! - [`Manifest`] records all of it; [`Manifest::prompt`] turns a new MIDI file into the
//!   same prompt bytes the training files hold.
//!
//! # The shape of an example
//!
//! ```text
//! {"prompt":"<bar 1>\n<bar 2>\n>>>","completion":"\n<bar 3>\n…\n<bar 16>\n<<<"}
//! ```
//!
//! Every prompt ends with the separator `>>>`, every completion starts with a newline and
//! ends with the stop sequence `<<<`; neither can occur inside encoded bars.
//!
//! # Token budget
//!
//! `babbage-002` and `davinci-002` fine-tune on examples of at most 4,096 tokens of their
//! tokenizer, `cl100k_base` ([`cl100k`]). A default window (16 bars of the beat format)
//! costs about 350; the budget matters for long windows or the drumroll and exact
//! formats.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod controls;
mod error;
pub mod export;
pub mod fs;
mod index;
mod manifest;
mod pairs;
mod prepare;
pub mod split;
mod template;

pub use error::{Error, Result};
pub use index::{BeatType, Entry, Index, Split};
pub use manifest::{MANIFEST_VERSION, Manifest, Prompt, SplitFiles, SplitRule};
pub use pairs::{CountTokens, Cut, Pair, Windows, cl100k};
pub use prepare::{Added, Example, Filter, Prepared, Preparer, Skip, Skipped, Source, SplitStats};
pub use split::{GroupBy, HashSplit};
pub use template::{CodecSettings, Template};
