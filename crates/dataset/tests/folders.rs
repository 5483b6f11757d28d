//! The folder walker that every command shares.

use std::path::{Path, PathBuf};

use fine_drums_dataset::HashSplit;
use fine_drums_dataset::fs::{midi_files, scan};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("fine-drums-dataset-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

fn touch(dir: &Path, rel: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
    std::fs::write(path, b"MThd").expect("a file");
}

#[test]
fn midi_files_are_found_in_every_folder_in_any_case_and_sorted() {
    let dir = scratch("walk");
    for rel in ["b/2.MID", "a/deep/1.midi", "a/song.Kar", "c.mid", "notes.txt", "info.csv", "a/mid"]
    {
        touch(&dir, rel);
    }
    let found = midi_files(&dir).expect("the folder reads");
    let rel: Vec<String> = found
        .iter()
        .map(|p| p.strip_prefix(&dir).expect("below dir").to_string_lossy().replace('\\', "/"))
        .collect();
    assert_eq!(rel, ["a/deep/1.midi", "a/song.Kar", "b/2.MID", "c.mid"]);
    // The dataset's scan finds the same files, as relative paths.
    let entries = scan(&dir, &HashSplit::default()).expect("a scan");
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, rel);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_folder_is_named() {
    let dir = scratch("missing").join("not-there");
    let message = midi_files(&dir).expect_err("no such folder").to_string();
    assert!(message.contains("not-there"), "{message}");
}
