//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while saving, reading or restoring training state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tensor library failed (a shape, a device, an allocation).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A checkpoint file is missing, corrupted, cut short, or does not match the others of
    /// its checkpoint; or it could not be written.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
        /// The error behind it (the file system's, the JSON or safetensors parser's).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Saved state that does not fit what it is restored into.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was restored.
        what: &'static str,
        /// Why it does not fit.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { what, message: message.into() }
    }

    pub(crate) fn checkpoint(
        path: &std::path::Path,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Checkpoint { path: path.display().to_string(), message: message.into(), source }
    }
}
