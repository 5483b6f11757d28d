//! Gives a drum MIDI file a drummer's feel: velocity and microtiming, learnt from the GMD's
//! drummers, or taken from a reference clip, by an amount.
//!
//! `cargo run --release --example humanize -- stiff.mid --like played.mid --amount 0.7`
//! writes `stiff.humanized.mid`.

use std::error::Error;
use std::path::{Path, PathBuf};

use crate::At;
use clap::Parser;
use fine_drums_dataset::Manifest;

/// Humanize a drum MIDI file: put its hits on the 16th grid, then give them the velocity
/// and microtiming of the GMD's drummers (or of a reference clip), by an amount. The same
/// seed gives the same file.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The drum MIDI file.
    input: PathBuf,
    /// Where to write the result (default: <input>.humanized.mid beside the input).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,
    /// Play like the drummer of this drum MIDI file: the learnt feel, shifted to theirs.
    #[arg(long)]
    like: Option<PathBuf>,
    /// How much feel, 0 (on the grid) to 1.
    #[arg(long, default_value_t = 1.0)]
    amount: f64,
    /// Seed: the same seed gives the same file. Default: one drawn from the clock, and
    /// printed.
    #[arg(long)]
    seed: Option<u64>,
    /// MIDI channel of the drums, 1 to 16.
    #[arg(long, default_value_t = 10)]
    channel: u8,
}

fn default_out(input: &Path) -> PathBuf {
    let stem =
        input.file_stem().map_or_else(|| "groove".into(), |s| s.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}.humanized.mid"))
}

/// Humanizes the file and writes the result, never over a file that exists unless `--force`.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    if !(0.0..=1.0).contains(&args.amount) {
        return Err(format!("--amount {}: an amount from 0 to 1", args.amount).into());
    }
    let path = args.out.clone().unwrap_or_else(|| default_out(&args.input));
    if path.exists() && !args.force {
        return Err(format!("{} exists; --force overwrites it", path.display()).into());
    }
    let midi = std::fs::read(&args.input).at(&args.input)?;
    let like = match &args.like {
        Some(p) => Some(std::fs::read(p).at(p)?),
        None => None,
    };
    let mut manifest = Manifest::of_settings(&fine_drums_dataset::Preparer::default());
    manifest.template.codec.channel = fine_drums_codec::Channel::try_from(args.channel)?;
    let seed = args.seed.unwrap_or_else(crate::clock_seed);
    let out =
        fine_drums_continue::humanize_midi(&midi, like.as_deref(), &manifest, args.amount, seed)
            .map_err(|e| match (&args.like, &e) {
                // A reference that does not read is named as such.
                (Some(l), fine_drums_continue::Error::Codec(_)) => {
                    format!("{} or {}: {e}", args.input.display(), l.display())
                }
                _ => format!("{}: {e}", args.input.display()),
            })?;
    fine_drums_dataset::fs::write_atomic(&path, &out)?;
    let like = args.like.as_ref().map_or(String::new(), |l| format!(", like {}", l.display()));
    println!(
        "{}: humanized by {}{like} (seed {seed}) -> {}",
        args.input.display(),
        args.amount,
        path.display()
    );
    Ok(())
}
