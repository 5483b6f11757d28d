//! Prepares fine-tuning files from a folder of drum MIDI.
//!
//! `cargo run --release --example prepare -- ../shared/datasets/groove --out data/` writes
//! `train.jsonl`, `validation.jsonl` and `test.jsonl` (legacy prompt/completion, for
//! `babbage-002` and `davinci-002`), their chat (`*.chat.jsonl`) and plain-text (`*.txt`)
//! twins, `*.pieces.jsonl` (every file whole, fills and short files too, with its style,
//! tempo and fill flag: what the drum GPT trains on) and `manifest.json`, then prints what
//! went in and what it costs to train on.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use crate::At;
use clap::Parser;
use fine_drums_codec::Channel;
use fine_drums_dataset::controls::Piece;
use fine_drums_dataset::export::{Prices, chat_jsonl, check_legacy, legacy_jsonl, plain_text};
use fine_drums_dataset::{
    BeatType, CodecSettings, Entry, GroupBy, HashSplit, Manifest, Prepared, Preparer, Split,
    SplitRule, cl100k, fs,
};

/// Prepare fine-tuning files (JSONL, chat JSONL, text and a manifest) from drum MIDI.
///
/// A folder with GMD's info.csv uses its official splits and metadata; any other folder is
/// split by a hash of each file's folder, so that one session never lands in two splits.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The dataset folder (GMD unzipped, or any folder of .mid files).
    dataset: PathBuf,
    /// Where to write the files (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    format: crate::FormatArgs,
    /// MIDI channel of the drums, 1 to 16.
    #[arg(long, default_value_t = 10)]
    channel: u8,
    /// Bars in each prompt.
    #[arg(long, default_value_t = 2)]
    prompt_bars: usize,
    /// Bars in each completion.
    #[arg(long, default_value_t = 14)]
    completion_bars: usize,
    /// Bars between window starts (default: prompt + completion bars, no overlap).
    #[arg(long)]
    stride: Option<usize>,
    /// Fewest completion bars a shortened window may keep.
    #[arg(long, default_value_t = 1)]
    min_completion_bars: usize,
    /// Most tokens (cl100k_base) of prompt plus completion per example.
    #[arg(long, default_value_t = 4096)]
    max_tokens: usize,
    /// Beat types to keep: beat, fill or all.
    #[arg(long, default_value = "beat", value_parser = ["beat", "fill", "all"])]
    beat_types: String,
    /// Meters to keep, as info.csv writes them (e.g. 4-4); repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    meters: Vec<String>,
    /// Styles to keep: a genre (funk) or a full style (funk/groove1); comma-separated.
    #[arg(long, value_delimiter = ',')]
    styles: Vec<String>,
    /// Fewest bars a file needs (after leading silence).
    #[arg(long, default_value_t = 0)]
    min_bars: usize,
    /// Keep leading silent bars instead of stripping them.
    #[arg(long)]
    keep_silence: bool,
    /// Train, validation and test weights for folders without info.csv.
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [80.0, 10.0, 10.0])]
    ratios: Vec<f64>,
    /// Group files for the hash split by this many leading folders (default: the file's
    /// own folder); 0 groups nothing.
    #[arg(long)]
    group_depth: Option<usize>,
    /// A JSON price table to use instead of the built-in one (see the manifest's "prices").
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Stop at the first malformed index row, missing or unreadable file.
    #[arg(long)]
    strict: bool,
}

/// Splits, encodes and writes the fine-tuning files and their manifest.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let mut preparer = Preparer::default();
    let format = args.format.format()?;
    let channel = Channel::try_from(args.channel)?;
    preparer.template.codec = CodecSettings::from_format(&format, channel);
    preparer.template.strip_silence = !args.keep_silence;
    let w = &mut preparer.windows;
    w.prompt_bars = args.prompt_bars;
    w.completion_bars = args.completion_bars;
    w.stride = args.stride.unwrap_or(args.prompt_bars + args.completion_bars);
    w.min_completion_bars = args.min_completion_bars;
    w.max_tokens = args.max_tokens;
    let f = &mut preparer.filter;
    f.beat_types = match args.beat_types.as_str() {
        "beat" => vec![BeatType::Beat],
        "fill" => vec![BeatType::Fill],
        _ => Vec::new(),
    };
    f.meters = args.meters.clone();
    f.styles = args.styles.clone();
    f.min_bars = args.min_bars;
    preparer.check()?;
    let prices = match &args.prices {
        Some(p) => {
            let text = std::fs::read_to_string(p).at(p)?;
            Prices::from_json(&text).at(p)?
        }
        None => Prices::default(),
    };

    let Listed { entries, rule, skipped_rows } = entries(&args)?;
    let tokens = cl100k()?;
    let bar = crate::progress(entries.len() as u64, "preparing");
    let mut prepared = Prepared::default();
    for entry in &entries {
        let added = match fs::read_entry(&args.dataset, entry) {
            Ok(bytes) => preparer.add(&mut prepared, entry, &bytes, &tokens),
            Err(e) => preparer.add_missing(&mut prepared, entry, e),
        };
        if let Err(e) = added {
            if args.strict {
                bar.abandon();
                return Err(format!("{e} (stopped by --strict)").into());
            }
            bar.suspend(|| eprintln!("skipped {e}"));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let mut manifest = Manifest::new(
        preparer.template.clone(),
        preparer.windows,
        preparer.filter.clone(),
        rule,
        prices,
        &prepared,
    );
    manifest.skipped_rows = skipped_rows;
    std::fs::create_dir_all(&args.out).at(&args.out)?;
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        fs::write_atomic(&path, text.as_bytes())
    };
    for (split, files) in &manifest.files {
        let legacy = legacy_jsonl(prepared.split(*split));
        if let Err(e) =
            check_legacy(&files.legacy, &legacy, &manifest.template, args.max_tokens, &tokens)
        {
            eprintln!("warning: {e} (OpenAI would refuse this file for training)");
        }
        write(&files.legacy, &legacy)?;
        write(&files.chat, &chat_jsonl(&manifest.template, prepared.split(*split)))?;
        write(&files.text, &plain_text(prepared.split(*split)))?;
        let pieces: String = prepared.pieces(*split).map(Piece::to_line).collect();
        write(&files.pieces, &pieces)?;
    }
    write("manifest.json", &manifest.to_json())?;
    print_stats(&manifest);
    let mut unmapped = [0u32; 128];
    for (&p, &n) in &prepared.unmapped {
        unmapped[usize::from(p & 127)] = u32::try_from(n).unwrap_or(u32::MAX);
    }
    let what = args.dataset.display();
    crate::warn_unmapped(&what, manifest.template.codec.format.voices(), &unmapped);
    println!(
        "wrote {} examples to {} in {:.2} s",
        prepared.examples.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The files to prepare, how they were split, and the index rows left out (with why).
struct Listed {
    entries: Vec<Entry>,
    rule: SplitRule,
    skipped_rows: Vec<String>,
}

fn entries(args: &Args) -> Result<Listed, Box<dyn Error>> {
    if args.dataset.join("info.csv").is_file() {
        let index = fs::read_index(&args.dataset)?;
        if let Some(e) = index.errors.first() {
            if args.strict {
                return Err(format!("{e} (stopped by --strict)").into());
            }
            for e in &index.errors {
                eprintln!("skipped {e}");
            }
        }
        let rows = index.errors.iter().map(ToString::to_string).collect();
        let rule = SplitRule::Index { file: "info.csv".into() };
        return Ok(Listed { entries: index.entries, rule, skipped_rows: rows });
    }
    let mut split = HashSplit::new(args.ratios[0], args.ratios[1], args.ratios[2])?;
    split.group_by = match args.group_depth {
        Some(0) => GroupBy::File,
        depth => GroupBy::Folder { depth },
    };
    let entries = fs::scan(&args.dataset, &split)?;
    if entries.is_empty() {
        return Err(format!("{}: no .mid files found", args.dataset.display()).into());
    }
    Ok(Listed { entries, rule: SplitRule::Hash(split), skipped_rows: Vec::new() })
}

fn print_stats(m: &Manifest) {
    let models: Vec<String> =
        m.prices.models.iter().map(|p| format!("$/epoch {}", p.model)).collect();
    println!(
        "| split | files | skipped | examples | bars | tokens | max tokens | {} |",
        models.join(" | ")
    );
    println!("|---|---:|---:|---:|---:|---:|---:|{}", "---:|".repeat(models.len()));
    for s in &m.stats {
        let costs: Vec<String> =
            m.prices.per_epoch(s.tokens).iter().map(|(_, c)| format!("{c:.4}")).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.split.map_or("all", Split::as_str),
            s.files,
            s.skipped.values().sum::<usize>(),
            s.examples,
            s.bars,
            s.tokens,
            s.max_example_tokens,
            costs.join(" | ")
        );
    }
    if let Some(all) = m.stats.last() {
        for (reason, n) in &all.skipped {
            println!("skipped, {reason}: {n} files");
        }
        println!(
            "pieces (whole files, for the drum GPT): {} files, {} bars",
            all.pieces, all.piece_bars
        );
    }
    println!("prices: {}", m.prices.source);
}
