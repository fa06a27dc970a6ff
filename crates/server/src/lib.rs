//! # hubsearch-server
//!
//! The HTTP API of hubsearch (axum): `app(state) -> Router` and
//! `run(listener, state, shutdown)`. Only this crate sees axum and tower.
//!
//! Key design decision: the engine is synchronous and CPU-bound, so every
//! search runs on a blocking thread behind a semaphore sized to the cores;
//! a request that cannot get a slot within `queue_timeout_ms` is shed with
//! 503 + Retry-After instead of queueing without bound, and each search has a
//! deadline. Errors are one JSON shape with stable codes (`error.rs`).

pub mod error;
pub mod extract;
pub mod keys;
pub mod metrics;
mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use hubsearch_core::config::ServerConfig;
use hubsearch_engine::Engine;
use tokio::sync::Semaphore;

use crate::error::{ApiError, Code};
use crate::keys::KeyStore;
use crate::metrics::Metrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    pub permits: Arc<Semaphore>,
    pub keys: Arc<KeyStore>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>) -> AppState {
        let config = engine.config().server.clone();
        let slots = if config.max_concurrent_searches == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.max_concurrent_searches
        };
        AppState {
            keys: Arc::new(KeyStore::new(engine.dir())),
            engine,
            config,
            permits: Arc::new(Semaphore::new(slots)),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Run CPU-bound engine work on a blocking thread, behind the search
    /// semaphore, within the search deadline.
    pub async fn run_search<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&Engine) -> Result<R, hubsearch_engine::Error> + Send + 'static,
    {
        let start = Instant::now();
        let deadline = Duration::from_millis(self.config.search_timeout_ms);
        let wait = Duration::from_millis(self.config.queue_timeout_ms).min(deadline);
        let permit = match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(ApiError::overloaded(
                    "the server is at capacity; retry shortly",
                ))
            }
        };
        let engine = self.engine.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&engine)
        });
        match tokio::time::timeout(deadline.saturating_sub(start.elapsed()), task).await {
            Ok(Ok(r)) => r.map_err(ApiError::from),
            Ok(Err(join)) => Err(ApiError::internal(join)),
            Err(_) => Err(ApiError::new(
                Code::SearchTimeout,
                format!(
                    "the search took longer than {} ms",
                    self.config.search_timeout_ms
                ),
            )),
        }
    }

    /// Run blocking engine work that is not a search (publishing, stats).
    pub async fn run_blocking<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&Engine) -> Result<R, ApiError> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(ApiError::internal)?
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/", get(routes::ui::index))
        .route("/v1/search", get(routes::search::search))
        .route("/v1/listings", get(routes::search::listings))
        .route("/v1/models", post(routes::models::create))
        .route(
            "/v1/models/{*id}",
            get(routes::models::get_model)
                .put(routes::models::replace)
                .delete(routes::models::delete),
        )
        .route("/v1/calls", post(routes::calls::record))
        .route("/v1/stats/exposure", get(routes::stats::exposure))
        .route("/v1/builders/{author}", get(routes::stats::builder))
        .route("/api/models", get(routes::hf::list_models))
        .route("/api/models/{*id}", get(routes::hf::model_info))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .fallback(routes::ops::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Serve until `shutdown` resolves, then flush the ledger and vectors.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let engine = state.engine.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tokio::task::spawn_blocking(move || engine.flush())
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
