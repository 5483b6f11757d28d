//! Language models that play drums: the traits a backend implements, the OpenAI backend,
//! and the pipeline that continues a drum MIDI file.
//!
//! ```
//! use fine_drums_codec::pattern::rock_beat;
//! use fine_drums_dataset::Manifest;
//! use fine_drums_llm::{
//!     BoxFuture, Choice, Complete, Completion, CompletionRequest, ContinueOptions, FinishReason,
//!     Result, Usage, continue_midi,
//! };
//!
//! /// A "model" that always plays the same bar: any backend implements this one method.
//! struct OneBar;
//!
//! impl Complete for OneBar {
//!     fn complete<'a>(&'a self, r: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
//!         Box::pin(async move {
//!             let bar = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n";
//!             let text = format!("\n{}{}", bar.repeat(4), r.stop[0]);
//!             Ok(Completion::new(vec![Choice::new(text, FinishReason::Stop)], Usage::default()))
//!         })
//!     }
//! }
//!
//! # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! // The manifest `prepare` wrote says how prompts were built; here, the defaults.
//! let manifest = Manifest::of_settings(&Default::default());
//! let midi = rock_beat(2, 96.0)?;
//! let mut options = ContinueOptions::new("one-bar");
//! options.bars = 4;
//! let future = continue_midi(&midi, &manifest, &OneBar, &options);
//! let out = tokio::runtime::Builder::new_current_thread().build()?.block_on(future)?;
//! assert_eq!(out.report.bars_kept, 4);
//! assert_eq!(out.groove.bars.len(), 6); // the 2 source bars, unchanged, then 4 new ones
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
//! [`continue_midi`] builds the prompt from the source's last bars through the dataset
//! manifest, exactly as the training files did, asks the backend, decodes leniently,
//! resamples unusable samples, gives the new bars a drummer's velocity and microtiming
//! (the `fine-drums-feel` crate's `Feel`), and returns every bar of the source, unchanged, followed by the new bars, as
//! a MIDI file in the source's tempo and meter, with a [`Report`] that lists each bar the
//! decoder dropped as a [`Dropped`] (request, line, column, reason).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod backend;
mod continuation;
mod error;
pub mod jobs;
pub mod local;
#[cfg(feature = "openai")]
pub mod openai;
mod random;
mod traits;
mod types;

pub use continuation::{Continuation, ContinueOptions, Dropped, Report, continue_midi};
pub use error::{Error, Result};
pub use traits::{BoxFuture, Complete, FineTune};
pub use types::{
    Choice, Completion, CompletionRequest, Endpoint, FinishReason, Job, JobEvent, JobRequest,
    JobStatus, MAX_COMPLETION_BARS, Metrics, Upload, Usage,
};
