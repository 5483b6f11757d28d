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

/// The paper's table (`evaluate --protocol paper`), from the GMD at `gmd` and each
/// import's folder of texts as published (`<drummer>_<file>.txt`, 256 lines). The pieces
/// are the first import's files; each human text is made from the GMD file it names, as
/// the paper's `midi_to_text.py` made it ([`paper::text_of`](crate::paper::text_of)).
pub fn read_paper(gmd: &Path, imports: &[(String, PathBuf)]) -> Result<Vec<crate::paper::Row>> {
    let invalid = |message: String| Error::Invalid { what: "paper reproduction", message };
    let Some((_, first)) = imports.first() else {
        return Err(invalid("it needs an import: --import NAME=DIR".into()));
    };
    let mut names: Vec<String> = std::fs::read_dir(first)
        .map_err(io(first))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".txt").map(String::from))
        .collect();
    names.sort();
    // Every GMD file by the paper's name for it: the drummer's number, `_`, the file name.
    let mut midi = std::collections::HashMap::new();
    for path in fine_drums_dataset::fs::midi_files(gmd)? {
        let rel = path.strip_prefix(gmd).unwrap_or(&path);
        let drummer = rel.iter().next().and_then(|d| d.to_str()).unwrap_or("");
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let name = format!("{}_{stem}", drummer.get(7..).unwrap_or(""));
        midi.insert(name, path);
    }
    let mut human = Vec::with_capacity(names.len());
    for name in &names {
        let path = midi.get(name).ok_or_else(|| invalid(format!("{name}: no such GMD file")))?;
        let bytes = std::fs::read(path).map_err(io(path))?;
        let groove =
            fine_drums_codec::midi::read(&bytes, &fine_drums_codec::midi::ReadOptions::lossless())
                .map_err(|source| Error::File { path: path.display().to_string(), source })?;
        let text = crate::paper::text_of(&groove)
            .ok_or_else(|| invalid(format!("{name}: the paper skipped meters not over 4")))?;
        human.push(text);
    }
    let mut texts = Vec::with_capacity(imports.len());
    for (system, dir) in imports {
        let mut of = Vec::with_capacity(names.len());
        for name in &names {
            let file = dir.join(format!("{name}.txt"));
            of.push(match std::fs::read_to_string(&file) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io(&file)(e)),
            });
        }
        texts.push((system.clone(), of));
    }
    Ok(crate::paper::table(&human, &texts))
}

impl Evaluation {
    /// Writes `results.md`, `results.json`, `stability.svg`, `pictures/<piece>.svg` and
    /// `report.html` into `folder`, each file whole or not at all. The report has a player
    /// for each recording already at [`audio_path`] in `folder`.
    pub fn write(&self, folder: &Path) -> Result<()> {
        let pictures = folder.join("pictures");
        for (name, svg) in &self.pictures {
            write_atomic(&pictures.join(name), svg.as_bytes())?;
        }
        write_atomic(&folder.join("stability.svg"), self.stability_svg().as_bytes())?;
        write_atomic(&folder.join("results.json"), self.json().as_bytes())?;
        write_atomic(&folder.join("results.md"), self.markdown().as_bytes())?;
        let audio = |piece: &str, system: &str| {
            let path = audio_path(Path::new(""), piece, system);
            folder.join(&path).is_file().then(|| path.to_string_lossy().replace('\\', "/"))
        };
        write_atomic(&folder.join("report.html"), self.html(&audio).as_bytes())
    }
}

/// Where a system's recording of a piece goes, under an evaluation's `folder`:
/// `audio/<piece>/<system>.wav`, with any character of the system's name other than
/// letters, digits, `.`, `-`, `_` and `@` made `_`.
pub fn audio_path(folder: &Path, piece: &str, system: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-@".contains(c) { c } else { '_' })
            .collect()
    };
    folder.join("audio").join(safe(piece)).join(format!("{}.wav", safe(system)))
}

/// Writes `contents` to `path`, creating its folder, whole or not at all.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    Ok(fine_drums_dataset::fs::write_atomic(path, contents)?)
}
