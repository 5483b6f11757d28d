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
    /// A backend could not be built.
    #[error(transparent)]
    Backend(#[from] fine_drums_backends::Error),
    /// The request's client went away, or its deadline passed, and its work stopped.
    #[error("the request was cancelled")]
    Cancelled,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A path as a client may see it: its last two parts (`jobs/ftjob-….json`), never where the
/// data folder is on the server.
fn public_path(path: &std::path::Path) -> String {
    let parts: Vec<_> = path.components().rev().take(2).collect();
    parts.iter().rev().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

impl Error {
    /// The message a client sees: the error, with any path of the data folder shortened to
    /// its last two parts. The server's own log keeps the whole error.
    pub fn public(&self) -> String {
        match self {
            Error::Io { path, source } => format!("{}: {source}", public_path(path)),
            Error::Write { path, message } => {
                format!("{}: could not write: {message}", public_path(path))
            }
            Error::Corrupt { path, line, .. } => format!(
                "{}{}: not a record of this server",
                public_path(path),
                line.map_or(String::new(), |l| format!(", line {l}"))
            ),
            Error::Model(fine_drums_llm::Error::Model { path, message, .. }) => {
                format!("{}: {message}", public_path(std::path::Path::new(path)))
            }
            Error::Gpt(fine_drums_gpt::Error::Checkpoint { path, message, .. }) => {
                format!("{}: {message}", public_path(std::path::Path::new(path)))
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn invalid(param: Option<&str>, message: impl Into<String>) -> Error {
        Error::Invalid { param: param.map(String::from), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_sees_no_path_of_the_server() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::io(std::path::Path::new("/srv/secret/data/jobs/ftjob-1.json"))(io);
        assert!(e.to_string().contains("/srv/secret"), "the operator's log keeps it: {e}");
        assert_eq!(e.public(), "jobs/ftjob-1.json: denied");
        let model = Error::Model(fine_drums_llm::Error::model("/srv/secret/models/m.fdlm", "bad"));
        assert_eq!(model.public(), "models/m.fdlm: bad");
        let invalid = Error::invalid(Some("n"), "n must be a number from 1 to 128");
        assert_eq!(invalid.public(), "n must be a number from 1 to 128");
        assert!(matches!(invalid, Error::Invalid { param: Some(ref p), .. } if p == "n"));
    }
}
