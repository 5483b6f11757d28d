//! Language models that play drums: the contract every backend implements (the traits, the
//! request and response types, the errors and the job bookkeeping), and nothing that needs
//! HTTP or tensors.
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
//! neither involves HTTP: the crate builds without reqwest, tokio or tensors.
//!
//! # The backends
//!
//! Each backend is a crate of its own: the Markov model (`fine-drums-markov`), the drum
//! GPT (`fine-drums-gpt`), LoRA on a pretrained model (`fine-drums-lora`) and the OpenAI
//! client (`fine-drums-openai`). `fine-drums-backends` picks one by name.
//!
//! # Shared by the backends
//!
//! [`random`] is the seeded generator behind every backend's sampling, and [`sample`] the one
//! sampler (temperature, top-k, top-p) with which the Markov model draws its steps and the
//! drum GPT and LoRA their tokens. [`jobs`] keeps the offline backends' job records.
//!
//! # The pipeline
//!
//! The pipeline that continues a drum MIDI file with any [`Complete`] backend is the
//! `fine-drums-continue` crate's `continue_midi`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
pub mod jobs;
pub mod random;
pub mod sample;
mod traits;
mod types;

pub use error::{Error, Result};
pub use traits::{BoxFuture, Complete, FineTune};
pub use types::{
    Choice, Completion, CompletionRequest, Endpoint, FinishReason, Job, JobEvent, JobRequest,
    JobStatus, MAX_COMPLETION_BARS, Metrics, Steer, Upload, Usage,
};
