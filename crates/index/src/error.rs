//! Errors of the index layer.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong opening, writing or reading an index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No index where one was expected.
    #[error(
        "no index at {path} (build one with `hubsearch import FILE` or `hubsearch index FILE`)"
    )]
    NotFound { path: PathBuf },
    /// The index was written by a hubsearch with another schema.
    #[error(
        "the index at {path} was built by another version of hubsearch (its fields differ from this one's): rebuild it with `hubsearch --index <dir> index FILE...`"
    )]
    OldSchema { path: PathBuf },
    /// Another process holds the index writer.
    #[error("the index at {path} is being written by another process: {message}")]
    Locked { path: PathBuf, message: String },
    /// A stored card could not be read back.
    #[error("stored card is corrupt: {0}")]
    Corrupt(String),
    /// A user-supplied value cannot be used in a query.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tantivy(#[from] tantivy::TantivyError),
}
