//! Errors of the engine. Each variant says what went wrong; none says how an
//! edge shows it: the server maps every variant to a status and a stable code
//! in one exhaustive match, the CLI prints the message. Sub-errors of the
//! indexes, the embedder and the ledger keep their type (`#[from]`).

use std::path::PathBuf;
use std::sync::Arc;

use hubsearch_vectors::embedder::EmbedError;
use hubsearch_vectors::vector_index::VectorError;

use crate::ledger::LedgerError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query text is longer than `search.max_query_chars`.
    #[error("the query is longer than {max} characters")]
    QueryTooLong { max: usize },
    /// A page size outside 1..=`search.max_limit`.
    #[error("the page size (per_page, limit) must be between 1 and {max}")]
    InvalidLimit { max: usize },
    /// A filter value that cannot match anything sensible.
    #[error("{field} must be a number >= 0")]
    InvalidFilter { field: &'static str },
    /// A `semantic_ratio` out of [0, 1], without hybrid mode, or on a hub
    /// that fuses by reciprocal rank.
    #[error("semantic_ratio {ratio}: {reason}")]
    InvalidSemanticRatio { ratio: f64, reason: &'static str },
    /// Vector or hybrid search on an engine without embeddings.
    #[error("vector search needs embeddings (embedding.model = minilm or hash)")]
    VectorSearchDisabled,
    /// The embedding model could not be loaded.
    #[error("{0}")]
    EmbeddingUnavailable(Arc<EmbedError>),
    /// An idempotency key that is empty or too long.
    #[error("an idempotency key has 1 to {max} characters")]
    InvalidIdempotencyKey { max: usize },
    /// A paid call's amount out of range.
    #[error("amount_usd must be between 0 and {max}")]
    InvalidAmount { max: f64 },
    /// A paid call's origin that is not a recorded page and a rank from 1.
    #[error(
        "page_id and rank go together: page_id a recorded page (a search's page_id), rank >= 1"
    )]
    InvalidCallOrigin,
    /// A paid call naming a page this hub never recorded.
    #[error("no recorded page {page} (page_id is a search's page_id)")]
    PageNotFound { page: u64 },
    /// A published id that breaks the id rule (`catalog::is_valid_id`).
    #[error("{id:?} is not a model id: `name` or `namespace/name`, each 1 to 96 of letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit")]
    InvalidId { id: String },
    /// Publishing an id that exists.
    #[error("{id} exists; use PUT /v1/models/{id} to replace it")]
    ModelExists { id: String },
    /// No such model.
    #[error("no model with id {id:?}")]
    ModelNotFound { id: String },
    /// A conditional write (`If-Match`) whose card is not (or no longer)
    /// the version the client named.
    #[error("{id}: the card is not the version If-Match names (read it again: GET /v1/models/{id} gives its ETag)")]
    PreconditionFailed { id: String },
    /// An `If-Match` header that is neither `*` nor entity tags.
    #[error("If-Match: {0}")]
    InvalidPrecondition(String),
    /// An input file could not be read at all (bad records are not errors:
    /// they are reported in the import report).
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// A file or directory operation of the engine's own failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Cluster mode: the log could not take or give back a write (it did
    /// not land).
    #[error("cluster: {0}")]
    Cluster(String),
    /// Cluster mode: a write may have landed, or landed and is not yet
    /// applied here: the client learns its outcome by retrying with the
    /// same idempotency key, or by reading it back.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// An embedding worker thread panicked.
    #[error("an embedding worker panicked")]
    WorkerPanicked,
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Vectors(#[from] VectorError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// An API key change that cannot be made (no such key, ambiguous,
    /// revoked already, the store unwritable).
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Index(#[from] hubsearch_index::Error),
    #[error(transparent)]
    Config(#[from] hubsearch_core::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
