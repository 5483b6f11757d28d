//! How good are drum continuations? Metrics that put a model next to human drummers and
//! simple baselines, on the same prompts.
//!
//! ```
//! use fine_drums_codec::pattern::rock_groove;
//! use fine_drums_eval::{RollPiece, levenshtein, roll_bars, stabilities, structure, two_means};
//!
//! assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
//! let piece = rock_groove(16, 100.0)?; // a ghost note every other bar
//! let bars = roll_bars(&piece)?;
//! assert_eq!(bars[0].len(), 96); // 16 lines of 6 drumroll characters
//! let st = stabilities(&bars);
//! assert_eq!(st.len(), 14); // bars 2 to 15
//! let s = structure(&[RollPiece { bars, continuation: 2 }], &Default::default());
//! assert_eq!(s.identical, 0.0); // each bar differs from both neighbours by the ghost note
//! let k = two_means(&[0.0, 0.0, 1.0, 9.0, 10.0]).expect("two clusters");
//! assert_eq!((k.low, k.high), (1.0 / 3.0, 9.5));
//! # Ok::<(), fine_drums_eval::Error>(())
//! ```
//!
//! # Example: the protocol
//!
//! [`Protocol`] is the whole evaluation: [`Data`] cuts the test windows and gathers the
//! training data from the dataset's files (as bytes), each [`System`] continues every window,
//! a [`Cache`] keeps its outputs as they arrive, and [`Protocol::run`] scores every system
//! next to the human drummers and the repeat and random baselines. [`fs`] reads a dataset
//! folder and writes the results; the `evaluate` example is that plus a command line.
//!
//! ```
//! use fine_drums_codec::pattern::rock_beat;
//! use fine_drums_dataset::{Entry, Split};
//! use fine_drums_eval::{Data, Generated, MemoryCache, Piece, Protocol, System, system};
//!
//! let protocol = Protocol::default(); // 2 prompt bars, 14 to continue
//! let mut data = Data::new(&protocol);
//! let tokens = fine_drums_dataset::cl100k()?;
//! data.add(&Entry::new("train.mid", Split::Train), &rock_beat(32, 100.0)?, &tokens)?;
//! data.add(&Entry::new("test.mid", Split::Test), &rock_beat(16, 100.0)?, &tokens)?;
//! // A system that plays the drummer's own bars: any backend fits behind `system`.
//! let oracle = system("oracle", |piece: &Piece, _bars, _seed| {
//!     Ok(Generated::new(Vec::new(), piece.truth.clone()))
//! });
//! let mut systems: Vec<Box<dyn System>> = vec![Box::new(oracle)];
//! let mut cache = MemoryCache::default();
//! let evaluation = protocol.run(&data, &mut systems, &[], &mut cache, &mut |_| {})?;
//! assert_eq!(evaluation.scores[3].name, "oracle");
//! assert_eq!(evaluation.scores[3].onset_f1, 1.0);
//! assert!(evaluation.markdown().starts_with("GMD test split: 1 pieces"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Metrics
//!
//! - **Structure** ([`structure`]), as Zhang & Callison-Burch 2023 ("Language Models are
//!   Drummers") define it, on their drumroll rendering (16 lines of 6 characters a bar),
//!   so figures compare with theirs: each bar's stability is its smallest Levenshtein
//!   distance (over the 96 characters of the bar) to a neighbour, for bars 2-15 of a
//!   16-bar piece; the mean per piece, then over pieces; a 2-means of each piece's
//!   stabilities (distance between the centres: repetition vs variation; mean spread inside
//!   the clusters); the share of bars identical to a neighbour; and duplication, the share
//!   of generated bars found verbatim in the training split (and the share never seen).
//! - **Distributions** ([`distributions`], [`compare`]), in the spirit of MGEval (Yang &
//!   Lerch 2020): onsets per voice, onsets per bar, velocities, microtiming and the onset
//!   profile (onsets by 16th of a 4/4 bar for kick, snare, hi-hat and the other voices), as
//!   histograms compared with the human ones by overlapping area and KL divergence.
//! - **Phrases** ([`phrases`]): the density drift from the prompt, how much more a phrase's
//!   last bar (4, 8, 12, 16) changes than the other bars, tom hits per bar, and crashes that
//!   open a phrase.
//! - **Validity** ([`Validity`]): the share of raw outputs that decode strictly, only
//!   leniently, or not at all; bars produced against bars asked.
//! - **Accuracy** ([`Accuracy`]): per-voice onset F1 against the true continuation with a
//!   tolerance in ticks, and the velocity error of matched onsets.
//!
//! Baselines: [`repeat`] (the prompt again and again) and [`random`] (each voice at each
//! step with its human frequency, drawn from any seeded `rand_core` generator). The `evaluate` example runs them, the offline local
//! model and any backend on the GMD test split, and writes tables and pictures
//! ([`svg`]). The crate's only I/O is in [`fs`]; everything else takes values and returns
//! values.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list (rustfmt.toml keeps
// the order).
mod error;
mod table;
mod structure;
mod kmeans;
pub mod paper;
mod accuracy;
mod dist;
mod phrase;
mod baseline;
pub mod svg;
mod report;
mod protocol;
pub mod fs;

pub use accuracy::{Accuracy, Validity};
pub use baseline::{Density, random, repeat};
pub use dist::{
    Comparison, Distributions, Histogram, PROFILE_GROUPS, compare, distributions, kl, overlap,
};
pub use error::{BoxError, Error, Result};
pub use phrase::{Phrases, phrases};
pub use protocol::{
    Cache, Data, FnSystem, Generated, Import, MemoryCache, Piece, Progress, Protocol, System,
    system,
};
pub use report::{Evaluation, Played, Scores};
pub use structure::{
    RollPiece, Structure, TwoMeans, levenshtein, roll_bars, stabilities, structure, two_means,
};
