//! Models and training checkpoints on disk: a folder of `config.json` (the shape, the
//! template, what training did), `vocab.json`, `model.safetensors` and, for a checkpoint
//! that training can resume from, `optimizer.safetensors`; `checksums.json`, written last,
//! holds each file's length and FNV-1a hash.
//!
//! A save is a two-step commit. Every file is written whole into a staging folder beside the
//! checkpoint (`.<name>.partial`), `checksums.json` last; only then are the files moved into
//! the checkpoint, `checksums.json` last again. A process killed while writing the staging
//! folder leaves the previous checkpoint untouched (the incomplete staging folder is thrown
//! away); one killed while moving leaves a complete staging folder, whose move the next
//! [`load`] finishes. So a killed process leaves the previous checkpoint or the new one, and
//! a file that is cut short or corrupted, or that comes from another checkpoint, is an error
//! naming it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use fine_drums_dataset::Template;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Gpt;
use crate::tokens::Vocabulary;

/// The files of a checkpoint.
pub const CONFIG: &str = "config.json";
/// The vocabulary file.
pub const VOCAB: &str = "vocab.json";
/// The weights.
pub const WEIGHTS: &str = "model.safetensors";
/// The optimiser's moments (training checkpoints only).
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// The lengths and hashes of the others, written last.
pub const CHECKSUMS: &str = "checksums.json";

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

/// FNV-1a, 64 bits: enough to tell a damaged or swapped file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checksums {
    files: BTreeMap<String, (u64, String)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::checkpoint(path, e.to_string(), Some(Box::new(e)))
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    fine_drums_dataset::fs::write_atomic(&path, bytes)
        .map_err(|e| Error::checkpoint(&path, "cannot be written", Some(Box::new(e))))
}

fn safetensors_bytes(tensors: &HashMap<String, Tensor>, dir: &Path, name: &str) -> Result<Vec<u8>> {
    // candle writes safetensors to a path: write to a scratch file and read it back, so that
    // the checksum covers exactly the bytes on disk.
    let tmp = dir.join(format!(".{name}.build"));
    candle_core::safetensors::save(tensors, &tmp)
        .map_err(|e| Error::checkpoint(&tmp, e.to_string(), Some(Box::new(e))))?;
    let bytes = std::fs::read(&tmp).map_err(io(&tmp))?;
    std::fs::remove_file(&tmp).map_err(io(&tmp))?;
    Ok(bytes)
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
    let staging = staging_of(dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    files.push((CONFIG, serde_json::to_vec_pretty(meta).unwrap_or_default()));
    files.push((VOCAB, serde_json::to_vec_pretty(vocab).unwrap_or_default()));
    let dtype = if half { DType::F16 } else { DType::F32 };
    let mut weights = HashMap::with_capacity(gpt.vars().len());
    for (name, var) in gpt.vars() {
        weights.insert(name.clone(), var.as_tensor().to_dtype(dtype)?);
    }
    files.push((WEIGHTS, safetensors_bytes(&weights, &staging, WEIGHTS)?));
    if let Some(state) = optimizer {
        files.push((OPTIMIZER, safetensors_bytes(state, &staging, OPTIMIZER)?));
    }
    save_files(dir, &files)
}

/// Saves `files` (name and bytes) into `dir` as one checkpoint, the way models are saved:
/// through the staging folder, with `checksums.json` written last, so that a process killed
/// at any point leaves the old files or the new ones (see [`Files::open`]). A file named
/// [`OPTIMIZER`] that the new files lack is removed.
pub fn save_files(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let staging = staging_of(dir);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let mut sums = Checksums::default();
    for (name, bytes) in files {
        write_file(&staging, name, bytes)?;
        sums.files
            .insert((*name).to_string(), (bytes.len() as u64, format!("{:016x}", fnv1a(bytes))));
    }
    // The staging folder is complete once its checksums are there.
    write_file(&staging, CHECKSUMS, &serde_json::to_vec_pretty(&sums).unwrap_or_default())?;
    commit(dir, &staging)
}

/// The files of a checkpoint saved by [`save_files`] (or [`save`]), each checked against its
/// checksum as it is read.
#[derive(Debug)]
pub struct Files {
    dir: std::path::PathBuf,
    sums: Checksums,
}

impl Files {
    /// Opens the checkpoint in `dir`, once a save a killed process left there is finished
    /// or thrown away; `None` if there is none.
    pub fn open(dir: &Path) -> Result<Option<Files>> {
        if !exists(dir)? {
            return Ok(None);
        }
        let path = dir.join(CHECKSUMS);
        let sums = parse(&path, &read(&path)?)?;
        Ok(Some(Files { dir: dir.to_path_buf(), sums }))
    }

    /// Whether the checkpoint has a file `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.sums.files.contains_key(name)
    }

    /// The bytes of file `name`, checked: an error names a missing, cut or corrupted file.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(name);
        let bytes = read(&path)?;
        check(&path, name, &bytes, &self.sums)?;
        Ok(bytes)
    }
}

/// The staging folder of the checkpoint in `dir`: `.<name>.partial` beside it.
fn staging_of(dir: &Path) -> std::path::PathBuf {
    let name = dir.file_name().map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy());
    dir.with_file_name(format!(".{name}.partial"))
}

/// Moves a complete staging folder's files into `dir` (`checksums.json` last; a file the
/// staging folder lacks, as a finished model lacks the optimiser's state, removed), then
/// removes the staging folder.
fn commit(dir: &Path, staging: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let text = std::fs::read(staging.join(CHECKSUMS)).map_err(io(&staging.join(CHECKSUMS)))?;
    let sums: Checksums = parse(&staging.join(CHECKSUMS), &text)?;
    if !sums.files.contains_key(OPTIMIZER) && dir.join(OPTIMIZER).exists() {
        std::fs::remove_file(dir.join(OPTIMIZER)).map_err(io(&dir.join(OPTIMIZER)))?;
    }
    for name in sums.files.keys().map(String::as_str).chain([CHECKSUMS]) {
        let from = staging.join(name);
        // Moved already by a commit that was cut short.
        if !from.exists() {
            continue;
        }
        std::fs::rename(&from, dir.join(name)).map_err(io(&dir.join(name)))?;
    }
    std::fs::remove_dir_all(staging).map_err(io(staging))
}

/// Finishes or throws away a save that a killed process left: a complete staging folder is
/// moved in, an incomplete one removed.
fn recover(dir: &Path) -> Result<()> {
    let staging = staging_of(dir);
    if !staging.is_dir() {
        return Ok(());
    }
    if staging.join(CHECKSUMS).is_file() {
        commit(dir, &staging)
    } else {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))
    }
}

/// Checks a file of a checkpoint against `checksums.json`.
fn check(path: &Path, name: &str, bytes: &[u8], sums: &Checksums) -> Result<()> {
    let Some((len, hash)) = sums.files.get(name) else {
        return Err(Error::checkpoint(path, format!("not listed in {CHECKSUMS}"), None));
    };
    if bytes.len() as u64 != *len {
        return Err(Error::checkpoint(
            path,
            format!(
                "{} bytes, but the checkpoint wrote {len}: the file is cut short or was replaced",
                bytes.len()
            ),
            None,
        ));
    }
    if format!("{:016x}", fnv1a(bytes)) != *hash {
        return Err(Error::checkpoint(
            path,
            "its checksum does not match: the file is corrupted or comes from another checkpoint",
            None,
        ));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::checkpoint(path, e.to_string(), Some(Box::new(e))))
}

/// Whether `dir` holds a checkpoint (or model), once a save a killed process left there is
/// finished or thrown away.
pub fn exists(dir: &Path) -> Result<bool> {
    recover(dir)?;
    Ok(dir.join(CHECKSUMS).is_file())
}

/// A file of a checkpoint: a regular file of at most
/// [`MAX_MODEL_FILE`](fine_drums_dataset::fs::MAX_MODEL_FILE) bytes, refused before anything
/// is allocated for it otherwise.
fn read(path: &Path) -> Result<Vec<u8>> {
    fine_drums_dataset::fs::read_model_file(path, fine_drums_dataset::fs::MAX_MODEL_FILE)
        .map_err(io(path))
}

/// Loads the model (or checkpoint) in `dir` onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded> {
    recover(dir)?;
    load_with(dir, device, &mut |name| read(&dir.join(name)))
}

/// Loads a model from its files' bytes, `read(name)` giving each; `dir` names them in errors.
pub fn load_with(
    dir: &Path,
    device: &Device,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
) -> Result<Loaded> {
    let sums: Checksums = parse(&dir.join(CHECKSUMS), &read(CHECKSUMS)?)?;
    let mut read_checked = |name: &str| -> Result<Vec<u8>> {
        let bytes = read(name)?;
        check(&dir.join(name), name, &bytes, &sums)?;
        Ok(bytes)
    };
    let meta: Meta = parse(&dir.join(CONFIG), &read_checked(CONFIG)?)?;
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
    let mut vocab: Vocabulary = parse(&dir.join(VOCAB), &read_checked(VOCAB)?)?;
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
    let optimizer = if sums.files.contains_key(OPTIMIZER) {
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
