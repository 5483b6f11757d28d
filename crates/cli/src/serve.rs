//! An OpenAI-compatible API over the local models, for scripts written against OpenAI's
//! legacy fine-tuning API.
//!
//! `cargo run --release --features serve --example serve -- --port 8080 --data serve-data/` serves
//! `http://127.0.0.1:8080/v1`: upload a prompt/completion JSONL file, fine-tune `babbage-002`
//! (the Markov model) or `davinci-002` (the drum GPT), poll the job, and complete with the
//! fine-tuned model, with the official SDKs or `fine_tune`/`continue --base-url`. Files, jobs
//! and models are kept in `--data`, so a restart loses nothing. The server is
//! `fine_drums_serve`; this file reads the command line around it.

use std::error::Error;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::At;
use clap::Parser;

/// Serve an OpenAI-compatible API (files, fine-tuning jobs, completions) over the local models.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The port (0: any free one, printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on. Anything but loopback exposes the server to the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The data folder: uploaded files, jobs, their events and the trained models.
    #[arg(long, default_value = "serve-data")]
    data: PathBuf,
    /// Require `Authorization: Bearer <KEY>` on every request. The command line shows in
    /// `ps` to every user of the machine: prefer --key-file or FINE_DRUMS_SERVE_KEY.
    #[arg(long, conflicts_with = "key_file")]
    key: Option<String>,
    /// Require `Authorization: Bearer <key>` with the key in this file (its first line).
    /// Default: FINE_DRUMS_SERVE_KEY, else no key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The largest upload, in MiB.
    #[arg(long, default_value_t = 512)]
    max_body_mib: usize,
    /// The memory the whole server may use, in MiB; model work is admitted against it.
    #[arg(long, default_value_t = 2048)]
    memory_mib: u64,
    /// The memory one request's model work may hold at once, in MiB (samples are drawn in
    /// chunks that fit it).
    #[arg(long, default_value_t = 512)]
    request_memory_mib: u64,
    /// Model calls that may wait for memory or a core; one more gets a 429.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// The longest a request may take, in seconds (then 503, and its work stops).
    #[arg(long, default_value_t = 120)]
    deadline_secs: u64,
    /// The longest a connection may take to send a request's headers, idle or not, in seconds.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// The longest pause in a request's body, in seconds.
    #[arg(long, default_value_t = 30)]
    body_timeout_secs: u64,
    /// Connections open at once (and no more than the process may open files, less 64).
    #[arg(long, default_value_t = 512)]
    connections: usize,
    /// The longest prompt, in tokens (16,384: the context of babbage-002 and davinci-002).
    #[arg(long, default_value_t = 16_384)]
    prompt_tokens: u64,
    /// The manifest `prepare` wrote (its template reads prompts; default: default settings).
    #[arg(long)]
    manifest: Option<PathBuf>,
}

/// Serves until the process is stopped.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let mut options = fine_drums_serve::Options::new(&args.data);
    options.template = crate::manifest(args.manifest.as_deref(), None)?.template;
    let env_key = std::env::var("FINE_DRUMS_SERVE_KEY").ok().filter(|k| !k.is_empty());
    if args.key.is_some() {
        eprintln!(
            "warning: --key shows the key to every user of this machine (ps): use --key-file or FINE_DRUMS_SERVE_KEY"
        );
    }
    let file_key = match &args.key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).at(path)?;
            let key = text.lines().next().unwrap_or_default().trim().to_string();
            if key.is_empty() {
                return Err(
                    format!("{}: the key file's first line is empty", path.display()).into()
                );
            }
            Some(key)
        }
        None => None,
    };
    (options.key, options.max_body) = (args.key.or(file_key).or(env_key), args.max_body_mib << 20);
    let l = &mut options.limits;
    (l.memory, l.request_memory) = (args.memory_mib << 20, args.request_memory_mib << 20);
    (l.queue, l.connections, l.prompt_tokens) = (args.queue, args.connections, args.prompt_tokens);
    l.deadline = Duration::from_secs(args.deadline_secs);
    l.header_timeout = Duration::from_secs(args.header_timeout_secs);
    l.body_timeout = Duration::from_secs(args.body_timeout_secs);
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
