//! The crate's only I/O, as the dataset crate's `fs` module is for it: the evaluation data
//! read from a dataset folder, a folder that keeps the outputs of systems as they arrive,
//! another tool's outputs read from a folder, and an evaluation written out. Everything else in the crate takes values and returns values.

use std::path::{Path, PathBuf};

use crate::error::{BoxError, Error, Result};
use fine_drums_dataset::CountTokens;

use crate::protocol::{Cache, Data, Import, Piece, Progress, Protocol};
use crate::report::Evaluation;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

/// A [`Cache`] in a folder: the output of system `s` on piece `p` is `<folder>/<s>/<p>.json`
/// (`:` and `/` in a system's name written as `_`), each written whole or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderCache {
    folder: PathBuf,
}

impl FolderCache {
    /// Outputs kept below `folder`.
    pub fn new(folder: impl Into<PathBuf>) -> FolderCache {
        FolderCache { folder: folder.into() }
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    fn file(&self, system: &str, piece: &str) -> PathBuf {
        self.folder.join(system.replace([':', '/'], "_")).join(format!("{piece}.json"))
    }
}

impl Cache for FolderCache {
    fn load(&mut self, system: &str, piece: &str) -> Option<Vec<u8>> {
        std::fs::read(self.file(system, piece)).ok()
    }

    fn save(
        &mut self,
        system: &str,
        piece: &str,
        bytes: &[u8],
    ) -> std::result::Result<(), BoxError> {
        let file = self.file(system, piece);
        write_atomic(&file, bytes)?;
        Ok(())
    }
}

/// The evaluation data of a dataset folder with an `info.csv` (the GMD): every file
/// [`Data::wants`], read and added, with `progress` told after each (as system `reading`).
pub fn read_data(
    protocol: &Protocol,
    folder: &Path,
    tokens: &dyn CountTokens,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Data> {
    let index = fine_drums_dataset::fs::read_index(folder)?;
    let mut data = Data::new(protocol);
    let wanted: Vec<_> = index.entries.iter().filter(|e| data.wants(e)).collect();
    for (i, entry) in wanted.iter().enumerate() {
        data.add(entry, &fine_drums_dataset::fs::read_entry(folder, entry)?, tokens)?;
        progress(Progress { system: "reading", done: i + 1, total: wanted.len() });
    }
    Ok(data)
}

/// A list of dataset files (their `midi_filename` values), one per line; blank lines are
/// skipped. What [`Protocol::only`] takes.
pub fn read_list(path: &Path) -> Result<std::collections::HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// Another tool's outputs: `<folder>/<piece id>.txt` for each piece that has one.
pub fn read_import(name: &str, folder: &Path, pieces: &[Piece]) -> Result<Import> {
    if !folder.is_dir() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder");
        return Err(io(folder)(missing));
    }
    let mut import = Import::new(name);
    for piece in pieces {
        let file = folder.join(format!("{}.txt", piece.id));
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                import.texts.insert(piece.id.clone(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&file)(e)),
        }
    }
    Ok(import)
}

impl Evaluation {
    /// Writes `results.md`, `results.json`, `stability.svg` and `pictures/<piece>.svg` into
    /// `folder`, each file whole or not at all.
    pub fn write(&self, folder: &Path) -> Result<()> {
        let pictures = folder.join("pictures");
        for (name, svg) in &self.pictures {
            write_atomic(&pictures.join(name), svg.as_bytes())?;
        }
        write_atomic(&folder.join("stability.svg"), self.stability_svg().as_bytes())?;
        write_atomic(&folder.join("results.json"), self.json().as_bytes())?;
        write_atomic(&folder.join("results.md"), self.markdown().as_bytes())
    }
}

/// Writes `contents` to `path`, creating its folder, whole or not at all.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    Ok(fine_drums_dataset::fs::write_atomic(path, contents)?)
}
