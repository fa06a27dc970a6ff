//! Errors of the core crate: user mistakes (a bad record, a bad config value)
//! are kept apart from internal failures so the edges (CLI, HTTP) can map them.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a record or a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record is not valid JSON/YAML.
    #[error("invalid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    /// A required field is absent or empty.
    #[error("missing field `{field}`")]
    MissingField { field: &'static str },
    /// A field has the wrong JSON type.
    #[error("field `{field}`: expected {expected}, got {got}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    /// A field's value is out of range or malformed.
    #[error("field `{field}`: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    /// A record or field is larger than anything a real card needs.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// The configuration file or an override is wrong.
    #[error("config {origin}: {message}")]
    Config { origin: String, message: String },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
