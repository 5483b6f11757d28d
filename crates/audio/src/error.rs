//! The crate's error.

/// What can go wrong rendering a groove.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is unusable.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The groove is longer than [`MAX_SECONDS`](crate::MAX_SECONDS).
    #[error("bar {bar} ends {seconds:.0} s in, past the limit of {limit} s of audio")]
    TooLong {
        /// The first bar past the limit, from 1.
        bar: usize,
        /// Where it ends, in seconds.
        seconds: f64,
        /// The limit, in seconds.
        limit: u32,
    },
    /// A SoundFont could not be read or played.
    #[error("SoundFont: {0}")]
    SoundFont(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The groove's meter or grid cannot be timed.
    #[error("bar {bar}: {source}")]
    Codec {
        /// The bar, from 1.
        bar: usize,
        /// What the codec said.
        #[source]
        source: fine_drums_codec::Error,
    },
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
