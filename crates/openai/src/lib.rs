//! The OpenAI backend of fine_drums: OpenAI's API as it is today, and any OpenAI-compatible
//! server (vLLM, SGLang, llama.cpp's server, Ollama, the project's own `serve`) by base URL.
//!
//! ```no_run
//! # #[cfg(feature = "client")]
//! # async fn run() -> fine_drums_llm::Result<()> {
//! use fine_drums_llm::{Complete, CompletionRequest};
//! use fine_drums_openai::{Config, OpenAi};
//!
//! // OPENAI_API_KEY, which only OpenAI's API requires; here, any compatible server.
//! let config = Config::from_env_for(Some("http://localhost:8000/v1"))?;
//! let model = OpenAi::new(config)?;
//! let request = CompletionRequest::new("ft:babbage-002:org:drums:id", "Kh.. >>>", 400);
//! let out = model.complete(&request).await?;
//! println!("{}", out.choices[0].text);
//! # Ok(()) }
//! ```
//!
//! [`OpenAi`] implements the contract of `fine-drums-llm`: [`Complete`] and [`FineTune`], and
//! its errors are that crate's [`Error`](fine_drums_llm::Error) (a refusal keeps the
//! service's status, code and message, and a hint).
//!
//! # The modules
//!
//! Everything but [`wire`] is the feature `client` (on by default). Without it the crate is
//! only the wire types, with serde: the project's server reads its requests with them and
//! compiles no HTTP client.
//!
//! - [`config`]: the base URL, the key (its `Debug` is redacted, and it is withheld from plain
//!   `http://` to another host), the [`RetryPolicy`], the endpoint, and what this crate knows
//!   of OpenAI's models ([`BaseModel`], [`is_chat_model`], [`CHAT_FINE_TUNABLE`]).
//! - [`wire`]: the API's JSON as typed structs that serialize and deserialize both. The client
//!   writes its requests and reads its responses with them; `serve` reads its requests with
//!   the same structs.
//! - Completion ([`completion_body`], [`chat_body`], [`scoring_body`]) and fine-tuning
//!   ([`job_body`]): the bodies this client sends, and the [`Complete`] and [`FineTune`]
//!   implementations.
//! - [`read_completion`], [`read_job`] and [`read_error`]: response bodies as the client reads
//!   them, for tests and the fuzz target.
//!
//! # How it talks
//!
//! Requests go through async-openai 0.43 with this crate's [`RetryPolicy`] as its HTTP
//! service: backoff with jitter on 408, 409, 429, 5xx and connection errors; `Retry-After`,
//! `retry-after-ms` and `x-should-retry` honoured; never on `insufficient_quota` or other 4xx;
//! per-request timeouts. Fine-tuning jobs are created from this crate's own body, because the
//! legacy models take top-level `hyperparameters` while async-openai's request type only has
//! `method`, and they are created once, even across retries. Jobs, events and files are read
//! into this crate's own lenient types (async-openai's checkpoint-metrics type, for one,
//! rejects OpenAI's documented responses).
//!
//! **The models, as of December 2026.** `babbage-002` and `davinci-002` shut down on
//! 2026-09-28, and every model fine-tuned from them on 2026-10-23. OpenAI fine-tunes only
//! chat models ([`CHAT_FINE_TUNABLE`]), on chat files, for organisations still eligible, and
//! closes self-serve fine-tuning to everyone on 2027-01-06. A chat model is completed through
//! `/v1/chat/completions` ([`Endpoint`]); the project's `serve` still fine-tunes and serves
//! the legacy names, offline. When a service refuses, the error carries its own message and a
//! hint.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod complete;
#[cfg(feature = "client")]
pub mod config;
#[cfg(feature = "client")]
mod fine_tune;
#[cfg(feature = "client")]
mod retry;
pub mod wire;

#[cfg(feature = "client")]
#[doc(no_inline)]
pub use fine_drums_llm::{Complete, Endpoint, FineTune};

#[cfg(feature = "client")]
pub use client::{OpenAi, read_completion, read_error, read_job};
#[cfg(feature = "client")]
pub use complete::{chat_body, completion_body, scoring_body};
#[cfg(feature = "client")]
pub use config::{
    ApiKey, BaseModel, CHAT_FINE_TUNABLE, ChatTemplate, Config, OPENAI_BASE_URL, is_chat_model,
    is_openai, key_safe_for, redact,
};
#[cfg(feature = "client")]
pub use fine_tune::{CLIENT_ID, job_body};
#[cfg(feature = "client")]
pub use retry::RetryPolicy;
