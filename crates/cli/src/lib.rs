//! The command line of fine_drums: each example's arguments and what it does, as functions
//! that other programs and tests can call. The workspace's examples are one line each over
//! this crate.
//!
//! ```
//! use clap::Parser;
//! use fine_drums_cli::make_groove;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let out = std::env::temp_dir().join(format!("fine-drums-cli-doc-{}.mid", std::process::id()));
//! let args = make_groove::Args::try_parse_from(["make_groove".as_ref(), out.as_os_str()])?;
//! make_groove::run(args)?;
//! assert!(std::fs::read(&out)?.starts_with(b"MThd"));
//! # std::fs::remove_file(&out)?;
//! # Ok(())
//! # }
//! ```
//!
//! # The commands
//!
//! Each module is one command: its [`clap`] arguments (`Args`) and `run`. [`main`] is the
//! whole of an example's `main`: it parses the arguments, runs the command, and reports an
//! error with every cause behind it.
//!
//! | module | example | feature |
//! |---|---|---|
//! | [`continuation`] | `continue`: continue a drum MIDI file with a model | |
//! | [`fine_tune`] | `fine_tune`: fine-tune a model on prepared files | |
//! | [`prepare`] | `prepare`: a folder of MIDI files as fine-tuning files | |
//! | [`evaluate`] | `evaluate`: score continuations on the GMD | |
//! | [`encode`], [`decode`] | MIDI to text and back | |
//! | [`feel`], [`render`], [`make_groove`], [`codec_report`] | the feel, audio, test grooves, the codec's report | |
//! | `serve` | `serve`: the OpenAI-compatible server | `serve` |
//!
//! # Features
//!
//! The backends a build offers are features, passed on to `fine-drums-backends`: `gpt` (the
//! drum GPT, on by default), `lora`, `openai` and `cuda`. A command asked for a backend the
//! build left out says which feature builds it. `serve` adds the server.
//!
//! # The shared parts
//!
//! [`FormatArgs`], [`BackendArgs`] (which gives `fine-drums-backends`' settings) and
//! [`SamplingArgs`] are the options several commands take; [`At`] names the file an error
//! concerns; [`Renderer`] renders grooves to WAV.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod args;
mod audio;
mod report;

pub mod codec_report;
pub mod continuation;
pub mod decode;
pub mod encode;
pub mod evaluate;
pub mod feel;
pub mod fine_tune;
pub mod humanize;
pub mod make_groove;
pub mod prepare;
pub mod render;
pub mod steering;
#[cfg(feature = "serve")]
pub mod serve;

use std::error::Error;
use std::process::ExitCode;

pub use args::{BackendArgs, Completer, FormatArgs, SamplingArgs, manifest};
pub use audio::Renderer;
pub use report::{At, AtPath, clock_seed, exit, progress, warn_unmapped, warn_withheld_key};

/// What a command's success says: `()` always succeeds; `false` is a run that finished but
/// found a failure (the codec report's round trips), and exits 1.
pub trait Outcome {
    /// Whether the run succeeded.
    fn succeeded(&self) -> bool;
}

impl Outcome for () {
    fn succeeded(&self) -> bool {
        true
    }
}

impl Outcome for bool {
    fn succeeded(&self) -> bool {
        *self
    }
}

/// The whole `main` of a command: its arguments parsed from the command line (`--help` and
/// bad arguments handled by clap), `run`, and the exit code, with an error and every cause
/// behind it on standard error.
pub fn main<A: clap::Parser, T: Outcome>(run: fn(A) -> Result<T, Box<dyn Error>>) -> ExitCode {
    match run(A::parse()) {
        Ok(done) if done.succeeded() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => exit(Err(e)),
    }
}
