//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a continuation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend failed (the API's refusal, a timeout, a model that cannot be loaded).
    #[error(transparent)]
    Backend(#[from] fine_drums_llm::Error),
    /// The codec refused the source MIDI file, or the groove to write.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// The manifest could not build the prompt (bars out of range, a template's fault).
    #[error(transparent)]
    Dataset(#[from] fine_drums_dataset::Error),
    /// No sample gave a usable bar, after every allowed attempt.
    #[error("no usable continuation after {attempts} attempts: {}", reasons.join("; "))]
    Unusable {
        /// Requests made.
        attempts: u32,
        /// Why each sample was refused.
        reasons: Vec<String>,
    },
    /// An option is unusable.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The option.
        what: &'static str,
        /// Why.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { what, message: message.into() }
    }
}
