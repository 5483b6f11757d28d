//! The training toolkit of fine_drums: what every trainer of the project shares, written once.
//!
//! ```
//! use fine_drums_train::checkpoint::{self, Files};
//! use fine_drums_train::schedule::lr_at;
//!
//! // A checkpoint is saved in two steps and read back checked against its checksums.
//! let dir = std::env::temp_dir().join(format!("fine-drums-train-doc-{}", std::process::id()));
//! checkpoint::save_files(&dir, &[("config.json", b"{}".to_vec())])?;
//! let files = Files::open(&dir)?.expect("a checkpoint");
//! assert_eq!(files.read("config.json")?, b"{}");
//! # std::fs::remove_dir_all(&dir).ok();
//!
//! // The learning rate warms up linearly, then decays along a cosine to a tenth of its peak.
//! assert!(lr_at(1e-3, 100, 0, 1000) < lr_at(1e-3, 100, 99, 1000));
//! # Ok::<(), fine_drums_train::Error>(())
//! ```
//!
//! - [`checkpoint`]: a folder of files saved in two steps (a staging folder, then a move,
//!   `checksums.json` last) so that a killed process leaves the old checkpoint or the new
//!   one, and every file read back is checked against its length and hash.
//! - [`optim`]: AdamW whose moments are saved and restored, so that a resumed run continues
//!   exactly as if it had never stopped.
//! - [`schedule`]: the learning rate at each step.
//! - [`kernels`]: the element-wise arithmetic of the CPU training steps, compiled for the
//!   widest vectors the CPU has.
//! - [`Event`]: what a run reports as it goes (start, steps, epochs, the end).
//! - [`jobs`]: the offline job runner, [`jobs::Runner`]: uploads, job ids, events, cancel,
//!   the end of a job and the models it made, for any backend that trains on this machine.
//!
//! The drum GPT (`fine-drums-gpt`) and LoRA (`fine-drums-lora`) train with it; neither
//! depends on the other. The crate does no I/O but that of [`checkpoint`], and runs jobs on
//! threads of their own.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list.
mod error;
pub mod kernels;
pub mod schedule;
mod event;
pub mod optim;
pub mod checkpoint;
pub mod jobs;

pub use error::{Error, Result};
pub use event::Event;
