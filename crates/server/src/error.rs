//! Errors at the HTTP edge: a JSON body `{"error": {"code", "message"}}`,
//! the right status, `Retry-After` on 503. Every code the API answers with
//! is one row of [`codes!`] (code, status, meaning); README's table of error
//! codes is checked against it by a test. Engine errors map to codes in one
//! exhaustive match ([`From<EngineError>`]); internal details are logged,
//! never sent.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hubsearch_engine::keys::KeyError;
use hubsearch_engine::{Error as EngineError, IndexError};
use hubsearch_ledger::transparency::ProofError;
use hubsearch_ledger::LedgerError;

macro_rules! codes {
    ($( $variant:ident => $code:literal, $status:ident, $meaning:literal; )+) => {
        /// A stable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $( #[doc = $meaning] $variant, )+
        }

        impl Code {
            /// Every code, in the order README lists them.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The code as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)+ }
            }

            /// The HTTP status that goes with it.
            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status,)+ }
            }

            /// When it is answered.
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$variant => $meaning,)+ }
            }
        }
    };
}

codes! {
    InvalidParameter => "invalid_parameter", BAD_REQUEST, "an unknown query parameter, or a value of the wrong type";
    InvalidJson => "invalid_json", BAD_REQUEST, "the body is not the JSON the route expects";
    InvalidPath => "invalid_path", BAD_REQUEST, "a path segment that cannot be read (e.g. not UTF-8 once decoded)";
    InvalidPerPage => "invalid_per_page", BAD_REQUEST, "per_page (or limit) outside 1..=search.max_limit";
    InvalidPage => "invalid_page", BAD_REQUEST, "page is 0 (pages start at 1)";
    InvalidMode => "invalid_mode", BAD_REQUEST, "mode is not text, vector or hybrid";
    UnknownPolicy => "unknown_policy", BAD_REQUEST, "policy is not one of the ranking policies";
    InvalidFilter => "invalid_filter", BAD_REQUEST, "a filter value that cannot be used (e.g. a negative price)";
    InvalidSort => "invalid_sort", BAD_REQUEST, "an unknown sort order";
    InvalidCursor => "invalid_cursor", BAD_REQUEST, "a cursor this server did not give out";
    QueryTooLong => "query_too_long", BAD_REQUEST, "the query is longer than search.max_query_chars";
    InvalidQuery => "invalid_query", BAD_REQUEST, "the query cannot be searched";
    InvalidCard => "invalid_card", BAD_REQUEST, "a published card is not valid";
    IdMismatch => "id_mismatch", BAD_REQUEST, "the card's id differs from the id in the path";
    InvalidId => "invalid_id", BAD_REQUEST, "a published id that is not `name` or `namespace/name` of letters, digits, `.`, `_`, `-`";
    ReadOnlyField => "read_only_field", BAD_REQUEST, "a builder's card sets a field only the hub sets (downloads, likes, paid_calls, dates)";
    InvalidAmount => "invalid_amount", BAD_REQUEST, "a paid call's amount is not a finite number >= 0";
    InvalidIdempotencyKey => "invalid_idempotency_key", BAD_REQUEST, "an idempotency key that is empty or too long";
    InvalidInput => "invalid_input", BAD_REQUEST, "an input file cannot be read";
    VectorSearchDisabled => "vector_search_disabled", BAD_REQUEST, "vector or hybrid search on a hub without embeddings";
    InvalidRange => "invalid_range", BAD_REQUEST, "call log: a consistency proof from a tree of 0 entries";
    Unauthorized => "unauthorized", UNAUTHORIZED, "no valid API key";
    KeyRevoked => "key_revoked", UNAUTHORIZED, "the API key was revoked (hubsearch keys revoke or rotate)";
    Forbidden => "forbidden", FORBIDDEN, "the key may not do this";
    NotFound => "not_found", NOT_FOUND, "no such route";
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED, "the route exists but not with this method";
    ModelNotFound => "model_not_found", NOT_FOUND, "no model with this id (Hugging Face API: header X-Error-Code: RepoNotFound)";
    RevisionNotFound => "revision_not_found", NOT_FOUND, "Hugging Face API: a revision other than main (one revision per model; header X-Error-Code: RevisionNotFound)";
    BuilderNotFound => "builder_not_found", NOT_FOUND, "no builder with this name";
    LeafBeyondTree => "leaf_beyond_tree", NOT_FOUND, "call log: no entry at leaf_index (or start) in a tree of tree_size entries";
    TreeSizeBeyondHead => "tree_size_beyond_head", NOT_FOUND, "call log: no tree of this size yet (larger than the log's current signed head)";
    NoProof => "no_proof", NOT_FOUND, "call log: no consistency proof from a larger tree to a smaller one (first > second)";
    PageNotFound => "page_not_found", NOT_FOUND, "a paid call's page_id names no page this hub recorded";
    KeyNotFound => "key_not_found", NOT_FOUND, "no API key starts with these characters (GET /v1/keys lists them)";
    ModelExists => "model_exists", CONFLICT, "publishing an id that exists (use PUT to replace)";
    PreconditionFailed => "precondition_failed", PRECONDITION_FAILED, "a PUT or DELETE with If-Match whose card is not (or no longer) the version named: GET it again for its ETag";
    KeyAmbiguous => "key_ambiguous", CONFLICT, "more than one API key starts with these characters: give more of the key";
    KeyInUse => "key_in_use", CONFLICT, "revoking or rotating the key the request is made with (make another admin key and use it)";
    KeyRevokedAlready => "key_revoked_already", CONFLICT, "revoking or rotating a key that is revoked";
    IdempotencyKeyReused => "idempotency_key_reused", CONFLICT, "an idempotency key sent again with another model or amount";
    BodyTooLarge => "body_too_large", PAYLOAD_TOO_LARGE, "the body is over server.max_body_bytes";
    BodyTimeout => "body_timeout", REQUEST_TIMEOUT, "the request body did not arrive within server.body_read_timeout_ms (the connection is closed)";
    UriTooLong => "uri_too_long", URI_TOO_LONG, "the request URI is over server.max_uri_bytes";
    HeadersTooLarge => "headers_too_large", REQUEST_HEADER_FIELDS_TOO_LARGE, "the request headers are over server.max_header_bytes";
    RateLimited => "rate_limited", TOO_MANY_REQUESTS, "over server.rate_limit_per_minute for this client (Retry-After says when to retry)";
    Overloaded => "overloaded", SERVICE_UNAVAILABLE, "no search slot within server.queue_timeout_ms (Retry-After)";
    SearchTimeout => "search_timeout", SERVICE_UNAVAILABLE, "the search ran past server.search_timeout_ms (Retry-After)";
    LedgerFailing => "ledger_failing", SERVICE_UNAVAILABLE, "/readyz: the exposure ledger cannot write since a commit failed (restart)";
    WriteFailing => "write_failing", SERVICE_UNAVAILABLE, "/readyz: the last write failed (its error in the message); ready again once a write succeeds";
    InsufficientStorage => "insufficient_storage", INSUFFICIENT_STORAGE, "a write failed for lack of disk space (free some, then retry)";
    ClusterUnavailable => "cluster_unavailable", SERVICE_UNAVAILABLE, "cluster mode: the log (NATS JetStream) did not take the write, or this replica stopped applying it (Retry-After)";
    OutcomeUnknown => "outcome_unknown", SERVICE_UNAVAILABLE, "cluster mode: the write may be in the log (its acknowledgement timed out) or is in it and not yet applied here: retry with the same idempotency key, or read it back (Retry-After)";
    EmbeddingUnavailable => "embedding_unavailable", BAD_REQUEST, "the embedding model cannot be loaded (see the message)";
    Internal => "internal", INTERNAL_SERVER_ERROR, "something broke inside; the server log says what";
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            Code::Unauthorized,
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Forbidden, message)
    }
    pub fn overloaded(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Overloaded, message)
    }
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {detail}");
        ApiError::new(Code::Internal, "internal error; see the server log")
    }
    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

/// Whether an error comes from a full disk (ENOSPC, or EDQUOT: a quota),
/// anywhere in its chain of sources or, for errors that keep only the text
/// of an I/O error (tantivy's, redb's), in its message.
pub fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull
                || matches!(io.raw_os_error(), Some(28) | Some(122))
            {
                return true;
            }
        }
        let text = err.to_string();
        if text.contains("No space left on device")
            || text.contains("os error 28")
            || text.contains("Disk quota exceeded")
        {
            return true;
        }
        next = err.source();
    }
    false
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        ApiError::from(EngineError::Keys(e))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        if is_storage_full(&e) {
            return ApiError::new(
                Code::InsufficientStorage,
                format!("the write failed for lack of disk space: {e}"),
            );
        }
        let code = match &e {
            EngineError::QueryTooLong { .. } => Code::QueryTooLong,
            EngineError::InvalidLimit { .. } => Code::InvalidPerPage,
            EngineError::InvalidFilter { .. } => Code::InvalidFilter,
            EngineError::InvalidSemanticRatio { .. } => Code::InvalidParameter,
            EngineError::VectorSearchDisabled => Code::VectorSearchDisabled,
            EngineError::EmbeddingUnavailable(_) => Code::EmbeddingUnavailable,
            EngineError::ModelNotFound { .. } => Code::ModelNotFound,
            EngineError::InvalidIdempotencyKey { .. } => Code::InvalidIdempotencyKey,
            EngineError::InvalidAmount { .. } => Code::InvalidAmount,
            EngineError::InvalidCallOrigin => Code::InvalidParameter,
            EngineError::PageNotFound { .. } => Code::PageNotFound,
            EngineError::InvalidId { .. } => Code::InvalidId,
            EngineError::ModelExists { .. } => Code::ModelExists,
            EngineError::PreconditionFailed { .. } => Code::PreconditionFailed,
            EngineError::InvalidPrecondition(_) => Code::InvalidParameter,
            EngineError::Input { .. } => Code::InvalidInput,
            EngineError::Index(IndexError::InvalidQuery(_)) => Code::InvalidQuery,
            EngineError::Ledger(LedgerError::KeyReused { .. }) => Code::IdempotencyKeyReused,
            EngineError::Ledger(LedgerError::Proof(p)) => match p {
                ProofError::LeafBeyondTree { .. } => Code::LeafBeyondTree,
                ProofError::SizeBeyondHead { .. } => Code::TreeSizeBeyondHead,
                ProofError::InvalidRange(_) => Code::InvalidRange,
                ProofError::NoProof { .. } => Code::NoProof,
            },
            EngineError::Cluster(_) => Code::ClusterUnavailable,
            EngineError::OutcomeUnknown(_) => Code::OutcomeUnknown,
            EngineError::Keys(k) => match k {
                KeyError::NoSuchKey(_) => Code::KeyNotFound,
                KeyError::Ambiguous { .. } => Code::KeyAmbiguous,
                KeyError::AlreadyRevoked(_) => Code::KeyRevokedAlready,
                KeyError::Io(_) => return ApiError::internal(e),
            },
            EngineError::Index(_)
            | EngineError::Io { .. }
            | EngineError::WorkerPanicked
            | EngineError::Embed(_)
            | EngineError::Vectors(_)
            | EngineError::Ledger(_)
            | EngineError::Config(_) => return ApiError::internal(e),
        };
        ApiError::new(code, e.to_string())
    }
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code (the document's `ErrorCode` lists them).
    #[schema(schema_with = error_code_schema)]
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

/// The codes as an OpenAPI enum, from the [`codes!`] table.
fn error_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
        .description(Some(
            Code::ALL
                .iter()
                .map(|c| {
                    format!(
                        "`{}` ({}): {}",
                        c.as_str(),
                        c.status().as_u16(),
                        c.meaning()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ))
        .build()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_string(),
                message: self.message,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, 1.into());
        }
        // What huggingface_hub reads to raise RepositoryNotFoundError (so
        // repo_exists() answers False) and RevisionNotFoundError.
        let hf = match self.code {
            Code::ModelNotFound => Some("RepoNotFound"),
            Code::RevisionNotFound => Some("RevisionNotFound"),
            _ => None,
        };
        if let Some(v) = hf {
            resp.headers_mut()
                .insert("x-error-code", axum::http::HeaderValue::from_static(v));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ENOSPC (writing to /dev/full) inside an engine error answers
    /// 507 insufficient_storage; another I/O error stays a 500.
    #[test]
    fn a_full_disk_is_507() {
        use std::io::Write;
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .and_then(|mut f| f.write_all(b"x").and_then(|_| f.flush()))
            .expect_err("/dev/full takes no bytes");
        assert_eq!(full.raw_os_error(), Some(28));
        let e = EngineError::Io {
            path: "/dev/full".into(),
            source: full,
        };
        let api = ApiError::from(e);
        assert_eq!(api.code.as_str(), "insufficient_storage");
        assert_eq!(api.status().as_u16(), 507);
        let missing = std::fs::File::open("/nonexistent/x").unwrap_err();
        let api = ApiError::from(EngineError::Io {
            path: "/nonexistent/x".into(),
            source: missing,
        });
        assert_eq!(api.status().as_u16(), 500);
    }

    /// README's table of error codes, row for row, from [`Code::ALL`].
    fn table() -> String {
        let mut t = String::from("| code | status | when |\n|---|---|---|\n");
        for c in Code::ALL {
            t += &format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status().as_u16(),
                c.meaning()
            );
        }
        t
    }

    #[test]
    fn readme_lists_every_error_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        assert!(
            readme.contains(&table()),
            "README's error code table differs from the server's; it should read:\n{}",
            table()
        );
        let mut seen = std::collections::HashSet::new();
        assert!(
            Code::ALL.iter().all(|c| seen.insert(c.as_str())),
            "a code twice"
        );
    }
}
