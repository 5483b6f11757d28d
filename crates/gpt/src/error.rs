//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while tokenizing, training, saving, loading or sampling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tensor library failed (a shape, a device, an allocation).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The codec refused a format, a text or a groove.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// A training file could not be read (its error names the file and line).
    #[error(transparent)]
    Dataset(#[from] fine_drums_dataset::Error),
    /// The training toolkit refused saved state (an optimiser's state that does not fit).
    /// Its checkpoint and tensor errors come as [`Error::Checkpoint`] and [`Error::Tensor`].
    #[error(transparent)]
    Train(fine_drums_train::Error),
    /// A text given to the tokenizer is not beat-format bars.
    #[error("line {line}: {message}")]
    Text {
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint file is missing, corrupted, cut short, of another version, or does not
    /// match the others of its checkpoint.
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
    /// Training was stopped from outside (see [`Trainer::stop_when`](crate::train::Trainer::stop_when))
    /// after `step` steps; the last checkpoint is kept.
    #[error("training stopped at step {step}")]
    Stopped {
        /// Steps done.
        step: u64,
    },
    /// Sampling was cancelled from outside (see
    /// [`Drummer::continue_bars_until`](crate::Drummer::continue_bars_until)).
    #[error("sampling was cancelled")]
    Cancelled,
    /// A setting or argument is unusable.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
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

impl From<fine_drums_train::Error> for Error {
    fn from(e: fine_drums_train::Error) -> Error {
        match e {
            fine_drums_train::Error::Checkpoint { path, message, source } => {
                Error::Checkpoint { path, message, source }
            }
            fine_drums_train::Error::Tensor(t) => Error::Tensor(t),
            other => Error::Train(other),
        }
    }
}
