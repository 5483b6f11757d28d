//! A drum GPT: a small transformer language model over the codec's own tokens, trained
//! offline by the project itself, on the CPU (or a GPU with the `cuda` feature).
//!
//! ```
//! use fine_drums_codec::{Context, Format, Meter, pattern::rock_groove};
//! use fine_drums_dataset::Template;
//! use fine_drums_gpt::train::{TrainOptions, Trainer};
//! use fine_drums_gpt::{Device, Drummer, Sampling};
//!
//! // Training texts: beat-format bars, one a line (here, rock beats made by code).
//! let text = Format::default().encode(&rock_groove(8, 96.0)?)?;
//! let mut options = TrainOptions::default();
//! (options.preset, options.epochs, options.batch) = ("tiny".into(), 2, 2);
//! let examples = vec![text.clone(); 4];
//! let mut trainer = Trainer::new(&Template::default(), &examples, &examples[..1], 6, &options, &Device::Cpu)?;
//! trainer.run(None, &mut |_event| {})?;
//!
//! // Continue two bars with four more, sampled under the grammar: every bar decodes.
//! let drummer = Drummer { gpt: trainer.gpt().clone(), vocab: trainer.vocab().clone() };
//! let prompt: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
//! let bars = drummer.continue_bars(&prompt, Meter::FOUR_FOUR, 4, 1, Sampling::default(), 42)?;
//! let groove = Format::default().decode(&bars[0], &Context::default())?;
//! assert_eq!(groove.bars.len(), 4);
//! // And score a continuation: negative log-likelihood per bar, in nats.
//! let nll = drummer.nll_per_bar(&prompt, &bars[0], Meter::FOUR_FOUR)?;
//! assert!(nll.is_finite() && nll > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The model
//!
//! A decoder-only transformer ([`Network`]): pre-norm blocks of causal self-attention and a
//! GELU feed-forward layer, with learned embeddings of each token's place in the sequence, in
//! the bar (its step) and in the phrase (its bar within 4-, 8- and 16-bar phrases), so that
//! it can learn where fills go. Sizes come as presets ([`Config::preset`]): `tiny` for tests,
//! `small` (the default, about a million parameters) and `base` for a GPU.
//!
//! # The tokens
//!
//! Not a text tokenizer's: the beat format's own units ([`tokens`]). A bar is a bar token
//! and one token per step; steps training never saw are spelled hit by hit, so any bar the
//! codec can write has tokens. Sampling walks the grammar ([`tokens::Grammar`]) and draws
//! only tokens it allows: every output decodes strictly.
//!
//! # Training and checkpoints
//!
//! [`train::Trainer`] trains with AdamW (warm-up, cosine decay), validates after every
//! epoch and stops early on the validation loss; it is deterministic for a seed on the CPU.
//! There each step's gradients are worked out by hand ([`Network::loss_and_grads`]) with
//! fused single-pass kernels for layer norm, GELU, the causal softmax and the cross-entropy
//! (the crate README has the figures); other devices use candle's autograd, which a test
//! checks the hand-written gradients against.
//! [`checkpoint`] writes a model as a folder of safetensors weights, a JSON config and a
//! vocabulary, each file atomically and checksummed, so a killed run resumes from its last
//! epoch to the same final weights, and a damaged file is an error that names it. The
//! checkpoint files, AdamW ([`optim`]), the learning-rate schedule and the training
//! [`Event`](train::Event)s come from the training toolkit, `fine-drums-train`, which LoRA
//! shares.
//!
//! # As a backend
//!
//! [`Gpt`] implements the llm crate's `Complete` (with `nll_per_bar` for scoring) and
//! `FineTune` (training runs in the background with live events), so the continuation
//! pipeline, the examples and the evaluation use it like any other backend.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `cuda` | off | candle's CUDA backend: train and sample on an NVIDIA GPU |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list.
mod error;
mod config;
mod ops;
pub mod tokens;
mod model;
mod step;
pub use fine_drums_train::optim;
pub mod checkpoint;
pub mod train;
mod controls;
mod sample;
mod backend;

pub use backend::{BASE_MODEL, EMBEDDED, Gpt, INFILL_TEMPERATURE, Model, TEMPERATURE, TOP_P};
pub use candle_core::Device;
pub use config::{CONFIG_VERSION, Config, SLOTS};
pub use controls::Steer;
pub use error::{Error, Result};
/// The network itself (the backend is [`Gpt`]).
pub use model::Gpt as Network;
pub use model::{Batch, Cache, Dropout};
pub use sample::{Drummer, FILL_HEAT, Generation, STEERED_HEAT, Sampling};
