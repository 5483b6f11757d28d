//! Language models that play drums: the traits a backend implements, and the OpenAI
//! backend.
//!
//! ```
//! use fine_drums_llm::{
//!     BoxFuture, Choice, Complete, Completion, CompletionRequest, FinishReason, Result, Usage,
//! };
//!
//! /// A "model" that always plays the same bar: any backend implements this one method.
//! struct OneBar;
//!
//! impl Complete for OneBar {
//!     fn complete<'a>(&'a self, _: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
//!         Box::pin(async move {
//!             let bar = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n";
//!             let text = format!("\n{}<<<", bar.repeat(4));
//!             Ok(Completion::new(vec![Choice::new(text, FinishReason::Stop)], Usage::default()))
//!         })
//!     }
//! }
//!
//! # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! let request = CompletionRequest::new("one-bar", "KhC..h. Sh..h. Kh..Kh. Sh..h.\n>>>", 400);
//! let future = OneBar.complete(&request);
//! let out = tokio::runtime::Builder::new_current_thread().build()?.block_on(future)?;
//! assert_eq!(out.choices[0].text.lines().filter(|l| l.contains('K')).count(), 4);
//! # Ok(())
//! # }
//! ```
//!
//! # The traits
//!
//! [`Complete`] (one method: a prompt and sampling settings in, samples with their finish
//! reason and token usage out) and [`FineTune`] (upload, create a job, read its status and
//! events, cancel; [`FineTune::wait`] and [`FineTune::fine_tune`] are provided). Both
//! return boxed futures, so they work as generics and as `Box<dyn _>` / `Arc<dyn _>`, and
//! neither involves HTTP: with `--no-default-features` the crate builds without reqwest
//! or tokio.
//!
//! # The OpenAI backend (feature `openai`, on by default)
//!
//! [`openai::OpenAi`] drives OpenAI's API as it is today (chat models through
//! `/v1/chat/completions`, fine-tuned on chat files) and any OpenAI-compatible server by base
//! URL (vLLM, SGLang, llama.cpp, Ollama, and the project's own `serve`, which still fine-tunes
//! `babbage-002` and `davinci-002`, offline), through async-openai with this crate's own
//! retry policy (backoff with jitter on 408, 409, 429, 5xx and connection errors;
//! `Retry-After`, `retry-after-ms` and `x-should-retry` honoured; never on
//! `insufficient_quota` or other 4xx; per-request timeouts). Jobs are created once, even
//! across retries. `babbage-002` and `davinci-002` shut down on 2026-09-28; a refusal shows
//! the service's own message and a hint.
//!
//! ```no_run
//! # #[cfg(feature = "openai")]
//! # async fn run() -> fine_drums_llm::Result<()> {
//! use fine_drums_llm::openai::{Config, OpenAi};
//! use fine_drums_llm::{Complete, CompletionRequest};
//!
//! // OPENAI_API_KEY, which only OpenAI's API requires; here, any compatible server.
//! let config = Config::from_env_for(Some("http://localhost:8000/v1"))?;
//! let model = OpenAi::new(config)?;
//! let out = model.complete(&CompletionRequest::new("ft:babbage-002:org:drums:id", "…>>>", 400)).await?;
//! # Ok(()) }
//! ```
//!
//! # Building a backend from settings
//!
//! [`backend::Settings`] builds the local or the OpenAI backend, for completion or for
//! fine-tuning, from what a command line gives; the examples share it.
//!
//! ```
//! use fine_drums_dataset::Template;
//! use fine_drums_llm::backend::Settings;
//!
//! let settings = Settings::default(); // the offline local backend, model `local`
//! let backend = settings.complete(&Template::default(), settings.local_model()?)?;
//! # let _ = backend;
//! # Ok::<(), fine_drums_llm::Error>(())
//! ```
//!
//! # The pipeline
//!
//! The pipeline that continues a drum MIDI file with any [`Complete`] backend is the
//! `fine-drums-continue` crate's `continue_midi`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod backend;
mod error;
pub mod jobs;
pub mod local;
#[cfg(feature = "openai")]
pub mod openai;
mod random;
mod traits;
mod types;

pub use error::{Error, Result};
pub use traits::{BoxFuture, Complete, FineTune};
pub use types::{
    Choice, Completion, CompletionRequest, Endpoint, FinishReason, Job, JobEvent, JobRequest,
    JobStatus, MAX_COMPLETION_BARS, Metrics, Upload, Usage,
};
