//! Learns a feel (how drummers play each voice, step and loudness level: velocity and
//! microtiming) from the performances of a dataset's train split, as JSON.
//!
//! `cargo run --release --example feel -- ../shared/datasets/groove --out crates/feel/table/gmd-train.json`
//! rebuilds the feel that `continue` gives new bars by default (`fine_drums_feel::Feel::gmd`).

use std::error::Error;
use std::path::PathBuf;

use crate::At;
use clap::Parser;
use fine_drums_codec::midi::{self, ReadOptions};
use fine_drums_codec::{Grid, Levels, VoiceMap};
use fine_drums_dataset::{Split, fs};
use fine_drums_feel::Feel;

/// Learn drummers' velocity and microtiming, by voice, 16th and level, from a train split.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The dataset folder, with info.csv (the GMD's layout).
    dataset: PathBuf,
    /// Where to write the feel (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,
}

/// Learns the feel, or applies it, as asked.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    if args.out.exists() && !args.force {
        return Err(format!("{} exists; --force overwrites it", args.out.display()).into());
    }
    let index = fs::read_index(&args.dataset)?;
    let mut read = ReadOptions::default();
    (read.grid, read.voices) = (Grid::SIXTEENTH, VoiceMap::Gmd9);
    let train: Vec<_> = index.entries.iter().filter(|e| e.split == Split::Train).collect();
    let bar = crate::progress(train.len() as u64, "files");
    let mut grooves = Vec::with_capacity(train.len());
    for entry in train {
        let path = args.dataset.join(&entry.path);
        let bytes = std::fs::read(&path).at(&path)?;
        match midi::read(&bytes, &read) {
            Ok(g) => grooves.push(g),
            Err(e) => bar.suspend(|| eprintln!("skipped {}: {e}", path.display())),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let feel = Feel::learn(&grooves, Levels::THREE);
    fine_drums_dataset::fs::write_atomic(&args.out, feel.to_json().as_bytes())?;
    let hits: usize = grooves.iter().flat_map(|g| &g.bars).map(|b| b.hits.len()).sum();
    println!("learned from {} files, {hits} hits -> {}", grooves.len(), args.out.display());
    Ok(())
}
