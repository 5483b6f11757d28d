//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while scoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The codec refused a groove or a text.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// Inputs that cannot be compared.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
        /// Why.
        message: String,
    },
}
