//! Cluster mode's errors, and how they become the engine's.

/// Errors of cluster mode.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("cluster log: {0}")]
    Log(String),
    /// The write may have landed: its acknowledgement did not come back in
    /// time (docs/cluster.md, Outcomes).
    #[error(
        "the log's acknowledgement did not come back ({0}); the write may or may not be in the log"
    )]
    Unknown(String),
}

pub(crate) fn nats(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(e.to_string())
}

/// A cluster error as the engine reports it: a write whose outcome is not
/// known stays so (docs/cluster.md, Outcomes).
pub(crate) fn engine_err(e: ClusterError) -> hubsearch_engine::Error {
    match e {
        ClusterError::Unknown(_) => hubsearch_engine::Error::OutcomeUnknown(e.to_string()),
        _ => hubsearch_engine::Error::Cluster(e.to_string()),
    }
}

/// A write that is in the log at `p` but not applied here within the wait:
/// its outcome is not known to this replica yet (read-your-writes).
pub(crate) fn not_applied(what: &str, p: u64, wait_ms: u64) -> hubsearch_engine::Error {
    hubsearch_engine::Error::OutcomeUnknown(format!(
        "the {what} is in the log (position {p}) but this replica has not applied it within {wait_ms} ms; \
         read it back, or retry with the same idempotency key"
    ))
}
