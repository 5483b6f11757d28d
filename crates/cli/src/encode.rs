//! Encodes drum MIDI files as text.
//!
//! `cargo run --example encode -- groove.mid` prints the beat-format text;
//! `cargo run --example encode -- ../shared/datasets/groove --out texts/` writes one `.txt`
//! per MIDI file found below the folder, keeping the folder layout.

use std::error::Error;
use std::path::{Path, PathBuf};

use crate::{At, AtPath};
use clap::Parser;
use fine_drums_codec::midi::{self, ReadOptions};
use fine_drums_codec::{Channel, Format, Grid, Meter, VoiceMap};

/// Encode drum MIDI (a file, or every .mid below a folder) as text.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// A MIDI file or a folder of them.
    input: PathBuf,
    /// Write one .txt per MIDI file into this folder instead of printing.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    format: crate::FormatArgs,
    /// MIDI channel of the drums, 1 to 16.
    #[arg(long, default_value_t = 10)]
    channel: u8,
    /// Read every file in this meter (N/D) instead of its own time signatures.
    #[arg(long)]
    meter: Option<Meter>,
    /// Read as players do: ignore bytes after the last track that are not a chunk, and
    /// continue running status after meta and system exclusive events.
    #[arg(long)]
    lenient: bool,
}

fn encode_one(path: &Path, read: &ReadOptions, format: &Format) -> Result<String, AtPath> {
    let bytes = std::fs::read(path).at(path)?;
    let groove = midi::read(&bytes, read).at(path)?;
    let map = format.voices();
    let unmapped = groove.unmapped(map);
    crate::warn_unmapped(&path.display(), map, &unmapped);
    // Silent bars alone would pass for a rest, not for a file of other instruments.
    if groove.hit_count() > 0
        && unmapped.iter().map(|&n| u64::from(n)).sum::<u64>() as usize == groove.hit_count()
    {
        let why = format!("every note is at a pitch the {map} map does not list (try --map full)");
        return Err(why).at(path);
    }
    format.encode(&groove).at(path)
}

/// Encodes the file, or every MIDI file below the folder.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let format = args.format.format()?;
    let mut read = ReadOptions::default();
    read.channel = Channel::try_from(args.channel)?;
    read.meter = args.meter;
    read.lenient = args.lenient;
    // Read exactly; the format decides what to keep.
    read.voices = VoiceMap::Full;
    read.grid = match format {
        Format::Beat(o) => o.grid,
        _ => Grid::SIXTEENTH,
    };
    if args.input.is_dir() {
        let out = args.out.ok_or("a folder needs --out DIR for the text files")?;
        let files = fine_drums_dataset::fs::midi_files(&args.input)?;
        let (mut done, mut failed) = (0, 0);
        for path in &files {
            match encode_one(path, &read, &format) {
                Ok(text) => {
                    let rel = path.strip_prefix(&args.input).unwrap_or(path);
                    let target = out.join(rel).with_extension("txt");
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).at(parent)?;
                    }
                    fine_drums_dataset::fs::write_atomic(&target, text.as_bytes()).at(&target)?;
                    done += 1;
                }
                Err(e) => {
                    eprintln!("skipped {e}");
                    failed += 1;
                }
            }
        }
        eprintln!("encoded {done} files into {} ({failed} skipped)", out.display());
        return if done == 0 && failed > 0 {
            Err("no file could be encoded".into())
        } else {
            Ok(())
        };
    }
    let text = encode_one(&args.input, &read, &format)?;
    match args.out {
        Some(out) => Ok(fine_drums_dataset::fs::write_atomic(&out, text.as_bytes()).at(&out)?),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
