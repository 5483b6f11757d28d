//! An OpenAI-compatible API over the local models, for scripts written against OpenAI's
//! legacy fine-tuning API.
//!
//! `cargo run --release --example serve -- --port 8080 --data serve-data/` serves
//! `http://127.0.0.1:8080/v1`: upload a prompt/completion JSONL file, fine-tune `babbage-002`
//! (the Markov model) or `davinci-002` (the drum GPT), poll the job, and complete with the
//! fine-tuned model, with the official SDKs or `fine_tune`/`continue --base-url`. Files, jobs
//! and models are kept in `--data`, so a restart loses nothing. The server is
//! `fine_drums_serve`; this file reads the command line around it.

mod common;
#[global_allocator] // the drum GPT allocates a tensor per operation (see Cargo.toml)
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::error::Error;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use common::At;

/// Serve an OpenAI-compatible API (files, fine-tuning jobs, completions) over the local models.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The port (0: any free one, printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on. Anything but loopback exposes the server to the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The data folder: uploaded files, jobs, their events and the trained models.
    #[arg(long, default_value = "serve-data")]
    data: PathBuf,
    /// Require `Authorization: Bearer <KEY>` on every request (default: FINE_DRUMS_SERVE_KEY,
    /// else no key).
    #[arg(long)]
    key: Option<String>,
    /// The largest request body, in MiB.
    #[arg(long, default_value_t = 512)]
    max_body_mib: usize,
    /// The manifest `prepare` wrote (its template reads prompts; default: default settings).
    #[arg(long)]
    manifest: Option<PathBuf>,
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut options = fine_drums_serve::Options::new(&args.data);
    options.template = common::manifest(args.manifest.as_deref(), None)?.template;
    let env_key = std::env::var("FINE_DRUMS_SERVE_KEY").ok().filter(|k| !k.is_empty());
    (options.key, options.max_body) = (args.key.or(env_key), args.max_body_mib << 20);
    if !args.host.is_loopback() && options.key.is_none() {
        eprintln!(
            "warning: listening on {} with no key: anyone on the network can use it",
            args.host
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host, args.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        println!("serving http://{addr}/v1 (data in {})", args.data.display());
        fine_drums_serve::serve(listener, options).await.at(&args.data)?;
        Ok(())
    })
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}
