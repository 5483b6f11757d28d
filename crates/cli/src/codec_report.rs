//! Runs the codec over the whole Groove MIDI Dataset and reports round trips, token costs and
//! the hits each voice map keeps.
//!
//! `cargo run --release --example codec_report -- ../shared/datasets/groove`

use std::path::PathBuf;

use clap::Parser;
use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Format, Grid, Levels, VoiceMap};

/// Report on the codec over a GMD folder: lossless round trips, encode(decode(text)) == text
/// for every format setting, cl100k_base tokens per 4/4 bar on the test split, and hits kept
/// and dropped per voice map.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The GMD folder (the one holding info.csv).
    gmd: PathBuf,
}

fn settings() -> Vec<(String, Format)> {
    let beat = BeatOptions::default();
    let mut out = vec![("beat gmd9 16 levels=3".to_string(), Format::Beat(beat))];
    let mut add = |name: &str, f: &dyn Fn(&mut BeatOptions)| {
        let mut o = beat;
        f(&mut o);
        out.push((name.to_string(), Format::Beat(o)));
    };
    add("beat gmd9 16 levels=3 micro=8", &|o| o.microtiming = Some(8));
    add("beat gmd9 16 levels=3 micro=4", &|o| o.microtiming = Some(4));
    add("beat gmd9 16 levels=1", &|o| o.levels = Levels::new_const(1));
    add("beat gmd9 16 levels=2", &|o| o.levels = Levels::new_const(2));
    add("beat gmd9 16 levels=8", &|o| o.levels = Levels::new_const(8));
    add("beat paper6 16 levels=3", &|o| o.voices = VoiceMap::Paper6);
    add("beat gmd9 8 levels=3", &|o| o.grid = Grid::EIGHTH);
    add("beat gmd9 32 levels=3", &|o| o.grid = Grid::THIRTY_SECOND);
    add("beat gmd9 8t levels=3", &|o| o.grid = Grid::EIGHTH_TRIPLET);
    add("beat gmd9 16t levels=3", &|o| o.grid = Grid::SIXTEENTH_TRIPLET);
    add("beat gmd9 16 levels=3 header", &|o| o.header = true);
    out.push(("drumroll".to_string(), Format::DRUMROLL));
    out.push(("exact (lossless)".to_string(), Format::EXACT));
    out
}

fn median(v: &mut [usize]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 { v[n / 2] as f64 } else { (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0 }
}

/// Runs the report; `Ok(false)` when a round trip was not exact or a text not stable.
pub fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let index = fine_drums_dataset::fs::read_index(&args.gmd)?;
    if let Some(e) = index.errors.first() {
        return Err(e.to_string().into());
    }
    let mut files = Vec::with_capacity(index.entries.len());
    for e in &index.entries {
        files.push((e, fine_drums_dataset::fs::read_entry(&args.gmd, e)?));
    }
    let total_bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    println!("files: {} ({:.2} MB of MIDI)", files.len(), total_bytes as f64 / 1e6);

    // Lossless round trip: MIDI -> exact text -> groove -> MIDI -> groove.
    let mut exact = 0;
    for (e, bytes) in &files {
        let check = || -> Result<bool, fine_drums_codec::Error> {
            let g = midi::read(bytes, &ReadOptions::lossless())?;
            let text = Format::EXACT.encode(&g)?;
            let back = Format::EXACT.decode(&text, &g.context())?;
            let written = midi::write(&back, &WriteOptions::default())?;
            let again = midi::read(&written, &ReadOptions::lossless())?;
            Ok(back == g && again == g)
        };
        match check() {
            Ok(true) => exact += 1,
            Ok(false) => eprintln!("{}: lossless round trip differs", e.path),
            Err(err) => eprintln!("{}: {err}", e.path),
        }
    }

    // Every format setting: encode(decode(text)) == text, and tokens per 4/4 test bar.
    let bpe = tiktoken_rs::cl100k_base()?;
    println!();
    println!("{:<32} {:>12} {:>8} {:>8} {:>8}", "format", "text stable", "median", "mean", "bars");
    let mut all_stable = true;
    for (name, format) in settings() {
        let (mut stable, mut unfit) = (0, 0);
        let mut tokens: Vec<usize> = Vec::new();
        for (e, bytes) in &files {
            let read = ReadOptions::lossless();
            let g = midi::read(bytes, &read)?;
            let text = match format.encode(&g) {
                Ok(t) => t,
                Err(err @ fine_drums_codec::Error::MeterOffGrid { .. }) => {
                    println!("  ({name}: {}: {err})", e.path);
                    unfit += 1;
                    continue;
                }
                Err(err) => {
                    eprintln!("{name}: {}: {err}", e.path);
                    continue;
                }
            };
            let ctx = g.context();
            match format.decode(&text, &ctx).and_then(|d| format.encode(&d)) {
                Ok(again) if again == text => stable += 1,
                Ok(_) => eprintln!("{name}: {}: encode(decode(text)) differs", e.path),
                Err(err) => eprintln!("{name}: {}: {err}", e.path),
            }
            if e.split == fine_drums_dataset::Split::Test && e.meter.as_deref() == Some("4-4") {
                let body = text
                    .strip_prefix('#')
                    .map_or(text.as_str(), |t| t.split_once('\n').map_or("", |(_, rest)| rest));
                let bars: Vec<String> = match format {
                    Format::Drumroll(_) => body
                        .trim_end_matches("END\n")
                        .split("SEP\n")
                        .map(|b| format!("{b}SEP\n"))
                        .collect(),
                    _ => body.lines().map(|l| format!("{l}\n")).collect(),
                };
                tokens.extend(bars.iter().map(|b| bpe.encode_ordinary(b).len()));
            }
        }
        let representable = files.len() - unfit;
        all_stable &= stable == representable;
        let mean = tokens.iter().sum::<usize>() as f64 / tokens.len().max(1) as f64;
        let n = tokens.len();
        println!(
            "{name:<32} {:>7}/{:<4} {:>8.1} {:>8.2} {:>8}",
            stable,
            representable,
            median(&mut tokens),
            mean,
            n
        );
    }

    // Hits kept and dropped per voice map, and merged when quantised to 16ths.
    println!();
    println!(
        "{:<8} {:>10} {:>10} {:>8} {:>12} {:>10}",
        "map", "notes", "kept", "dropped", "merged@16th", "dropped %"
    );
    for map in VoiceMap::ALL {
        let (mut kept, mut dropped, mut merged) = (0u64, 0u64, 0u64);
        for (_, bytes) in &files {
            let mut read = ReadOptions::default();
            read.voices = map;
            let (g, report) = midi::read_with_report(bytes, &read)?;
            kept += report.kept_total();
            dropped += report.dropped_total();
            if map != VoiceMap::Full {
                let mut beat = BeatOptions::default();
                beat.voices = map;
                let q = Format::Beat(beat).quantise(&g)?;
                merged += (g.hit_count() - q.hit_count()) as u64;
            }
        }
        println!(
            "{:<8} {:>10} {:>10} {:>8} {:>12} {:>9.2}%",
            map.as_str(),
            kept + dropped,
            kept,
            dropped,
            merged,
            100.0 * dropped as f64 / (kept + dropped) as f64
        );
    }
    println!();
    println!("roundtrip exact: {exact}/{}", files.len());
    Ok(exact == files.len() && all_stable)
}
