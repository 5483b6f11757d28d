//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when a feel table is read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not JSON of a feel table.
    #[error("not a feel table: {0}")]
    Json(#[from] serde_json::Error),
    /// The table is JSON of the right shape, with numbers that cannot be.
    #[error("invalid feel table: {0}")]
    Table(String),
}
