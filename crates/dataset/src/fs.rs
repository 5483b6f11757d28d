//! The crate's only I/O: finding files in a dataset folder, reading them, and writing the
//! prepared files so that a failure never leaves half a file behind.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::index::{Entry, Index};
use crate::split::HashSplit;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

/// Reads the index of a GMD folder (`dir/info.csv`).
pub fn read_index(dir: &Path) -> Result<Index> {
    let file = dir.join("info.csv");
    let bytes = std::fs::read(&file).map_err(io(&file))?;
    Index::parse(&file.display().to_string(), &bytes)
}

/// The extensions of MIDI files, matched in any case: `.mid`, `.midi`, and `.kar` (karaoke
/// files are standard MIDI files with lyrics).
pub const MIDI_EXTENSIONS: [&str; 3] = ["mid", "midi", "kar"];

/// Whether `path` names a MIDI file: its extension is one of [`MIDI_EXTENSIONS`], in any case.
///
/// ```
/// use std::path::Path;
/// use fine_drums_dataset::fs::is_midi_path;
///
/// assert!(is_midi_path(Path::new("drummer1/session1/1_funk_80_beat_4-4.mid")));
/// assert!(is_midi_path(Path::new("GROOVE.MIDI")));
/// assert!(!is_midi_path(Path::new("info.csv")));
/// ```
pub fn is_midi_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MIDI_EXTENSIONS.iter().any(|m| e.eq_ignore_ascii_case(m)))
}

/// Every MIDI file below `dir` (by [`is_midi_path`]), in every subfolder, sorted by path.
/// The error names the folder that could not be read.
pub fn midi_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in std::fs::read_dir(&d).map_err(io(&d))? {
            let path = item.map_err(io(&d))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_midi_path(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every MIDI file below `dir` ([`midi_files`]), as entries split by `split`, sorted by path.
pub fn scan(dir: &Path, split: &HashSplit) -> Result<Vec<Entry>> {
    split.check()?;
    let mut out: Vec<Entry> = midi_files(dir)?
        .iter()
        .map(|path| {
            let rel = relative(dir, path);
            let s = split.split_of(&rel);
            Entry::new(rel, s)
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The absolute path of an entry's file.
pub fn path_of(dir: &Path, entry: &Entry) -> PathBuf {
    entry.path.split('/').fold(dir.to_path_buf(), |p, c| p.join(c))
}

/// Reads an entry's file; the error names the file.
pub fn read_entry(dir: &Path, entry: &Entry) -> Result<Vec<u8>> {
    let path = path_of(dir, entry);
    std::fs::read(&path).map_err(io(&path))
}

/// Writes `contents` to `path` through a temporary file in the same folder and a rename,
/// so that a crash leaves the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    // A write or rename that fails (a full disk, a folder in the way) leaves no temporary
    // file behind.
    let written = std::fs::write(&tmp, contents)
        .map_err(io(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io(path)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The most bytes [`read_model_file`] reads: 2 GiB, far above any model this project trains
/// (the `base` drum GPT is 45 MB) and below what a crafted file could make it allocate.
pub const MAX_MODEL_FILE: u64 = 2 << 30;

/// Reads a model's file, refusing what is not a regular file (`/dev/zero`, a FIFO, a folder)
/// and a file over `max` bytes (an 8 GiB sparse file) before allocating anything for it; a
/// file that grows while it is read stops at `max + 1` bytes and is refused too.
pub fn read_model_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let not_regular = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a model is read from a file, not a device, pipe or folder)",
        )
    };
    // Looked at before it is opened: opening a FIFO blocks until something writes to it.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {max} bytes a model file may have"),
        )
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    Ok(bytes)
}
