//! The crate's one error type.

/// An error from outside the crate (a backend's, a cache's), kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while scoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The codec refused a groove or a text.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// A dataset file that the codec cannot read.
    #[error("{path}: {source}")]
    File {
        /// The file, relative to the dataset folder.
        path: String,
        /// The codec's report.
        #[source]
        source: fine_drums_codec::Error,
    },
    /// The dataset crate refused a training file (its error names the file), or a file
    /// could not be written.
    #[error(transparent)]
    Dataset(#[from] fine_drums_dataset::Error),
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A system failed on a piece (outputs before it stay in the cache).
    #[error("{system} on {piece}: {source}")]
    System {
        /// The system.
        system: String,
        /// The piece.
        piece: String,
        /// What went wrong: the backend's error, or the cache's.
        #[source]
        source: BoxError,
    },
    /// Inputs that cannot be compared.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
        /// Why.
        message: String,
    },
}
