//! An OpenAI-compatible server for the fine-drums models, so that scripts written for the
//! legacy fine-tuning API (upload a JSONL file, fine-tune `babbage-002` or `davinci-002`,
//! poll the job, complete with the fine-tuned model) run unchanged, offline.
//!
//! ```
//! use fine_drums_openai::{ApiKey, Config, OpenAi};
//! use fine_drums_llm::{Complete, CompletionRequest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = std::env::temp_dir().join(format!("fine-drums-serve-doc-{}", std::process::id()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/v1", listener.local_addr()?);
//! tokio::spawn(fine_drums_serve::serve(listener, fine_drums_serve::Options::new(&data)));
//!
//! // `url` is an OpenAI base URL now: any client works, the project's own among them.
//! let mut config = Config::new(ApiKey::new("no key needed"));
//! config.base_url = url;
//! let api = OpenAi::new(config)?;
//! let prompt = "KhC..h. Sh..h. Kh..Kh. Sh..h.>>>"; // a bar of rock, then the separator
//! let mut request = CompletionRequest::new("babbage-002", prompt, 60);
//! request.seed = Some(7);
//! let completion = api.complete(&request).await?;
//! // New bars, one a line, four beats each.
//! let text = &completion.choices[0].text;
//! assert!(text.starts_with('\n') && text.trim().lines().all(|bar| bar.split(' ').count() == 4));
//! # let _ = std::fs::remove_dir_all(&data);
//! # Ok(()) }
//! ```
//!
//! - **Routes**: `/v1/models`; `/v1/files` (upload, list, retrieve, content, delete);
//!   `/v1/fine_tuning/jobs` (create, list with `metadata[key]=value` filters, retrieve,
//!   events, cancel; pages by `after` and `limit`, newest first); `/v1/completions` (with
//!   `stop`, `n`, `seed`, and `echo` with `logprobs` to score a continuation);
//!   `/v1/chat/completions`. Request bodies are read into the OpenAI client's own wire types
//!   (`fine_drums_openai::wire`, without the client), so the two cannot drift apart; a bad
//!   field is a 400 whose `param` names it (`temperature`, `messages[0].role`).
//! - **Models** ([`BASE_MODELS`]): a job on `babbage-002` (or the mini chat names) trains the
//!   Markov model of `fine_drums_markov`; one on `davinci-002` (or the larger chat names)
//!   trains the drum GPT of `fine_drums_gpt`, both built by `fine-drums-backends`. Legacy prompt/completion files and chat files
//!   both train. The fine-tuned model is named `ft:<base>:fine-drums:<suffix>:<job>`.
//! - **Nothing lost**: files, jobs, events and models live in the data folder; records are
//!   written whole; a job that was running when the server stopped runs again at the next
//!   start (the drum GPT from its last checkpoint).
//! - **Safe defaults**: the `serve` example binds 127.0.0.1; with a key, every request needs
//!   `Authorization: Bearer <key>`; every error has OpenAI's shape (`{"error": {"message",
//!   "type", "param", "code"}}`), with no path of the server's.
//! - **Budgets** ([`Limits`]): model work is admitted against a memory budget and a core each
//!   (samples in chunks that fit, 429 past a bounded queue), prompts have a token limit,
//!   every request a deadline, every connection a header timeout, uploads stream to disk;
//!   a request whose client leaves stops its work.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod limits;
mod store;
mod models;
mod request;
mod api;
mod conn;

use std::path::PathBuf;
use std::sync::Arc;

use fine_drums_dataset::Template;
use fine_drums_gpt::train::TrainOptions;

pub use error::{Error, Result};
pub use limits::Limits;
pub use models::BASE_MODELS;

/// How the server runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The data folder: files, jobs, events and models.
    pub data: PathBuf,
    /// The bearer key every request must carry; `None` for none.
    pub key: Option<String>,
    /// The largest request body, in bytes. Default: 512 MiB (OpenAI's largest file).
    pub max_body: usize,
    /// How prompts and completions are written (the manifest's template).
    pub template: Template,
    /// The drum GPT's training settings, before a job's hyperparameters.
    pub train: TrainOptions,
    /// The budgets of memory, time and connections.
    pub limits: Limits,
}

impl Options {
    /// Default options over the data folder `data`.
    pub fn new(data: impl Into<PathBuf>) -> Options {
        Options {
            data: data.into(),
            key: None,
            max_body: 512 << 20,
            template: Template::default(),
            train: TrainOptions::default(),
            limits: Limits::default(),
        }
    }
}

impl std::fmt::Debug for api::App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// The server's routes over `options.data`, with its job runner started on the current
/// tokio runtime (and the jobs a previous run left unfinished queued again).
pub fn router(options: Options) -> Result<axum::Router> {
    let store = Arc::new(store::Store::open(&options.data)?);
    let models = Arc::new(models::Models::new(options.template, options.train, store.clone())?);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut unfinished: Vec<store::JobRecord> =
        store.jobs().into_iter().filter(|j| !j.is_terminal()).collect();
    unfinished.sort_by_key(|j| j.created_at);
    for job in unfinished {
        let _ = tx.send(job.id);
    }
    let (runner, runs) = (models.clone(), store.clone());
    tokio::spawn(async move {
        while let Some(id) = rx.recv().await {
            if let Err(e) = runner.run(&id).await {
                let code = match e {
                    Error::Invalid { .. } => "invalid_training_file",
                    _ => "server_error",
                };
                let message = e.public();
                if let Err(w) = runs.fail_job(&id, code, &message) {
                    eprintln!("serve: job {id} failed ({e}), and its record was not written: {w}");
                }
                let _ = runs.event(&id, "error", format!("Job failed: {message}"), None);
            }
        }
    });
    let admission = limits::Admission::new(&options.limits);
    let uploads = Arc::new(tokio::sync::Semaphore::new(options.limits.uploads.max(1)));
    let tokens = std::sync::OnceLock::new();
    let app = Arc::new(api::App {
        store,
        models,
        key: options.key,
        jobs: tx,
        admission,
        uploads,
        limits: options.limits,
        tokens,
    });
    Ok(api::router(app, options.max_body))
}

/// Serves the API on `listener` until the process ends: HTTP/1.1, each connection with the
/// header timeout of `options.limits` (which closes idle keep-alive connections too), at most
/// [`Limits::connections`] at once, and each request within its deadline and body timeout.
pub async fn serve(listener: tokio::net::TcpListener, options: Options) -> Result<()> {
    let limits = options.limits.clone();
    let router = router(options)?;
    conn::accept(listener, router, &limits).await;
    Ok(())
}
