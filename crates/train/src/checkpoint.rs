//! Checkpoints on disk: a folder of files whose `checksums.json`, written last, holds each
//! file's length and FNV-1a hash.
//!
//! A save is a two-step commit. Every file is written whole into a staging folder beside the
//! checkpoint (`.<name>.partial`), `checksums.json` last; only then are the files moved into
//! the checkpoint, `checksums.json` last again. A process killed while writing the staging
//! folder leaves the previous checkpoint untouched (the incomplete staging folder is thrown
//! away); one killed while moving leaves a complete staging folder, whose move the next
//! [`exists`] or [`Files::open`] finishes. So a killed process leaves the previous checkpoint
//! or the new one, and a file that is cut short or corrupted, or that comes from another
//! checkpoint, is an error naming it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The optimiser's state, in checkpoints that training resumes from; a save without it
/// removes the old one.
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// The lengths and hashes of the other files, written last.
pub const CHECKSUMS: &str = "checksums.json";

/// The lengths and hashes of a checkpoint's files, as `checksums.json` holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    files: BTreeMap<String, (u64, String)>,
}

impl Checksums {
    /// Reads the bytes of `checksums.json` (`path` names it in errors).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Checksums> {
        json(path, bytes)
    }

    /// Whether the checkpoint has a file `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// Checks the bytes of file `name` (at `path`) against its length and hash: an error
    /// says whether it is missing from the list, cut short or replaced, or corrupted.
    pub fn check(&self, path: &Path, name: &str, bytes: &[u8]) -> Result<()> {
        let Some((len, hash)) = self.files.get(name) else {
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
}

/// FNV-1a, 64 bits: enough to tell a damaged or swapped file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::checkpoint(path, e.to_string(), Some(Box::new(e)))
}

/// Reads JSON from a checkpoint's file (`path` names it in errors).
pub fn json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::checkpoint(path, e.to_string(), Some(Box::new(e))))
}

/// The bytes of a safetensors file of `tensors` (moved to the CPU first).
pub fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut cpu = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        cpu.push((name.clone(), t.to_device(&candle_core::Device::Cpu)?));
    }
    safetensors::serialize(cpu, None).map_err(|e| Error::invalid("safetensors", e.to_string()))
}

/// Saves `files` (name and bytes) into `dir` as one checkpoint, through the staging folder,
/// with `checksums.json` written last, so that a process killed at any point leaves the old
/// files or the new ones (see [`Files::open`]). A file named [`OPTIMIZER`] that the new files
/// lack is removed.
pub fn save_files(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let staging = staging_of(dir);
    // What a killed save left is no part of this one.
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
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

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    fine_drums_dataset::fs::write_atomic(&path, bytes)
        .map_err(|e| Error::checkpoint(&path, "cannot be written", Some(Box::new(e))))
}

/// The files of a checkpoint saved by [`save_files`], each checked against its checksum as
/// it is read.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
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
        let sums = Checksums::parse(&path, &read_file(&path)?)?;
        Ok(Some(Files { dir: dir.to_path_buf(), sums }))
    }

    /// Whether the checkpoint has a file `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.sums.contains(name)
    }

    /// The bytes of file `name`, checked: an error names a missing, cut or corrupted file.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(name);
        let bytes = read_file(&path)?;
        self.sums.check(&path, name, &bytes)?;
        Ok(bytes)
    }
}

/// The staging folder of the checkpoint in `dir`: `.<name>.partial` beside it.
fn staging_of(dir: &Path) -> PathBuf {
    let name = dir.file_name().map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy());
    dir.with_file_name(format!(".{name}.partial"))
}

/// Moves a complete staging folder's files into `dir` (`checksums.json` last; a file the
/// staging folder lacks, as a finished model lacks the optimiser's state, removed), then
/// removes the staging folder.
fn commit(dir: &Path, staging: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = staging.join(CHECKSUMS);
    let sums = Checksums::parse(&path, &std::fs::read(&path).map_err(io(&path))?)?;
    if !sums.contains(OPTIMIZER) && dir.join(OPTIMIZER).exists() {
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

/// Finishes or throws away a save that a killed process left in `dir`: a complete staging
/// folder is moved in, an incomplete one removed.
pub fn recover(dir: &Path) -> Result<()> {
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

/// Whether `dir` holds a checkpoint, once a save a killed process left there is finished or
/// thrown away.
pub fn exists(dir: &Path) -> Result<bool> {
    recover(dir)?;
    Ok(dir.join(CHECKSUMS).is_file())
}

/// A file of a checkpoint: a regular file of at most
/// [`MAX_MODEL_FILE`](fine_drums_dataset::fs::MAX_MODEL_FILE) bytes, refused before anything
/// is allocated for it otherwise.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fine_drums_dataset::fs::read_model_file(path, fine_drums_dataset::fs::MAX_MODEL_FILE)
        .map_err(io(path))
}
