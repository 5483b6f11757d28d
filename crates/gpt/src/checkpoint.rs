//! Models and training checkpoints on disk: a folder of `config.json` (the shape, the
//! template, what training did), `vocab.json`, `model.safetensors` and, for a checkpoint
//! that training can resume from, `optimizer.safetensors`; `checksums.json`, written last,
//! holds each file's length and FNV-1a hash.
//!
//! A save is the training toolkit's two-step commit ([`fine_drums_train::checkpoint`]): a
//! killed process leaves the previous checkpoint or the new one, and a file that is cut short
//! or corrupted, or that comes from another checkpoint, is an error naming it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use fine_drums_dataset::Template;
use fine_drums_train::checkpoint::{Checksums, json, read_file, recover, safetensors_bytes};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Gpt;
use crate::tokens::Vocabulary;

pub use fine_drums_train::checkpoint::{CHECKSUMS, Files, OPTIMIZER, exists, save_files};

/// The files of a checkpoint.
pub const CONFIG: &str = "config.json";
/// The vocabulary file.
pub const VOCAB: &str = "vocab.json";
/// The weights.
pub const WEIGHTS: &str = "model.safetensors";

/// What a model's `config.json` holds besides its shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Meta {
    /// The model's shape.
    pub config: Config,
    /// How prompts and completions are written (the manifest's template).
    pub template: Template,
    /// Where training stands: for a finished model, where it stopped.
    pub training: Progress,
}

/// Where a training run stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// The seed the run started from.
    pub seed: u64,
    /// Optimiser steps taken.
    pub step: u64,
    /// Epochs finished.
    pub epoch: u32,
    /// The best validation loss so far (per token), and the step it was reached at.
    pub best: Option<(f64, u64)>,
    /// Evaluations since the best one.
    pub stale: u32,
    /// The state of the generator that orders the training windows.
    pub rng: u64,
    /// Bars a completion holds: the commonest completion length in training.
    pub completion_bars: usize,
    /// Whether training has ended (early stopping or the last epoch).
    pub done: bool,
}

/// A model as loaded: its weights, vocabulary and meta.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The network.
    pub gpt: Gpt,
    /// Its tokens.
    pub vocab: Vocabulary,
    /// Its config, template and training progress.
    pub meta: Meta,
    /// The optimiser's moments, when the checkpoint has them.
    pub optimizer: Option<HashMap<String, Tensor>>,
}

/// Saves a model (and, with `optimizer`, a checkpoint training can resume from) into `dir`.
/// `half` stores the weights as f16, for a model to ship.
pub fn save(
    dir: &Path,
    gpt: &Gpt,
    vocab: &Vocabulary,
    meta: &Meta,
    optimizer: Option<&HashMap<String, Tensor>>,
    half: bool,
) -> Result<()> {
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    files.push((CONFIG, serde_json::to_vec_pretty(meta).unwrap_or_default()));
    files.push((VOCAB, serde_json::to_vec_pretty(vocab).unwrap_or_default()));
    let dtype = if half { DType::F16 } else { DType::F32 };
    let mut weights = HashMap::with_capacity(gpt.vars().len());
    for (name, var) in gpt.vars() {
        weights.insert(name.clone(), var.as_tensor().to_dtype(dtype)?);
    }
    files.push((WEIGHTS, safetensors_bytes(&weights)?));
    if let Some(state) = optimizer {
        files.push((OPTIMIZER, safetensors_bytes(state)?));
    }
    Ok(save_files(dir, &files)?)
}

/// Loads the model (or checkpoint) in `dir` onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded> {
    recover(dir)?;
    load_with(dir, device, &mut |name| Ok(read_file(&dir.join(name))?))
}

/// Loads a model from its files' bytes, `read(name)` giving each; `dir` names them in errors.
pub fn load_with(
    dir: &Path,
    device: &Device,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
) -> Result<Loaded> {
    let sums = Checksums::parse(&dir.join(CHECKSUMS), &read(CHECKSUMS)?)?;
    let mut read_checked = |name: &str| -> Result<Vec<u8>> {
        let bytes = read(name)?;
        sums.check(&dir.join(name), name, &bytes)?;
        Ok(bytes)
    };
    let meta: Meta = json(&dir.join(CONFIG), &read_checked(CONFIG)?)?;
    meta.config.check().map_err(|e| Error::checkpoint(&dir.join(CONFIG), e.to_string(), None))?;
    let bars = meta.training.completion_bars;
    if bars > fine_drums_llm::MAX_COMPLETION_BARS {
        return Err(Error::checkpoint(
            &dir.join(CONFIG),
            format!(
                "completion_bars is {bars}; a model writes at most {} bars",
                fine_drums_llm::MAX_COMPLETION_BARS
            ),
            None,
        ));
    }
    let mut vocab: Vocabulary = json(&dir.join(VOCAB), &read_checked(VOCAB)?)?;
    vocab.settle().map_err(|e| Error::checkpoint(&dir.join(VOCAB), e.to_string(), None))?;
    if vocab.len() != meta.config.vocab {
        return Err(Error::checkpoint(
            &dir.join(VOCAB),
            format!("{} tokens, but the model in {CONFIG} has {}", vocab.len(), meta.config.vocab),
            None,
        ));
    }
    let weights_path = dir.join(WEIGHTS);
    let weights = candle_core::safetensors::load_buffer(&read_checked(WEIGHTS)?, device)
        .map_err(|e| Error::checkpoint(&weights_path, e.to_string(), Some(Box::new(e))))?;
    // The network is made (and allocated) only for a config its weights file bears out.
    let stored: usize = weights.values().map(Tensor::elem_count).sum();
    if stored != meta.config.parameters() {
        return Err(Error::checkpoint(
            &weights_path,
            format!(
                "{stored} numbers, but the model in {CONFIG} has {} parameters",
                meta.config.parameters()
            ),
            None,
        ));
    }
    let gpt = Gpt::new(&meta.config, 0, device)?;
    gpt.load(&weights).map_err(|e| Error::checkpoint(&weights_path, e.to_string(), None))?;
    let optimizer = if sums.contains(OPTIMIZER) {
        let path = dir.join(OPTIMIZER);
        let bytes = read_checked(OPTIMIZER)?;
        Some(
            candle_core::safetensors::load_buffer(&bytes, device)
                .map_err(|e| Error::checkpoint(&path, e.to_string(), Some(Box::new(e))))?,
        )
    } else {
        None
    };
    Ok(Loaded { gpt, vocab, meta, optimizer })
}
