//! Operations: health, readiness, metrics, the OpenAPI document, 404s.

use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, Code};
use crate::{AppState, Work};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .run_blocking(Work::Read, |e| {
            if !e.ledger().healthy() {
                return Err(ApiError::new(
                    Code::LedgerFailing,
                    "the exposure ledger cannot write (a commit failed); restart the server",
                ));
            }
            let models = e.text_index().num_docs();
            let vectors = e.semantic().map(|s| s.vectors().live());
            let cluster = e.replicator().map(|r| r.status());
            if let Some(f) = cluster.as_ref().and_then(|c| c.failing.clone()) {
                return Err(ApiError::new(Code::ClusterUnavailable, f));
            }
            Ok(Json(
                json!({"status": "ready", "models": models, "vectors": vectors, "cluster": cluster}),
            ))
        })
        .await
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let e = state.engine.clone();
    let gauges = tokio::task::spawn_blocking(move || {
        vec![
            (
                "hubsearch_index_models",
                "Cards in the index.",
                e.text_index().num_docs() as f64,
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
                    "hubsearch_cluster_pages_failed",
                    "Served pages the cluster log did not take.",
                    c.pages_failed as f64,
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

/// `GET /v1/cluster`: this replica's standing in the cluster (null outside
/// cluster mode); with `ledger=true`, every model's ledger totals in key
/// order, for comparing replicas.
pub async fn cluster(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ledger = match q.get("ledger").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidParameter,
                "ledger must be true or false",
            ))
        }
    };
    if let Some(k) = q.keys().find(|k| k.as_str() != "ledger") {
        return Err(ApiError::new(
            Code::InvalidParameter,
            format!("unknown parameter {k:?} (known: ledger)"),
        ));
    }
    state
        .run_blocking(Work::Read, move |e| {
            let status = e.replicator().map(|r| r.status());
            let (index_position, ledger_position) = e.positions();
            let mut out = json!({
                "cluster": status,
                "index_position": index_position,
                "ledger_position": ledger_position,
                "models": e.text_index().num_docs(),
                "pages": e.ledger().pages(),
            });
            if ledger {
                let rows: Vec<Value> = e
                    .ledger()
                    .rows(hubsearch_core::Group::Model)
                    .into_iter()
                    .map(|(k, t, x)| {
                        json!({
                            "key": format!("{k:016x}"),
                            "exposure": t.exposure,
                            "merit": t.merit,
                            "rounds": t.rounds,
                            "impressions": t.impressions,
                            "calls": x.calls,
                            "income_usd": x.income_usd,
                        })
                    })
                    .collect();
                out["ledger"] = Value::Array(rows);
            }
            Ok(Json(out))
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

/// Routes, their parameters and answers: the table the OpenAPI document is
/// generated from (kept next to the router in lib.rs; a test checks that
/// every routed path is described here).
pub const ROUTES: &[(&str, &str, &str, &[&str])] = &[
    (
        "get",
        "/v1/search",
        "Search models: BM25, vectors or both, ordered by a ranking policy.",
        &[
            "q",
            "task",
            "library",
            "language",
            "license",
            "builder",
            "min_price",
            "max_price",
            "mode",
            "policy",
            "seed",
            "page",
            "per_page",
            "explain",
        ],
    ),
    (
        "get",
        "/v1/listings",
        "Ranked browsing without a query (ETag, Cache-Control, cursor pagination).",
        &[
            "task", "library", "language", "license", "builder", "sort", "cursor", "limit",
            "explain",
        ],
    ),
    (
        "post",
        "/v1/models",
        "Publish a model card (API key; a builder may publish only its own models).",
        &[],
    ),
    (
        "get",
        "/v1/models/{id}",
        "One model with its exposure and paid calls.",
        &[],
    ),
    (
        "put",
        "/v1/models/{id}",
        "Replace a model card (API key).",
        &[],
    ),
    (
        "delete",
        "/v1/models/{id}",
        "Delete a model (API key).",
        &[],
    ),
    (
        "post",
        "/v1/calls",
        "Record a verified paid call (admin key; idempotency key).",
        &[],
    ),
    (
        "get",
        "/v1/stats/exposure",
        "Concentration of exposure, calls and income.",
        &["window_hours"],
    ),
    (
        "get",
        "/v1/builders/{author}",
        "One builder's exposure, calls and income.",
        &[],
    ),
    (
        "get",
        "/api/models",
        "Hugging Face Hub compatible model listing.",
        &[
            "search",
            "author",
            "filter",
            "sort",
            "direction",
            "limit",
            "full",
            "cardData",
            "cursor",
        ],
    ),
    (
        "get",
        "/api/models/{id}",
        "Hugging Face Hub compatible model info.",
        &[],
    ),
    ("get", "/healthz", "Liveness.", &[]),
    ("get", "/readyz", "Readiness: the index is open (and, in cluster mode, the replica applies the log).", &[]),
    (
        "get",
        "/v1/cluster",
        "Cluster mode: this replica's log position, lag and staleness; with ledger=true every model's ledger totals.",
        &["ledger"],
    ),
    ("get", "/metrics", "Prometheus metrics.", &[]),
    ("get", "/openapi.json", "This document.", &[]),
];

pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, params) in ROUTES {
        let mut parameters: Vec<Value> = params
            .iter()
            .map(|p| json!({"name": p, "in": "query", "required": false, "schema": {"type": "string"}}))
            .collect();
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            parameters.push(json!({"name": seg.trim_matches(['{', '}']), "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let op = json!({
            "summary": summary,
            "parameters": parameters,
            "responses": {"200": {"description": "ok"}, "400": error, "401": error, "404": error, "503": error},
        });
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "hubsearch", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}},
    })
}

pub async fn openapi() -> Json<Value> {
    Json(openapi_document())
}
