//! Operations: health, readiness, metrics, the OpenAPI document, 404s.

use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::IntoResponse;
use axum::Json;
use hubsearch_engine::replica::ReplicaStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::ApiQuery;
use crate::{AppState, Work};

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: String,
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`
    pub status: String,
    /// Cards in the index.
    pub models: u64,
    /// Card vectors, when vector search is on.
    pub vectors: Option<usize>,
    /// Cluster mode: this replica's standing.
    pub cluster: Option<ReplicaStatus>,
    /// Cluster mode: the snapshot this replica was restored from when it
    /// started (its state was missing or behind the log's start); null
    /// when it started from its own state.
    pub restored: Option<RestoredFrom>,
}

/// The snapshot a replica started from (docs/cluster.md, A new replica
/// joins from the object store).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestoredFrom {
    /// The snapshot's object name in the bucket
    /// (`snapshot-<position>-<replica>`).
    pub snapshot: String,
    /// The object store bucket it was downloaded from.
    pub bucket: String,
    /// The log position the snapshot had applied up to.
    pub position: u64,
    /// The replica that wrote it.
    pub replica: String,
    /// The log's first position when it was restored.
    pub log_first: u64,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The index is open, the ledger writes and (in cluster mode) the replica
/// applies the log.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready (ledger_failing, write_failing, cluster_unavailable, overloaded)", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let failed = state
        .write_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some((code, message)) = failed {
        return Err(ApiError::new(
            Code::WriteFailing,
            format!("the last write failed ({}): {message}", code.as_str()),
        ));
    }
    let restored = state.restored.as_deref().cloned();
    state
        .run_blocking(Work::Read, |e| {
            if !e.ledger().healthy() {
                return Err(ApiError::new(
                    Code::LedgerFailing,
                    "the exposure ledger cannot write (a commit failed); restart the server",
                ));
            }
            let models = e.num_models();
            let vectors = e.semantic().map(|s| s.vectors().live());
            let cluster = e.replicator().map(|r| r.status());
            if let Some(f) = cluster.as_ref().and_then(|c| c.failing.clone()) {
                return Err(ApiError::new(Code::ClusterUnavailable, f));
            }
            if let Some(c) = cluster.as_ref().filter(|c| c.stalled_ms > 0) {
                return Err(ApiError::new(
                    Code::ClusterUnavailable,
                    format!(
                        "this replica's applier has waited {:.1} s on its log consumer while the log is ahead (applied {}, log at {}): a write here would wait for it; its consumer is being made again",
                        c.stalled_ms as f64 / 1000.0,
                        c.applied,
                        c.log_last
                    ),
                ));
            }
            Ok(Json(Ready {
                status: "ready".into(),
                models,
                vectors,
                cluster,
                restored,
            }))
        })
        .await
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let e = state.engine.clone();
    let gauges = tokio::task::spawn_blocking(move || {
        vec![
            (
                "hubsearch_index_models",
                "Cards in the index.",
                e.num_models() as f64,
            ),
            (
                "hubsearch_index_bytes",
                "Bytes of the index directory on disk.",
                hubsearch_engine::dir_size(e.dir()) as f64,
            ),
            (
                "hubsearch_vectors_live",
                "Card vectors in the vector index.",
                e.semantic().map_or(0.0, |s| s.vectors().live() as f64),
            ),
            (
                "hubsearch_ledger_lag",
                "Ledger events queued but not yet on disk.",
                e.ledger().lag() as f64,
            ),
            (
                "hubsearch_ledger_pages",
                "Pages recorded in the exposure ledger.",
                e.ledger().pages() as f64,
            ),
        ]
        .into_iter()
        .chain(
            e.replicator()
                .map(|r| r.status())
                .into_iter()
                .flat_map(|c| {
                    [
                (
                    "hubsearch_cluster_applied",
                    "Cluster log position this replica has applied.",
                    c.applied as f64,
                ),
                (
                    "hubsearch_cluster_log_last",
                    "The cluster log's last position (asked every second).",
                    c.log_last as f64,
                ),
                (
                    "hubsearch_cluster_lag",
                    "Cluster log events this replica has not applied yet.",
                    c.lag as f64,
                ),
                (
                    "hubsearch_cluster_page_delay_p99_ms",
                    "p99 delay from a page being sent to being applied here (last 1,000 pages).",
                    c.page_delay_p99_ms,
                ),
                (
                    "hubsearch_cluster_pages_lost",
                    "Served pages given up on, lost to the global books: not taken by the cluster log within the retry time, refused with 4096 already waiting, or still waiting at shutdown (docs/cluster.md, Served pages are retried).",
                    c.pages_lost as f64,
                ),
                (
                    "hubsearch_cluster_pages_failed",
                    "The earlier name of hubsearch_cluster_pages_lost (the same count), kept as an alias.",
                    c.pages_lost as f64,
                ),
                (
                    "hubsearch_cluster_stalled_seconds",
                    "How long this replica's applier has waited on its log consumer while the log is ahead of it (0 below 5 s; docs/cluster.md, A stalled applier).",
                    c.stalled_ms as f64 / 1000.0,
                ),
                (
                    "hubsearch_cluster_consumer_restarts",
                    "Times this replica made its log consumer again because it had stalled.",
                    c.consumer_restarts as f64,
                ),
            ]
                }),
        )
        .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let available = state.permits.available_permits() as f64;
    let mut g: Vec<(&str, &str, f64)> = gauges;
    g.push((
        "hubsearch_search_slots_free",
        "Search slots free right now.",
        available,
    ));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&g),
    )
}

/// `GET /v1/cluster`'s parameters.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterParams {
    /// Add every model's ledger totals, in key order (to compare replicas).
    pub ledger: Option<bool>,
}

/// One model's ledger totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerRow {
    /// The model's key (hex).
    pub key: String,
    pub exposure: f64,
    pub merit: f64,
    pub rounds: u64,
    pub impressions: u64,
    pub calls: u64,
    pub income_usd: f64,
}

/// This replica's standing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterAnswer {
    /// Null outside cluster mode.
    pub cluster: Option<ReplicaStatus>,
    /// The log positions the index and the ledger have applied.
    pub index_position: u64,
    pub ledger_position: u64,
    pub models: u64,
    pub pages: u64,
    /// With `ledger=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<Vec<LedgerRow>>,
}

/// Cluster mode: this replica's log position, lag and staleness (null
/// outside cluster mode); with `ledger=true` every model's ledger totals.
#[utoipa::path(get, path = "/v1/cluster", tag = "operations",
    params(ClusterParams),
    responses(
        (status = 200, description = "This replica", body = ClusterAnswer),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn cluster(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ClusterParams>,
) -> Result<Json<ClusterAnswer>, ApiError> {
    let ledger = q.ledger.unwrap_or(false);
    state
        .run_blocking(Work::Read, move |e| {
            let (index_position, ledger_position) = e.positions();
            let rows = ledger.then(|| {
                e.ledger()
                    .rows(hubsearch_core::Group::Model)
                    .into_iter()
                    .map(|(k, t, x)| LedgerRow {
                        key: format!("{k:016x}"),
                        exposure: t.exposure,
                        merit: t.merit,
                        rounds: t.rounds,
                        impressions: t.impressions,
                        calls: x.calls,
                        income_usd: x.income_usd,
                    })
                    .collect()
            });
            Ok(Json(ClusterAnswer {
                cluster: e.replicator().map(|r| r.status()),
                index_position,
                ledger_position,
                models: e.num_models(),
                pages: e.ledger().pages(),
                ledger: rows,
            }))
        })
        .await
}

pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        format!("{} does not answer {method}", uri.path()),
    )
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(Code::NotFound, format!("no route for {}", uri.path()))
}

/// This document: OpenAPI 3.1, generated from the handlers' types.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    let max_query_chars = state.engine.config().search.max_query_chars;
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(max_query_chars),
    )
}
