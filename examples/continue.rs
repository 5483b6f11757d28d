//! Continues a drum MIDI file with a language model.
//!
//! `cargo run --release --example continue -- examples/grooves/rock.mid` uses the offline
//! local backend (no key, no network) and writes `examples/grooves/rock.continued.mid`.
//! `--model model.fdlm` uses a trained local model; `--backend openai --model ft:...`
//! uses OpenAI or, with `--base-url`, any OpenAI-compatible server.

mod common;

/// The drum GPT allocates a tensor per operation: see the workspace manifest.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use common::At;
use fine_drums_llm::{ContinueOptions, continue_midi};

/// Continue a drum groove: the first bars of a MIDI file go to a model, its bars come back
/// as a MIDI file that plays in any DAW.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The MIDI file to continue.
    input: PathBuf,
    /// Where to write the result (default: <input>.continued.mid beside the input).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    backend: common::BackendArgs,
    /// The manifest.json written by `prepare`, so that prompts are built as in training
    /// (default: the default settings, or those of the local model file).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Bars to add.
    #[arg(long, default_value_t = 14)]
    bars: usize,
    #[command(flatten)]
    sampling: common::SamplingArgs,
    /// Sample among the k likeliest steps only (local backend; 0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Samples per request; the best is kept.
    #[arg(long, default_value_t = 1)]
    samples: u32,
    /// Seed: the same seed gives the same output (local backend; OpenAI tries its best).
    #[arg(long)]
    seed: Option<u64>,
    /// Requests per window before giving up on a clean sample.
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// HTTP retries per request (openai).
    #[arg(long, default_value_t = 4)]
    max_retries: u32,
    /// Seconds one HTTP request may take (openai).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

fn default_out(input: &Path) -> PathBuf {
    let stem =
        input.file_stem().map_or_else(|| "groove".into(), |s| s.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}.continued.mid"))
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let midi = std::fs::read(&args.input).at(&args.input)?;
    let common::Completer { backend, model: model_name, manifest } =
        args.backend.completer(args.manifest.as_deref(), args.top_k, |s| {
            s.max_retries = Some(args.max_retries);
            s.timeout = Some(std::time::Duration::from_secs(args.timeout));
        })?;
    let mut options = ContinueOptions::new(&model_name);
    options.bars = args.bars;
    (options.temperature, options.top_p) = args.sampling.of(&args.backend.backend);
    options.samples = args.samples;
    options.seed = args.seed;
    options.attempts = args.attempts;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().at("async runtime")?;
    let out = runtime
        .block_on(continue_midi(&midi, &manifest, backend.as_ref(), &options))
        .at(&args.input)?;
    let path = args.out.clone().unwrap_or_else(|| default_out(&args.input));
    fine_drums_dataset::fs::write_atomic(&path, &out.midi)?;
    let r = &out.report;
    println!(
        "{}: {} prompt bars{} + {} new bars from {} ({} via {}; {} request{}, {} tokens) -> {} in {:.2} s",
        args.input.display(),
        r.prompt_bars,
        if r.silent_bars > 0 {
            format!(" (after {} silent)", r.silent_bars)
        } else {
            String::new()
        },
        r.bars_kept,
        model_name,
        if r.bars_kept == r.bars_asked {
            "all asked for".to_string()
        } else {
            format!("{} asked for", r.bars_asked)
        },
        args.backend.backend,
        r.requests,
        if r.requests == 1 { "" } else { "s" },
        r.usage.total(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    for d in &r.dropped {
        println!("  dropped: {d}");
    }
    if let Some(why) = &r.stopped_early {
        println!("  stopped early: {why}");
    }
    Ok(())
}

fn main() -> ExitCode {
    common::exit(run())
}
