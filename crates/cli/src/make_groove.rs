//! Writes the small example groove that the README's first command uses, made by the
//! project's own pattern code (no dataset involved).
//!
//! `cargo run --example make_groove -- examples/grooves/rock.mid --bars 4 --bpm 96`

use std::path::PathBuf;

use crate::At;
use clap::Parser;

/// Write a straight rock beat (accents, a ghost note, a crash) as a MIDI file.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// Where to write the MIDI file.
    out: PathBuf,
    /// How many bars.
    #[arg(long, default_value_t = 4)]
    bars: usize,
    /// Tempo in BPM.
    #[arg(long, default_value_t = 96.0)]
    bpm: f64,
}

/// Writes the groove (atomically).
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = fine_drums_codec::pattern::rock_beat(args.bars, args.bpm)?;
    fine_drums_dataset::fs::write_atomic(&args.out, &bytes).at(&args.out)?;
    eprintln!("wrote {} ({} bars at {} BPM)", args.out.display(), args.bars, args.bpm);
    Ok(())
}
