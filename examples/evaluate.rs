//! Scores drum continuations on the GMD test split: human drummers, repeat-the-prompt,
//! random at human density, the offline local model, and any other backend.
//!
//! `cargo run --release --example evaluate -- ../shared/datasets/groove --out eval/` writes
//! `eval/results.md`, `eval/results.json`, `eval/stability.svg` and a piano roll per piece
//! in `eval/pictures/`. Model outputs are saved in `eval/outputs/` as they arrive, and a
//! rerun reuses them, so an interrupted run loses nothing.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Context, Format, Groove, VoiceMap};
use fine_drums_dataset::export::legacy_jsonl;
use fine_drums_dataset::{Manifest, Prepared, Preparer, Split, cl100k, fs};
use fine_drums_eval::{
    Accuracy, Comparison, Density, Distributions, RollPiece, Structure, Validity, compare,
    distributions, random, repeat, roll_bars, structure,
};
use fine_drums_llm::local::{Local, Model};
use fine_drums_llm::openai::{Config, OpenAi};
use fine_drums_llm::{Complete, ContinueOptions, continue_midi};
use rand_core::SeedableRng;
use rand_xoshiro::SplitMix64;
use serde::{Deserialize, Serialize};

/// Score drum continuations on the GMD test split against human drummers and baselines.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GMD folder (with info.csv).
    gmd: PathBuf,
    /// Where to write results, pictures and model outputs.
    #[arg(long, default_value = "eval")]
    out: PathBuf,
    /// An extra system: openai (OpenAI or a compatible server; needs --model), or local
    /// with --model <file.fdlm> to score a saved local model instead of training one.
    #[arg(long, value_parser = ["local", "openai"])]
    backend: Option<String>,
    /// The model of --backend.
    #[arg(long)]
    model: Option<String>,
    /// Base URL of an OpenAI-compatible API.
    #[arg(long)]
    base_url: Option<String>,
    /// The manifest of the fine-tuned model's training data (default: default settings).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// A file listing GMD midi_filename values, one per line: only these pieces.
    #[arg(long)]
    pieces: Option<PathBuf>,
    /// Prompt bars.
    #[arg(long, default_value_t = 2)]
    prompt_bars: usize,
    /// Bars to generate (windows need this many bars after the prompt).
    #[arg(long, default_value_t = 14)]
    bars: usize,
    /// Score outputs of another tool: NAME=DIR, DIR holding <piece>.txt in the drumroll
    /// format (prompt bars first, or the continuation alone). Repeatable.
    #[arg(long)]
    import: Vec<String>,
    /// Sampling temperature of the models.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Base seed; piece i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Onset-matching tolerance in ticks at 480 per quarter (default: half a 16th).
    #[arg(long, default_value_t = 60)]
    tolerance: i64,
}

/// One evaluation window: a prompt and the human continuation.
struct Piece {
    id: String,
    prompt: Groove,
    truth: Groove,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    samples: Vec<String>,
    continuation: String,
}

#[derive(Serialize)]
struct SystemResult {
    name: String,
    pieces: usize,
    bars_asked: usize,
    bars_produced: usize,
    validity: Option<Validity>,
    structure: Structure,
    distributions: Distributions,
    versus_human: Comparison,
    onset_f1: f64,
    onset_f1_per_voice: BTreeMap<String, f64>,
    velocity_mae: f64,
}

fn voice_names() -> Vec<String> {
    (0..VoiceMap::Gmd9.len())
        .map(|v| VoiceMap::Gmd9.name(fine_drums_codec::Voice::new(v as u8)))
        .collect()
}

fn file_id(path: &str, start: usize) -> String {
    format!("{}@{start}", path.trim_end_matches(".mid").replace('/', "_"))
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let started = Instant::now();
    let (p, c) = (args.prompt_bars, args.bars);
    let mut manifest = common::manifest(args.manifest.as_deref(), None)?;
    manifest.windows.prompt_bars = p;
    manifest.windows.completion_bars = c;
    let template = manifest.template.clone();
    let format = template.codec.format;
    let index = fs::read_index(&args.gmd).map_err(|e| e.to_string())?;
    let wanted: Option<HashSet<String>> = match &args.pieces {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        ),
        None => None,
    };
    let mut read = ReadOptions::default();
    read.voices = VoiceMap::Gmd9;

    // The test windows, and the training split (for the local model and for duplication).
    let mut pieces = Vec::new();
    let mut train_grooves = Vec::new();
    let mut train_bars = HashSet::new();
    let tokens = cl100k().map_err(|e| e.to_string())?;
    let mut preparer = Preparer::default();
    preparer.template = template.clone();
    preparer.windows = manifest.windows;
    preparer.filter = manifest.filter.clone();
    let mut prepared = Prepared::default();
    let bar = common::progress(index.entries.len() as u64, "reading");
    for e in &index.entries {
        bar.inc(1);
        if preparer.filter.reject(e).is_some() || e.split == Split::Validation {
            continue;
        }
        let bytes = fs::read_entry(&args.gmd, e).map_err(|e| e.to_string())?;
        let raw = midi::read(&bytes, &read).map_err(|err| format!("{}: {err}", e.path))?;
        let q = format.quantise(&raw).map_err(|err| format!("{}: {err}", e.path))?;
        if e.split == Split::Train {
            if let Err(err) = preparer.add(&mut prepared, e, &bytes, &tokens) {
                eprintln!("skipped {err}");
            }
            train_bars.extend(roll_bars(&q).unwrap_or_default());
            train_grooves.push(raw);
            continue;
        }
        if wanted.as_ref().is_some_and(|w| !w.contains(&e.path)) {
            continue;
        }
        let first = template.first_bar(&q);
        let mut k = first;
        while k + p + c <= raw.bars.len() {
            pieces.push(Piece {
                id: file_id(&e.path, k - first),
                prompt: raw.slice(k..k + p),
                truth: raw.slice(k + p..k + p + c),
            });
            k += p + c;
        }
    }
    bar.finish_and_clear();
    if pieces.is_empty() {
        return Err(
            "no test piece has enough bars for the window (or --pieces matched none)".into()
        );
    }
    eprintln!("{} pieces of {p} + {c} bars from the test split", pieces.len());

    // Systems that generate: the local model, and the --backend one.
    let names = voice_names();
    let mut eval_manifest: Manifest = manifest.clone();
    eval_manifest.template.strip_silence = false;
    let local_model = match (&args.backend, &args.model) {
        (Some(b), Some(m)) if b == "local" => {
            let bytes = std::fs::read(m).map_err(|e| format!("{m}: {e}"))?;
            Model::from_bytes(m, &bytes).map_err(|e| e.to_string())?
        }
        _ => {
            let mut model = Model::new(&template).map_err(|e| e.to_string())?;
            model
                .train_jsonl("train", &legacy_jsonl(prepared.split(Split::Train)))
                .map_err(|e| e.to_string())?;
            model
        }
    };
    let local = Local::new(template.clone());
    local.insert_model("gmd-train", local_model);
    let mut systems: Vec<(String, String, Box<dyn Complete>)> =
        vec![("local".into(), "gmd-train".into(), Box::new(local))];
    if args.backend.as_deref() == Some("openai") {
        let model = args.model.clone().ok_or("--backend openai needs --model")?;
        let mut config = Config::from_env().map_err(|e| e.to_string())?;
        if let Some(url) = &args.base_url {
            config.base_url = url.clone();
        }
        systems.push((
            format!("openai:{model}"),
            model,
            Box::new(OpenAi::new(config).map_err(|e| e.to_string())?),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let mut results: Vec<(String, Vec<Groove>, Option<Validity>)> = Vec::new();
    results.push(("human".into(), pieces.iter().map(|x| x.truth.clone()).collect(), None));
    results.push(("repeat".into(), pieces.iter().map(|x| repeat(&x.prompt, c)).collect(), None));
    let density = Density::of(&train_grooves, names.len(), 16);
    results.push((
        "random".into(),
        pieces
            .iter()
            .enumerate()
            .map(|(i, x)| {
                random(&x.prompt, &density, c, &mut SplitMix64::seed_from_u64(args.seed + i as u64))
            })
            .collect(),
        None,
    ));
    for (name, model, backend) in &systems {
        let dir = args.out.join("outputs").join(name.replace([':', '/'], "_"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let bar = common::progress(pieces.len() as u64, name);
        let mut grooves = Vec::new();
        let mut validity = Validity::default();
        for (i, piece) in pieces.iter().enumerate() {
            let file = dir.join(format!("{}.json", piece.id));
            let saved = match load(&file) {
                Some(s) => s,
                None => {
                    let mut options = ContinueOptions::new(model);
                    options.bars = c;
                    options.temperature = args.temperature;
                    options.seed = Some(args.seed + i as u64);
                    let midi_in = midi::write(&piece.prompt, &WriteOptions::default())
                        .map_err(|e| e.to_string())?;
                    let out = match runtime.block_on(continue_midi(
                        &midi_in,
                        &eval_manifest,
                        backend.as_ref(),
                        &options,
                    )) {
                        Ok(o) => o,
                        Err(e) => {
                            bar.abandon();
                            return Err(format!(
                                "{name} on {}: {e} (outputs so far are kept in {}; rerun to go on)",
                                piece.id,
                                dir.display()
                            ));
                        }
                    };
                    let cont = out.groove.slice(p..out.groove.bars.len());
                    let saved = Saved {
                        samples: out.report.samples,
                        continuation: Format::EXACT.encode(&cont).map_err(|e| e.to_string())?,
                    };
                    let json = serde_json::to_vec(&saved).map_err(|e| e.to_string())?;
                    fs::write_atomic(&file, &json).map_err(|e| e.to_string())?;
                    saved
                }
            };
            let ctx = piece.prompt.context_after();
            for s in &saved.samples {
                validity.add(&format, template.completion_body(s), &ctx);
            }
            let full = Format::EXACT
                .decode(
                    &saved.continuation,
                    &Context::new(ctx.ticks_per_quarter, ctx.meter, ctx.tempo),
                )
                .map_err(|e| format!("{}: {e}", file.display()))?;
            grooves.push(full.with_voices(VoiceMap::Gmd9).map_err(|e| e.to_string())?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        results.push((name.clone(), grooves, Some(validity)));
    }
    for spec in &args.import {
        let (name, dir) =
            spec.split_once('=').ok_or_else(|| format!("--import takes NAME=DIR, not {spec:?}"))?;
        let mut grooves = Vec::new();
        let mut validity = Validity::default();
        for piece in &pieces {
            let path = Path::new(dir).join(format!("{}.txt", piece.id));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let ctx = piece.prompt.context_after();
            validity.add(&Format::DRUMROLL, &text, &ctx);
            let mut g =
                Format::DRUMROLL.decode_lenient(&text, &ctx).map(|l| l.groove).unwrap_or_else(
                    |_| Groove::new(480, fine_drums_codec::Grid::SIXTEENTH, VoiceMap::Paper6),
                );
            if g.bars.len() >= p + c {
                g = g.slice(p..g.bars.len());
            }
            g.bars.truncate(c);
            grooves.push(g.with_voices(VoiceMap::Gmd9).map_err(|e| e.to_string())?);
        }
        results.push((name.to_string(), grooves, Some(validity)));
    }

    // Scores.
    let human = distributions(&results[0].1, &names);
    let mut scored = Vec::new();
    for (name, grooves, validity) in &results {
        let rolls: Vec<RollPiece> = pieces
            .iter()
            .zip(grooves)
            .map(|(piece, g)| {
                let mut whole = piece.prompt.clone();
                whole.bars.extend(g.bars.iter().cloned());
                RollPiece { bars: roll_bars(&whole).unwrap_or_default(), continuation: p }
            })
            .collect();
        let dist = distributions(grooves, &names);
        let mut acc = Accuracy::new(names.len());
        for (piece, g) in pieces.iter().zip(grooves) {
            acc.add(&piece.truth, g, args.tolerance);
        }
        scored.push(SystemResult {
            name: name.clone(),
            pieces: pieces.len(),
            bars_asked: pieces.len() * c,
            bars_produced: grooves.iter().map(|g| g.bars.len()).sum(),
            validity: *validity,
            structure: structure(&rolls, &train_bars),
            versus_human: compare(&human, &dist),
            distributions: dist,
            onset_f1: acc.f1_all(),
            onset_f1_per_voice: names
                .iter()
                .enumerate()
                .map(|(v, n)| (n.clone(), acc.f1(v)))
                .collect(),
            velocity_mae: acc.velocity_mae(),
        });
    }

    // Pictures and tables.
    let pictures = args.out.join("pictures");
    std::fs::create_dir_all(&pictures).map_err(|e| format!("{}: {e}", pictures.display()))?;
    for (i, piece) in pieces.iter().enumerate() {
        let wholes: Vec<(String, Groove)> = results
            .iter()
            .map(|(name, grooves, _)| {
                let mut whole = piece.prompt.clone();
                whole.bars.extend(grooves[i].bars.iter().cloned());
                (name.clone(), whole)
            })
            .collect();
        let panels: Vec<(&str, &Groove)> = wholes.iter().map(|(n, g)| (n.as_str(), g)).collect();
        let svg = fine_drums_eval::svg::piano_roll(&piece.id, &names, p, &panels);
        fs::write_atomic(&pictures.join(format!("{}.svg", piece.id)), svg.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let curves: Vec<(&str, Vec<f64>)> =
        scored.iter().map(|s| (s.name.as_str(), s.structure.curve.clone())).collect();
    fs::write_atomic(
        &args.out.join("stability.svg"),
        fine_drums_eval::svg::stability_curves(&curves).as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&scored).map_err(|e| e.to_string())?;
    fs::write_atomic(&args.out.join("results.json"), json.as_bytes()).map_err(|e| e.to_string())?;
    let table = markdown(&scored, pieces.len(), p, c);
    fs::write_atomic(&args.out.join("results.md"), table.as_bytes()).map_err(|e| e.to_string())?;
    print!("{table}");
    println!("\nwrote {} in {:.1} s", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

fn load(file: &Path) -> Option<Saved> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

fn markdown(scored: &[SystemResult], pieces: usize, p: usize, c: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "GMD test split: {pieces} pieces of {p} prompt bars + {c} bars.\n");
    let _ = writeln!(
        s,
        "| system | stability | 2-means distance | spread | identical to a neighbour | bars seen in training | onset F1 | velocity MAE |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in scored {
        let st = &r.structure;
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.1}% | {:.1}% | {:.3} | {:.1} |",
            r.name,
            st.stability,
            st.centre_distance,
            st.spread,
            100.0 * st.identical,
            100.0 * st.duplicated,
            r.onset_f1,
            r.velocity_mae
        );
    }
    let _ = writeln!(
        s,
        "\nDistributions against the human continuations: overlapping area (1 = same) / KL(human ‖ system) in nats.\n"
    );
    let _ = writeln!(s, "| system | voices | onsets per bar | velocity | microtiming |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for r in scored {
        let v = &r.versus_human;
        let f = |x: (f64, f64)| format!("{:.3} / {:.3}", x.0, x.1);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.name,
            f(v.voices),
            f(v.hits_per_bar),
            f(v.velocity),
            f(v.microtiming)
        );
    }
    let _ = writeln!(
        s,
        "\nValidity of raw model outputs (every sample, resamples included) and bars produced.\n"
    );
    let _ = writeln!(
        s,
        "| system | outputs | strict | lenient only | unusable | bars produced / asked |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for r in scored {
        let (outputs, shares) = r.validity.map_or(
            ("—".to_string(), ["—".to_string(), "—".to_string(), "—".to_string()]),
            |v| (v.outputs().to_string(), v.shares().map(|x| format!("{:.1}%", 100.0 * x))),
        );
        let _ = writeln!(
            s,
            "| {} | {outputs} | {} | {} | {} | {} / {} |",
            r.name, shares[0], shares[1], shares[2], r.bars_produced, r.bars_asked
        );
    }
    s
}

fn main() -> ExitCode {
    common::exit(run())
}
