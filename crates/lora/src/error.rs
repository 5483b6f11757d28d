//! The crate's one error type.

use std::path::{Path, PathBuf};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a pretrained model, training an adapter,
/// saving or loading it, and generating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tensor library failed (a shape, a device, an allocation).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The codec refused a text.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// A file of a model folder or an adapter is missing, unreadable, malformed, or does not
    /// fit the others (a config naming an architecture this crate does not run, a weight of
    /// the wrong shape, a checksum that does not match).
    #[error("{}: {message}", path.display())]
    File {
        /// The file (or folder).
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// The error behind it (the file system's, the JSON, safetensors or tokenizer parser's).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The training toolkit refused saved state (an optimiser's state that does not fit).
    /// Its checkpoint and tensor errors come as [`Error::File`] and [`Error::Tensor`].
    #[error(transparent)]
    Train(fine_drums_train::Error),
    /// A training file could not be read (its error names the file and the line).
    #[error(transparent)]
    Dataset(#[from] fine_drums_dataset::Error),
    /// Training was stopped from outside after `step` steps; the last checkpoint is kept.
    #[error("training stopped at step {step}")]
    Stopped {
        /// Steps done.
        step: u64,
    },
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

    pub(crate) fn file(path: &Path, message: impl Into<String>) -> Error {
        Error::File { path: path.to_path_buf(), message: message.into(), source: None }
    }

    pub(crate) fn file_because(
        path: &Path,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::File {
            path: path.to_path_buf(),
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl From<fine_drums_train::Error> for Error {
    fn from(e: fine_drums_train::Error) -> Error {
        match e {
            fine_drums_train::Error::Checkpoint { path, message, source } => {
                Error::File { path: path.into(), message, source }
            }
            fine_drums_train::Error::Tensor(t) => Error::Tensor(t),
            other => Error::Train(other),
        }
    }
}
