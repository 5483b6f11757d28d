//! Tests over the Groove MIDI Dataset, read from `FINE_DRUMS_GMD`
//! (default `../shared/datasets/groove` beside the checkout).

use std::path::PathBuf;

#[path = "../../../tests/common/gmd.rs"]
mod gmd_dir;
use gmd_dir::gmd;

use fine_drums_codec::Format;
use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};

fn midi_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the dataset folder is readable") {
        let path = entry.expect("the dataset folder is readable").path();
        if path.is_dir() {
            midi_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "mid") {
            out.push(path);
        }
    }
}

#[test]
#[ignore = "reads the GMD (FINE_DRUMS_GMD, default ../shared/datasets/groove): cargo test -- --ignored"]
fn every_gmd_file_round_trips() {
    let dir = gmd();
    let mut files = Vec::new();
    midi_files(&dir, &mut files);
    assert_eq!(files.len(), 1150);
    let beat = Format::Beat(BeatOptions::default());
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let g = midi::read(&bytes, &ReadOptions::lossless()).unwrap();
        let text = Format::EXACT.encode(&g).unwrap();
        let back = Format::EXACT.decode(&text, &g.context()).unwrap();
        assert_eq!(back, g, "{}", path.display());
        let again = midi::read(
            &midi::write(&back, &WriteOptions::default()).unwrap(),
            &ReadOptions::lossless(),
        )
        .unwrap();
        assert_eq!(again, g, "{}", path.display());
        let text = beat.encode(&g).unwrap();
        let decoded = beat.decode(&text, &g.context()).unwrap();
        assert_eq!(beat.encode(&decoded).unwrap(), text, "{}", path.display());
    }
}
