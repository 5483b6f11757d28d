//! Renders a drum MIDI file to a WAV file with the built-in synthesised kit (nothing to
//! download), or through any General MIDI SoundFont with `--soundfont`:
//! `cargo run --release --example render -- examples/grooves/rock.mid`.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use crate::At;
use clap::Parser;
use fine_drums_codec::Channel;
use fine_drums_codec::midi::{self, ReadOptions};

/// Hear a drum MIDI file: render it to WAV with a drum kit synthesised in code, or a
/// General MIDI SoundFont.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The MIDI file.
    input: PathBuf,
    /// Where to write the WAV (default: <input>.wav beside the input).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,
    /// MIDI channel of the drums, 1 to 16.
    #[arg(long, default_value_t = 10)]
    channel: u8,
    /// Render through this General MIDI SoundFont (.sf2) instead of the built-in kit.
    #[arg(long)]
    soundfont: Option<PathBuf>,
    /// Samples a second.
    #[arg(long, default_value_t = 44_100)]
    rate: u32,
}

/// Renders the MIDI file to WAV.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let out = args.out.clone().unwrap_or_else(|| args.input.with_extension("wav"));
    if out.exists() && !args.force {
        return Err(format!("{} exists; --force overwrites it", out.display()).into());
    }
    let bytes = std::fs::read(&args.input).at(&args.input)?;
    let mut read = ReadOptions::lossless();
    read.channel = Channel::try_from(args.channel)?;
    let groove = midi::read(&bytes, &read).at(&args.input)?;
    let seconds =
        crate::Renderer::new(args.rate, args.soundfont.as_deref())?.write_wav(&groove, &out)?;
    println!(
        "{}: {} bars, {} hits -> {} ({seconds:.1} s of audio) in {:.2} s",
        args.input.display(),
        groove.bars.len(),
        groove.hit_count(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
