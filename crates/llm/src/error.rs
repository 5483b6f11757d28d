//! The crate's one error type.

use std::time::Duration;

/// An error from a dependency, kept as the source of one of this crate's errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a model or continuing a groove.
///
/// No variant ever holds an API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error. `message` is the service's own words.
    #[error("{}{}", api_summary(*.status, .code.as_deref(), .message, *.attempts), hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// The service's error code (`model_not_available`, `insufficient_quota`, …).
        code: Option<String>,
        /// The service's message, or the start of a body that was not an error object.
        message: String,
        /// Requests sent, counting retries.
        attempts: u32,
        /// What to try instead, when the refusal is one this crate knows.
        hint: Option<String>,
    },
    /// No answer within the per-request timeout, on every attempt.
    #[error("{url}: no answer within {after:?} ({attempts} attempts)")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The per-request timeout.
        after: Duration,
        /// Requests sent.
        attempts: u32,
    },
    /// The connection failed on every attempt.
    #[error("{url}: connection failed ({attempts} attempts)")]
    Connection {
        /// The endpoint (without its query string or `user:password@`).
        url: String,
        /// Requests sent.
        attempts: u32,
        /// What the HTTP client reported on the last attempt.
        #[source]
        source: BoxError,
    },
    /// A successful answer whose body is not what the API documents.
    #[error("malformed {what} from the service: {message}; body starts {body:?}")]
    Decode {
        /// What was being read.
        what: &'static str,
        /// The parser's complaint.
        message: String,
        /// The first 200 characters of the body.
        body: String,
    },
    /// A fine-tuning job ended in `failed`.
    #[error("fine-tuning job {id} failed: {message}")]
    JobFailed {
        /// The job.
        id: String,
        /// The service's reason.
        message: String,
    },
    /// A fine-tuning job was cancelled.
    #[error("fine-tuning job {id} was cancelled")]
    JobCancelled {
        /// The job.
        id: String,
    },
    /// A fine-tuning job stayed paused, or in a status this crate does not know, for longer
    /// than the backend's patience; waiting further could be endless.
    #[error(
        "fine-tuning job {id} has been {status:?} for {} s: {}",
        waited.as_secs(),
        if status == "paused" {
            "the service paused it; resume it there, then wait for it again"
        } else {
            "a status this client does not know; look at the job on the service"
        }
    )]
    JobStuck {
        /// The job.
        id: String,
        /// The status, as the service wrote it.
        status: String,
        /// How long it has been in it.
        waited: std::time::Duration,
    },
    /// No API key was given or found in `OPENAI_API_KEY`.
    #[error(
        "no OpenAI API key: set OPENAI_API_KEY or pass one explicitly (or use the offline local backend, which needs none)"
    )]
    MissingKey,
    /// A backend's own error that no other variant describes (a tensor operation, training
    /// stopped, …), kept whole as the source.
    #[error("{backend}: {source}")]
    Backend {
        /// The backend (`gpt`, `lora`, …).
        backend: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// A setting or argument is unusable.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The codec refused a MIDI file or a text.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// The dataset crate refused a manifest or a file.
    #[error(transparent)]
    Dataset(#[from] fine_drums_dataset::Error),
    /// A model file could not be read or written, or is of another version.
    #[error("{path}: {message}")]
    Model {
        /// The file (and line, for training files).
        path: String,
        /// What is wrong.
        message: String,
        /// The error behind it: the file system's, or the JSON parser's.
        #[source]
        source: Option<BoxError>,
    },
}

fn api_summary(status: u16, code: Option<&str>, message: &str, attempts: u32) -> String {
    let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
    let tries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
    format!("the service refused{tries}: HTTP {status}{code}: {message}")
}

impl Error {
    /// A model file's error with nothing behind it.
    pub fn model(path: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Model { path: path.into(), message: message.into(), source: None }
    }

    /// A model file's error caused by `source`.
    pub fn model_from(
        path: impl Into<String>,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Model { path: path.into(), message: message.into(), source: Some(Box::new(source)) }
    }

    /// An invalid `what` (a setting, an argument, a request field): `message` says why.
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { what, message: message.into() }
    }
}
