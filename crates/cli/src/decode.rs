//! Decodes text (yours or a model's) back into a MIDI file.
//!
//! `cargo run --example decode -- groove.txt --out groove.mid`

use std::error::Error;
use std::path::PathBuf;

use crate::At;
use clap::Parser;
use fine_drums_codec::midi::{self, WriteOptions};
use fine_drums_codec::{Channel, Context, Meter, Tempo};

/// Decode drum text into a Standard MIDI File. Bars without their own marks are read in
/// --meter and --tempo (a #beat or #exact header overrides them).
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The text file ("-" for standard input).
    input: PathBuf,
    /// Where to write the MIDI file (default: the input with .mid).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    format: crate::FormatArgs,
    /// Keep the bars that parse and report the others, instead of stopping at the first error.
    #[arg(long)]
    lenient: bool,
    /// Tempo in BPM.
    #[arg(long, default_value_t = 120.0)]
    tempo: f64,
    /// Meter, N/D.
    #[arg(long, default_value = "4/4")]
    meter: Meter,
    /// Ticks per quarter note of the written file.
    #[arg(long, default_value_t = 480)]
    tpq: u16,
    /// MIDI channel to write the drums on, 1 to 16.
    #[arg(long, default_value_t = 10)]
    channel: u8,
}

/// Decodes the text and writes the MIDI file.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let format = args.format.format()?;
    let name = args.input.display().to_string();
    let out = args.out.clone().unwrap_or_else(|| args.input.with_extension("mid"));
    if out == args.input {
        return Err(format!(
            "{name}: the output would replace the input itself; name another with --out"
        )
        .into());
    }
    if out.exists() && !args.force {
        return Err(format!("{} exists; --force overwrites it", out.display()).into());
    }
    let bytes = if name == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).at("standard input")?;
        b
    } else {
        std::fs::read(&args.input).at(&name)?
    };
    let tempo = Tempo::from_bpm(args.tempo)?;
    let context = Context::new(args.tpq, args.meter, tempo);
    let groove = if args.lenient {
        // Line by line: a line that is not UTF-8 is dropped like any other bad line.
        let l = format.decode_lenient_bytes(&bytes, &context).at(&name)?;
        // The first few drops in full, then how many more: a million bad lines are one line.
        const SHOWN: usize = 20;
        for e in l.dropped.iter().take(SHOWN) {
            eprintln!("{name}: dropped: {e}");
        }
        if l.dropped.len() > SHOWN {
            eprintln!("{name}: dropped {} more lines", l.dropped.len() - SHOWN);
        }
        if l.groove.bars.is_empty() {
            let why = l.dropped.first().map_or("the text holds no bar".into(), |e| {
                format!("{} lines dropped, the first: {e}", l.dropped.len())
            });
            return Err(format!("{name}: no bar could be read ({why}); nothing was written").into());
        }
        l.groove
    } else {
        let text = String::from_utf8(bytes)
            .map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                format!("not UTF-8 text at byte {at} (--lenient drops the lines that are not)")
            })
            .at(&name)?;
        format.decode(&text, &context).at(&name)?
    };
    let mut options = WriteOptions::default();
    options.channel = Channel::try_from(args.channel)?;
    let bytes = midi::write(&groove, &options).at(&name)?;
    fine_drums_dataset::fs::write_atomic(&out, &bytes)?;
    eprintln!("wrote {} ({} bars, {} hits)", out.display(), groove.bars.len(), groove.hit_count());
    Ok(())
}
