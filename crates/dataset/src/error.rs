//! The crate's one error type.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a folder of MIDI and a fine-tuning file.
///
/// Each variant names where: the row of `info.csv`, the MIDI file, the line of a JSONL file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A row of an index (`info.csv`) is malformed.
    #[error("{file}, row {row}: {message}")]
    Index {
        /// The index file, as given.
        file: String,
        /// The row, counting the header as row 1 (as a spreadsheet shows it).
        row: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A MIDI file could not be read or encoded.
    #[error("{path}: {source}")]
    Midi {
        /// The file, relative to the dataset folder.
        path: String,
        /// What the codec reported.
        #[source]
        source: fine_drums_codec::Error,
    },
    /// The codec refused a setting or a text.
    #[error(transparent)]
    Codec(#[from] fine_drums_codec::Error),
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON or JSONL text is malformed, or does not hold what it should.
    #[error("{what}, line {line}: {message}")]
    Json {
        /// What was being read: `"manifest"`, `"train.jsonl"`.
        what: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A line of a fine-tuning file is not an example: neither a legacy prompt/completion
    /// line nor a chat line.
    #[error("{file}, line {line}: {source}")]
    Example {
        /// The file, as its reader named it.
        file: String,
        /// The line, from 1.
        line: usize,
        /// The JSON parser's report.
        #[source]
        source: serde_json::Error,
    },
    /// A setting is out of range or the settings contradict each other.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why it is refused.
        message: String,
    },
    /// The cl100k_base tokenizer could not be built.
    #[error("cl100k_base tokenizer: {0}")]
    Tokenizer(String),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { what, message: message.into() }
    }
}
