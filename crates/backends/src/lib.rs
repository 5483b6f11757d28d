//! One place that picks a fine_drums backend by name and builds it from settings, as a
//! command line gives them, for completion or for fine-tuning: the drum GPT, the Markov
//! model, LoRA on a pretrained model, or the OpenAI client. The examples and `serve` share it
//! instead of each building its own.
//!
//! ```
//! use fine_drums_backends::{Kind, Settings};
//!
//! let mut settings = Settings::of("markov".parse()?);
//! settings.top_k = 8;
//! let completer = settings.completer(None)?;
//! assert_eq!((settings.kind, completer.model.as_str()), (Kind::Markov, "local"));
//! # Ok::<(), fine_drums_backends::Error>(())
//! ```
//!
//! # Features
//!
//! Each backend but the Markov model is behind a cargo feature, so that a program compiles
//! only the backends it offers: `gpt` (candle), `lora` (candle and tokenizers), `openai`
//! (async-openai, reqwest, tokio). A backend asked for by name that the build left out is
//! [`Error::NotBuilt`], which names the feature; [`Kind::built`] lists those it has.
//!
//! # Errors
//!
//! A backend's own error is kept as the source of this crate's, with the model folder or
//! file it concerns.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod kind;
mod settings;

pub use error::{Error, Result};
pub use kind::Kind;
pub use settings::{Completer, Settings, Training};
