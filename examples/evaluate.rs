//! Scores drum continuations on the GMD test split: human drummers, repeat-the-prompt,
//! random at human density, the offline local model, and any other backend.
//!
//! `cargo run --release --example evaluate -- ../shared/datasets/groove --out eval/` writes
//! `eval/results.md`, `eval/results.json`, `eval/stability.svg`, a piano roll per piece
//! in `eval/pictures/`, recordings in `eval/audio/`, and `eval/report.html` over them all.
//! Model outputs are saved in `eval/outputs/` as they arrive, and a rerun reuses them, so
//! an interrupted run loses nothing. The protocol is `fine_drums_eval::Protocol`; this file
//! reads and writes files around it.

mod common;
#[global_allocator] // the drum GPT allocates a tensor per operation (see Cargo.toml)
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{error::Error, path::PathBuf, time::Instant};

use clap::Parser;
use fine_drums_backends::{Kind, Settings};
use fine_drums_dataset::{Split, cl100k};
use fine_drums_eval::fs::{self, FolderCache};
use fine_drums_eval::{Protocol, System};
use fine_drums_markov::{Markov, Model};

/// Score drum continuations on the GMD test split against human drummers and baselines.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The GMD folder (with info.csv).
    gmd: PathBuf,
    /// Where to write results, pictures and model outputs.
    #[arg(long, default_value = "eval")]
    out: PathBuf,
    #[command(flatten)]
    backend: common::BackendArgs,
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
    #[arg(long, value_parser = common::name_and_dir)]
    import: Vec<(String, PathBuf)>,
    /// ours (the default), or paper: Zhang & Callison-Burch 2023's analysis, on their
    /// published outputs (--import NAME=DIR, as published) and the GMD made text their way.
    #[arg(long, default_value = "ours", value_parser = ["ours", "paper"])]
    protocol: String,
    #[command(flatten)]
    sampling: common::SamplingArgs,
    #[command(flatten)]
    audio: common::AudioArgs,
    /// Base seed; piece i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Onset-matching tolerance in ticks at 480 per quarter (default: half a 16th).
    #[arg(long, default_value_t = 60)]
    tolerance: i64,
    /// The split to score: test (to report) or validation (to choose settings on).
    #[arg(long, default_value = "test", value_parser = ["test", "validation"])]
    split: String,
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    if args.protocol == "paper" {
        return common::paper(&args.gmd, &args.import, &args.out);
    }
    let started = Instant::now();
    let mut manifest = common::manifest(args.manifest.as_deref(), None)?;
    (manifest.windows.prompt_bars, manifest.windows.completion_bars) =
        (args.prompt_bars, args.bars);
    let mut protocol = Protocol::of_manifest(&manifest);
    (protocol.seed, protocol.tolerance) = (args.seed, args.tolerance);
    protocol.split = if args.split == "validation" { Split::Validation } else { Split::Test };
    protocol.only = args.pieces.as_deref().map(fs::read_list).transpose()?;
    let mut progress = common::progress_bars();
    let data = fs::read_data(&protocol, &args.gmd, &cl100k()?, &mut progress)?;
    let (n, p, c) = (data.pieces().len(), args.prompt_bars, args.bars);
    eprintln!("{n} pieces of {p} + {c} bars from the {} split", args.split);

    // The local model (trained on the train split, or --model), then the --backend openai one.
    let settings = args.backend.settings()?;
    let local_model = match settings.markov_model()? {
        Some(m) => m,
        None => Model::from_pairs(&protocol.template, data.train_pairs())?,
    };
    let mut eval_manifest = manifest.clone();
    eval_manifest.template.strip_silence = false;
    let local = Markov::new(protocol.template.clone());
    local.insert_model("gmd-train", local_model);
    let local = Box::new(local);
    let sampling = args.sampling.of(&Settings::of(Kind::Markov));
    let mut systems: Vec<Box<dyn System>> = vec![Box::new(common::continuing(
        "local",
        "gmd-train".into(),
        local,
        &eval_manifest,
        sampling,
    )?)];
    let offline = matches!(settings.kind, Kind::Gpt | Kind::Lora);
    if settings.kind != Kind::Markov {
        let extra = args.backend.completer(args.manifest.as_deref(), 0, |_| {})?;
        let name =
            if offline { settings.kind.to_string() } else { format!("openai:{}", extra.model) };
        let sampling = args.sampling.of(&settings);
        let gpt = common::continuing(&name, extra.model, extra.backend, &eval_manifest, sampling)?;
        systems.push(Box::new(gpt));
    }
    let read = |(n, d): &(String, PathBuf)| fs::read_import(n, d, data.pieces());
    let imports = args.import.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    let mut cache = FolderCache::new(args.out.join("outputs"));
    let outputs = cache.folder().display().to_string();
    let evaluation = protocol
        .run(&data, &mut systems, &imports, &mut cache, &mut progress)
        .map_err(|e| format!("{e} (outputs so far are kept in {outputs}; rerun to go on)"))?;
    let recorded = args.audio.record(&evaluation, &args.out)?;
    evaluation.write(&args.out)?;
    print!("{}", evaluation.markdown());
    let (out, secs) = (args.out.display(), started.elapsed().as_secs_f64());
    println!("\nwrote {out} ({recorded} recordings; open {out}/report.html) in {secs:.1} s");
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}
