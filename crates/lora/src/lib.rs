//! LoRA fine-tuning of a pretrained open language model, offline: load a causal LM from a
//! local Hugging Face folder, train low-rank adapters on the drum text `prepare` writes, save
//! them in PEFT's format (which PEFT, vLLM and SGLang load), and generate bars that decode,
//! under the beat format's grammar.
//!
//! ```
//! use std::path::Path;
//! use fine_drums_codec::beat::{BeatOptions, Layout};
//! use fine_drums_codec::{Context, Format};
//! use fine_drums_lora::{Adapted, Device, Model, Sampling, Tokenizer, train};
//!
//! // A folder with config.json, *.safetensors and tokenizer.json: here the tiny random
//! // Llama the parity tests use; SmolLM2-135M or Qwen2.5-0.5B the same way.
//! let base = Path::new("tests/fixtures/llama");
//! let model = Model::load(base, &Device::Cpu)?;
//! let tokenizer = Tokenizer::load(base, model.config().vocab)?;
//! // Prompt/completion pairs as `prepare` writes them.
//! let bar = "Kh..h. Sh..h. kh..Kh. Sh..h.";
//! let pairs = vec![(format!("{bar}\n>>>"), format!("\n{bar}\n{bar}\n<<<")); 4];
//! let examples = train::examples(&tokenizer, &pairs, 512)?;
//! let mut options = train::TrainOptions::default();
//! (options.epochs, options.lr) = (2, 1e-2);
//! let mut trainer = train::Trainer::new(model, base, examples, Vec::new(), &options)?;
//! trainer.run(None, &mut |_event| {})?;
//! // trainer.save_adapter(Path::new("adapter"))? writes it in PEFT's format.
//!
//! // Two bars after the prompt, drawn under the grammar: they decode strictly
//! let adapted = Adapted { model: trainer.model().clone(), tokenizer };
//! let layout = Layout { groups: 4, per: 4 };
//! let out = adapted.generate(&pairs[0].0, &BeatOptions::default(), layout, 2, "<<<", 1, Sampling::default(), 7, 300)?;
//! // (or fewer, if the model writes the stop sequence first)
//! let text = out[0].text.trim_start().trim_end_matches("<<<");
//! let bars = Format::default().decode(text, &Context::default())?;
//! assert!((1..=2).contains(&bars.bars.len()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Models
//!
//! [`Model`] runs the Llama architecture (SmolLM2, Llama 2 and 3 with their rotary scaling,
//! Qwen2 with its attention biases) and GPT-2, in f32, on the CPU or (with the `cuda`
//! feature) a GPU. Its logits equal transformers' within 1e-4: the `parity` tests check
//! tiny checkpoints that transformers wrote (`scripts/fixtures.py` makes them). Text goes
//! through the model's own `tokenizer.json` ([`Tokenizer`], the `tokenizers` crate). Nothing
//! is ever downloaded: the caller names a folder.
//!
//! # Adapters
//!
//! [`LoraConfig`] holds PEFT's settings (rank, alpha, dropout, target modules).
//! [`lora::attach`] starts adapters as PEFT does; [`lora::load`] reads a PEFT adapter folder,
//! and [`train::save_adapter`] writes one (`adapter_config.json`,
//! `adapter_model.safetensors`).
//!
//! # Training and generation
//!
//! [`train::Trainer`] trains the adapters on the completion's tokens, checkpointing every
//! epoch (a killed run resumes). Its checkpoints, AdamW, learning-rate schedule and events
//! come from the training toolkit, `fine-drums-train`, that the drum GPT shares; the crate
//! does not depend on the drum GPT. [`Adapted::generate`] samples with a KV cache and keeps to
//! the grammar of bars at the level of characters ([`text::Grammar`]): a token is drawn only
//! if every character of it continues a bar, whatever the tokenizer made of the text.
//! [`Lora`] puts it all behind the llm crate's `Complete` and `FineTune`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list.
mod error;
pub mod config;
mod ops;
mod model;
pub mod lora;
pub mod text;
mod generate;
pub mod train;
mod backend;

pub use backend::{BASE_PREFIX, Lora};
pub use candle_core::Device;
pub use config::{Arch, Config};
pub use error::{Error, Result};
pub use generate::{Adapted, Generated, Sampling};
pub use lora::LoraConfig;
pub use model::{Cache, Linear, Model, Noise};
pub use text::Tokenizer;
