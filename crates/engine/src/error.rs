//! Errors of the engine, split into the user's mistakes and internal failures
//! so the edges can map them (CLI: one line; HTTP: a status and a stable code).

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; the message says how to fix it.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No such model.
    #[error("no model with id {id:?}")]
    ModelNotFound { id: String },
    /// An input file could not be read at all (bad records are not errors:
    /// they are reported in the import report).
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// Something broke inside; details are logged.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Index(#[from] hubsearch_index::Error),
    #[error(transparent)]
    Config(#[from] hubsearch_core::Error),
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }
}
