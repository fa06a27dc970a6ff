//! `GET /v1/transparency/*`: the call log (docs/transparency.md). Public
//! reads, no key, admitted like other reads: the log's key, a signed tree
//! head, inclusion and consistency proofs (RFC 9162 2.1.3 and 2.1.4), and
//! entries.

use axum::extract::State;
use axum::Json;
use hubsearch_ledger::transparency::{
    ConsistencyProof, Entries, InclusionProof, PublicKey, SignedHead,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::{AppState, Work};

/// The call log's Ed25519 public key.
#[utoipa::path(get, path = "/v1/transparency/key", tag = "transparency",
    responses((status = 200, description = "The key heads are signed with", body = PublicKey)))]
pub async fn key(State(state): State<AppState>) -> Result<Json<PublicKey>, ApiError> {
    state
        .run_blocking(Work::Read, |e| Ok(Json(e.log_key())))
        .await
}

/// A signed tree head: every call acknowledged before this request is in
/// the tree it signs.
#[utoipa::path(get, path = "/v1/transparency/sth", tag = "transparency",
    responses((status = 200, description = "The current signed tree head", body = SignedHead)))]
pub async fn head(State(state): State<AppState>) -> Result<Json<SignedHead>, ApiError> {
    state
        .run_blocking(Work::Read, |e| Ok(Json(e.log_head())))
        .await
}

/// `GET /v1/transparency/proof`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofParams {
    /// The entry (0-based).
    pub leaf_index: u64,
    /// The size of the tree to prove it in (at most the current head's).
    pub tree_size: u64,
}

/// The audit path of an entry in a tree (RFC 9162 2.1.3).
#[utoipa::path(get, path = "/v1/transparency/proof", tag = "transparency",
    params(ProofParams),
    responses(
        (status = 200, description = "The inclusion proof", body = InclusionProof),
        (status = 400, description = "invalid_parameter", body = ErrorBody),
        (status = 404, description = "leaf_beyond_tree (no such entry in that tree), tree_size_beyond_head (no tree of that size yet)", body = ErrorBody),
    ))]
pub async fn proof(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ProofParams>,
) -> Result<Json<InclusionProof>, ApiError> {
    state
        .run_blocking(Work::Read, move |e| {
            Ok(Json(e.log_inclusion(p.leaf_index, p.tree_size)?))
        })
        .await
}

/// `GET /v1/transparency/consistency`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The earlier tree size (1..=second; larger than second is a 404
    /// no_proof).
    #[param(minimum = 1)]
    pub first: u64,
    /// The later tree size (at most the current head's).
    pub second: u64,
}

/// The consistency proof between two tree sizes (RFC 9162 2.1.4).
#[utoipa::path(get, path = "/v1/transparency/consistency", tag = "transparency",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The consistency proof", body = ConsistencyProof),
        (status = 400, description = "invalid_range (first 0), invalid_parameter", body = ErrorBody),
        (status = 404, description = "tree_size_beyond_head (no tree of that size yet), no_proof (first > second)", body = ErrorBody),
    ))]
pub async fn consistency(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    state
        .run_blocking(Work::Read, move |e| {
            Ok(Json(e.log_consistency(p.first, p.second)?))
        })
        .await
}

/// `GET /v1/transparency/entries`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntriesParams {
    /// The first entry (0-based).
    pub start: u64,
    /// One past the last. The answer is cut to the tree and to 1,000
    /// entries (ask again from where it ends); `end <= start` gives none.
    pub end: u64,
}

/// Entries `start..end` of the call log, their exact bytes in base64.
#[utoipa::path(get, path = "/v1/transparency/entries", tag = "transparency",
    params(EntriesParams),
    responses(
        (status = 200, description = "The entries", body = Entries),
        (status = 400, description = "invalid_parameter", body = ErrorBody),
        (status = 404, description = "leaf_beyond_tree: start is not in the tree", body = ErrorBody),
    ))]
pub async fn entries(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<EntriesParams>,
) -> Result<Json<Entries>, ApiError> {
    state
        .run_blocking(Work::Read, move |e| {
            Ok(Json(e.log_entries(p.start, p.end)?))
        })
        .await
}
