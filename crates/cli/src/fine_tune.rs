//! Fine-tunes a model on the files `prepare` wrote.
//!
//! `cargo run --release --example fine_tune -- data/` trains the offline local model (no
//! key, no network) and prints its path; `--backend openai` uploads the JSONL files (the
//! chat ones for a chat model: gpt-4o-mini-2024-07-18 by default), creates the job, and
//! follows it with live events until it ends; `--base-url` points it at any compatible
//! server, the project's own `serve` among them (which fine-tunes babbage-002 and
//! davinci-002 offline).
//! `--backend lora --base <folder>` trains LoRA adapters on a pretrained model in a local
//! Hugging Face folder (SmolLM2, Qwen2.5, Llama, GPT-2) and saves them in PEFT's format.
//! `--dry-run` prints what would be sent and what it would cost, and sends nothing.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::At;
use clap::Parser;
use fine_drums_backends::{Kind, Settings};
use fine_drums_dataset::{Manifest, Split};
use fine_drums_llm::{JobEvent, JobRequest, Upload};

/// Fine-tune a model on prepared drum data (train.jsonl, validation.jsonl, manifest.json).
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The folder `prepare` wrote.
    data: PathBuf,
    /// local or markov (the offline Markov model, the default), gpt (the offline drum GPT),
    /// lora (adapters on a pretrained model, offline) or openai (OpenAI or any compatible
    /// server).
    #[arg(long, default_value = "local", value_parser = ["local", "markov", "gpt", "lora", "openai"])]
    backend: String,
    /// The pretrained model LoRA trains on (lora): a Hugging Face folder with config.json,
    /// *.safetensors and tokenizer.json. Nothing is downloaded.
    #[arg(long)]
    base: Option<PathBuf>,
    /// LoRA's rank (lora).
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    /// LoRA's alpha: updates are scaled by alpha / rank (lora).
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// Dropout on the adapters' input while training (lora).
    #[arg(long, default_value_t = 0.05)]
    lora_dropout: f32,
    /// Dropout in the drum GPT's training, 0 to below 1 (gpt; default 0, as the built-in
    /// model was trained; 0.1 lowered the small preset's validation loss from 1.564 to 1.543).
    #[arg(long, value_parser = parse_rate)]
    dropout: Option<f32>,
    /// The modules that get adapters, comma-separated (lora; default: every attention and
    /// feed-forward projection, e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj).
    #[arg(long, value_delimiter = ',')]
    lora_targets: Vec<String>,
    /// The longest training example, in the base model's tokens; a longer prompt loses its
    /// start (lora).
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
    /// Base model: `local` or `gpt` for the offline backends; for openai, a model the server
    /// fine-tunes (default gpt-4o-mini-2024-07-18, on the chat files; babbage-002 and
    /// davinci-002 with the project's serve).
    #[arg(long)]
    model: Option<String>,
    /// The drum GPT's size: tiny (tests), small (the default: minutes on 2 CPU cores) or
    /// base (a GPU).
    #[arg(long, default_value = "small", value_parser = ["tiny", "small", "base"])]
    preset: String,
    /// Train the drum GPT or the LoRA adapters on the first CUDA GPU (build with
    /// `--features cuda`).
    #[arg(long)]
    cuda: bool,
    /// Epochs (default: the service's choice).
    #[arg(long)]
    epochs: Option<u32>,
    /// Batch size (default: the service's choice).
    #[arg(long)]
    batch_size: Option<u32>,
    /// Learning-rate multiplier (default: the service's choice).
    #[arg(long)]
    learning_rate_multiplier: Option<f64>,
    /// Suffix of the fine-tuned model's name.
    #[arg(long, default_value = "drums")]
    suffix: String,
    /// Training seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Do not upload the validation file.
    #[arg(long)]
    no_validation: bool,
    /// Where the local backend saves models (default: DATA/models).
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Print what would be sent and the cost estimate; send nothing (no key needed).
    #[arg(long)]
    dry_run: bool,
    /// Base URL of an OpenAI-compatible API (default: OPENAI_BASE_URL or OpenAI's; the key,
    /// OPENAI_API_KEY, is optional for other servers).
    #[arg(long)]
    base_url: Option<String>,
    /// Send OPENAI_API_KEY even over plain http to a host other than this machine.
    #[arg(long)]
    allow_insecure_key: bool,
    /// Seconds between two looks at a running job (openai).
    #[arg(long, default_value_t = 10)]
    poll: u64,
}

fn read(path: PathBuf) -> Result<Upload, Box<dyn Error>> {
    let bytes = std::fs::read(&path).map_err(|e| format!("{e} (run prepare first)")).at(&path)?;
    let name =
        path.file_name().map_or_else(|| "train.jsonl".into(), |n| n.to_string_lossy().into_owned());
    Ok(Upload::new(name, bytes))
}

/// Fine-tunes, following the job with live events until it ends, and prints the model's name.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let manifest_path = args.data.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{e} (run prepare first)"))
        .at(&manifest_path)?;
    let manifest = Manifest::from_json(&text).at(&manifest_path)?;
    let mut settings = Settings::of(args.backend.parse()?);
    settings.model = args.model.clone();
    if settings.kind == Kind::Lora && args.model.is_none() {
        let base = args.base.as_ref().ok_or("--backend lora needs --base <folder>: a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)")?;
        settings.model = Some(base.display().to_string());
    }
    let base = settings.base_model()?;
    // Chat models train on the chat files (`method: supervised`), the others on the legacy ones.
    #[cfg(feature = "openai")]
    let chat = settings.kind == Kind::OpenAi && fine_drums_openai::is_chat_model(&base);
    #[cfg(not(feature = "openai"))]
    let chat = false;
    // The drum GPT trains on whole pieces, with their controls, where prepare wrote them.
    let pieces = settings.kind == Kind::Gpt
        && manifest
            .files
            .values()
            .all(|f| !f.pieces.is_empty() && args.data.join(&f.pieces).is_file());
    let files = |s: Split| {
        manifest.files.get(&s).map(|f| {
            args.data.join(if pieces {
                &f.pieces
            } else if chat {
                &f.chat
            } else {
                &f.legacy
            })
        })
    };
    let training = read(files(Split::Train).ok_or("the manifest names no training file")?)?;
    let validation = match (args.no_validation, files(Split::Validation)) {
        (false, Some(p)) => Some(read(p)?),
        _ => None,
    };
    let mut job = JobRequest::new(&base, "");
    job.epochs = args.epochs;
    job.batch_size = args.batch_size;
    job.learning_rate_multiplier = args.learning_rate_multiplier;
    job.suffix = Some(args.suffix.clone());
    job.seed = args.seed;

    if args.dry_run {
        #[cfg(feature = "openai")]
        return dry_run(&args, &manifest, &training, validation.as_ref(), &job);
        #[cfg(not(feature = "openai"))]
        return Err("--dry-run shows what would be sent to an OpenAI-compatible service: build with the `openai` feature".into());
    }
    let models_dir = args.models_dir.clone().unwrap_or_else(|| args.data.join("models"));
    settings.base_url = args.base_url.clone();
    settings.allow_insecure_key = args.allow_insecure_key;
    if settings.kind == Kind::OpenAi {
        crate::warn_withheld_key(args.base_url.as_deref(), args.allow_insecure_key);
    }
    settings.poll_interval = Some(Duration::from_secs(args.poll));
    settings.models_dir = Some(models_dir);
    settings.cuda = args.cuda;
    let t = &mut settings.training;
    (t.preset, t.max_tokens) = (args.preset.clone(), args.max_tokens);
    (t.lora_rank, t.lora_alpha, t.lora_dropout) =
        (args.lora_rank, args.lora_alpha, args.lora_dropout);
    t.lora_targets = args.lora_targets.clone();
    t.dropout = args.dropout;
    if let Some(seed) = settings.default_seed() {
        eprintln!("training seed: {}", args.seed.unwrap_or(seed));
    }
    let backend = settings.fine_tuner(&manifest.template)?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message(format!("fine-tuning {base} on {}", training.name));
    let bar = spinner.clone();
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] step {pos}/{len} {elapsed_precise} (eta {eta})",
    );
    let mut last_line = Instant::now();
    let mut on_event = move |e: &JobEvent| {
        // Training steps move the bar (loss and speed in its message); the rest is printed.
        if let Some(m) = e.metrics {
            if let (Some(total), Ok(style)) = (m.total_steps, &style)
                && bar.length() != Some(total)
            {
                bar.set_style(style.clone().progress_chars("=> "));
                bar.set_length(total);
            }
            bar.set_position(m.step);
            let loss = m.train_loss.map_or(String::new(), |l| format!("loss {l:.3}"));
            let speed = m.tokens_per_second.map_or(String::new(), |t| format!(", {t:.0} tokens/s"));
            bar.set_message(format!("{loss}{speed}"));
            // Without a terminal, a line every 50 steps, or every half minute for slow ones.
            if bar.is_hidden() && (m.step % 50 == 0 || last_line.elapsed().as_secs() >= 30) {
                eprintln!("[{}] {}", e.level, e.message);
                last_line = Instant::now();
            }
            return;
        }
        let line = format!("[{}] {}", e.level, e.message);
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().at("async runtime")?;
    let result =
        runtime.block_on(backend.fine_tune(&training, validation.as_ref(), &job, &mut on_event));
    spinner.finish_and_clear();
    let model = result?;
    println!("fine-tuned model: {model} ({:.2} s)", started.elapsed().as_secs_f64());
    println!(
        "continue a groove with it: cargo run --release --example continue -- <file.mid> --backend {} --model {model} --manifest {}",
        args.backend,
        manifest_path.display()
    );
    Ok(())
}

#[cfg(feature = "openai")]
fn dry_run(
    args: &Args,
    manifest: &Manifest,
    training: &Upload,
    validation: Option<&Upload>,
    job: &JobRequest,
) -> Result<(), Box<dyn Error>> {
    println!("dry run: nothing is sent");
    let base_url = args.base_url.clone().unwrap_or_else(|| {
        std::env::var("OPENAI_BASE_URL")
            .unwrap_or_else(|_| fine_drums_openai::OPENAI_BASE_URL.into())
    });
    println!(
        "backend: {} ({})",
        args.backend,
        if args.backend == "openai" { base_url.as_str() } else { "offline" }
    );
    for (what, f) in [("training", Some(training)), ("validation", validation)] {
        if let Some(f) = f {
            let lines = f.bytes.iter().filter(|&&b| b == b'\n').count();
            println!(
                "upload {what} file: {} ({} bytes, {lines} examples), purpose fine-tune",
                f.name,
                f.bytes.len()
            );
        }
    }
    let mut shown = job.clone();
    shown.training_file = "<id of the uploaded training file>".into();
    if validation.is_some() {
        shown.validation_file = Some("<id of the uploaded validation file>".into());
    }
    let body = serde_json::to_string_pretty(&fine_drums_openai::job_body(&shown))?;
    println!("POST /fine_tuning/jobs\n{body}");
    let tokens =
        manifest.stats.iter().find(|s| s.split == Some(Split::Train)).map_or(0, |s| s.tokens);
    let epochs = job.epochs.unwrap_or(1);
    for (model, cost) in manifest.prices.per_epoch(tokens) {
        println!(
            "cost estimate on {model}: {tokens} tokens x {epochs} epoch{} = ${:.4}{}",
            if epochs == 1 { "" } else { "s" },
            cost * f64::from(epochs),
            if job.epochs.is_none() { " per epoch (the service picks the epochs)" } else { "" }
        );
    }
    println!("prices: {}", manifest.prices.source);
    if fine_drums_openai::BaseModel::of(&job.model).is_some()
        && fine_drums_openai::is_openai(&base_url)
    {
        println!(
            "note: babbage-002 and davinci-002 shut down on 2026-09-28 (their fine-tunes on \
             2026-10-23): OpenAI will refuse. The project's own server fine-tunes them offline \
             (cargo run --release --features serve --example serve; then --base-url http://127.0.0.1:8080/v1)"
        );
    }
    Ok(())
}

/// A dropout rate: 0 to below 1.
fn parse_rate(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(r) if (0.0..1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s}: a rate from 0 to below 1")),
    }
}
