//! The crate's error type.

use std::path::PathBuf;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder of the data folder could not be read or made.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be written.
    #[error("{}: could not write: {message}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A record of the data folder is not what the server wrote.
    #[error("{}{}: not a record of this server: {source}", path.display(), line.map_or(String::new(), |l| format!(", line {l}")))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line, for a job's event log.
        line: Option<usize>,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// No such file, job or model.
    #[error("no {what} {id:?}")]
    NotFound {
        /// `file`, `job` or `model`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A request the server cannot act on.
    #[error("{message}")]
    Invalid {
        /// The field at fault, if one is.
        param: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A backend failed.
    #[error(transparent)]
    Model(#[from] fine_drums_llm::Error),
    /// The drum GPT failed.
    #[error(transparent)]
    Gpt(#[from] fine_drums_gpt::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn invalid(param: Option<&str>, message: impl Into<String>) -> Error {
        Error::Invalid { param: param.map(String::from), message: message.into() }
    }
}
