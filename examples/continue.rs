//! Continues a drum MIDI file with a language model.
//!
//! `cargo run --release --example continue -- examples/grooves/rock.mid` uses the offline
//! local backend (no key, no network) and writes `examples/grooves/rock.continued.mid`.
//! `--model model.fdlm` uses a trained local model; `--backend openai --model ft:...`
//! uses OpenAI or, with `--base-url`, any OpenAI-compatible server.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use fine_drums_dataset::Manifest;
use fine_drums_llm::local::{Local, Model, PROMPT_MODEL};
use fine_drums_llm::openai::{Config, OpenAi};
use fine_drums_llm::{Complete, ContinueOptions, continue_midi};

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
    /// local (offline, the default) or openai (OpenAI or any compatible server).
    #[arg(long, default_value = "local", value_parser = ["local", "openai"])]
    backend: String,
    /// The model: for local, `local` (the prompt's own statistics) or a .fdlm file from
    /// fine_tune; for openai, e.g. ft:babbage-002:org:drums:id.
    #[arg(long)]
    model: Option<String>,
    /// The manifest.json written by `prepare`, so that prompts are built as in training
    /// (default: the default settings, or those of the local model file).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Bars to add.
    #[arg(long, default_value_t = 14)]
    bars: usize,
    /// Sampling temperature (0 = always the likeliest).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
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
    /// Base URL of an OpenAI-compatible API (default: OPENAI_BASE_URL or OpenAI's).
    #[arg(long)]
    base_url: Option<String>,
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

fn run() -> Result<(), String> {
    let args = Args::parse();
    let started = Instant::now();
    let midi = std::fs::read(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let model_name = args.model.clone().unwrap_or_else(|| PROMPT_MODEL.to_string());
    let (manifest, backend): (Manifest, Box<dyn Complete>) = match args.backend.as_str() {
        "openai" => {
            args.model.as_deref().ok_or(
                "--backend openai needs --model (e.g. ft:babbage-002:org:drums:id, or a model your server serves)",
            )?;
            let manifest = common::manifest(args.manifest.as_deref(), None)?;
            let mut config = Config::from_env().map_err(|e| e.to_string())?;
            if let Some(url) = &args.base_url {
                config.base_url = url.clone();
            }
            config.retry.max_retries = args.max_retries;
            config.retry.timeout = std::time::Duration::from_secs(args.timeout);
            (manifest, Box::new(OpenAi::new(config).map_err(|e| e.to_string())?))
        }
        _ => {
            let trained = if model_name == PROMPT_MODEL {
                None
            } else {
                let bytes = std::fs::read(&model_name).map_err(|e| format!("{model_name}: {e}"))?;
                Some(Model::from_bytes(&model_name, &bytes).map_err(|e| e.to_string())?)
            };
            let manifest =
                common::manifest(args.manifest.as_deref(), trained.as_ref().map(Model::template))?;
            let local = Local::new(manifest.template.clone()).with_top_k(args.top_k);
            if let Some(m) = trained {
                local.insert_model(&model_name, m);
            }
            (manifest, Box::new(local))
        }
    };
    let mut options = ContinueOptions::new(&model_name);
    options.bars = args.bars;
    options.temperature = args.temperature;
    options.top_p = args.top_p;
    options.samples = args.samples;
    options.seed = args.seed;
    options.attempts = args.attempts;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("async runtime: {e}"))?;
    let out = runtime
        .block_on(continue_midi(&midi, &manifest, backend.as_ref(), &options))
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    let path = args.out.clone().unwrap_or_else(|| default_out(&args.input));
    fine_drums_dataset::fs::write_atomic(&path, &out.midi).map_err(|e| e.to_string())?;
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
        args.backend,
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
