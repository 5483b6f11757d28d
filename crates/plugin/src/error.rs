//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the plugin from capturing, generating or saving a phrase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model could not be loaded (a folder that is not a drum GPT model, or a damaged one).
    #[error("the model {model}: {source}")]
    Model {
        /// The model: its folder, or the built-in one's name.
        model: String,
        /// What the drum GPT said.
        #[source]
        source: fine_drums_gpt::Error,
    },
    /// The continuation failed: no usable bar, or a backend error.
    #[error("continuing bars {first}-{last} of the capture: {source}")]
    Continue {
        /// The first captured bar of the prompt, as the host numbers bars (from 0).
        first: i64,
        /// The last captured bar of the prompt.
        last: i64,
        /// What the pipeline said.
        #[source]
        source: fine_drums_continue::Error,
    },
    /// The captured bars could not be written as MIDI for the prompt.
    #[error("captured bar {bar}: {source}")]
    Capture {
        /// The captured bar, as the host numbers bars (from 0).
        bar: i64,
        /// What the codec said.
        #[source]
        source: fine_drums_codec::Error,
    },
    /// Nothing was captured before the bar asked to continue from.
    #[error("nothing captured before bar {bar}: play (or loop) some bars of drums first")]
    NothingCaptured {
        /// The bar the continuation would start at.
        bar: i64,
    },
    /// A setting is out of range.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A phrase could not be written as a MIDI file.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written (the error names it).
    #[error(transparent)]
    Dataset(#[from] fine_drums_dataset::Error),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { what, message: message.into() }
    }
}
