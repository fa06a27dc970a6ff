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
pub mod filters;
pub mod gate;
/// API keys live with the engine (replicated through the cluster log);
/// re-exported here where the server has always had them.
pub use hubsearch_engine::keys;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
mod routes;

pub use routes::ops::RestoredFrom;
pub use routes::search::SearchPage;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hubsearch_core::config::ServerConfig;
use hubsearch_engine::Engine;
use tokio::sync::Semaphore;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Code};
use crate::keys::KeyStore;
use crate::metrics::Metrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    /// Slots for CPU- or disk-bound reads: searches, listings, stats, cards.
    pub permits: Arc<Semaphore>,
    /// Slots for writes (publishing, deleting, paid calls), apart from reads.
    pub write_permits: Arc<Semaphore>,
    pub keys: Arc<KeyStore>,
    pub metrics: Arc<Metrics>,
    /// Exposure statistics by window, with when they were computed.
    pub stats_cache: StatsCache,
    /// Rate-limit buckets per client (`server.rate_limit_per_minute`).
    pub limiter: Arc<ratelimit::Limiter>,
    /// Which served pages are recorded as exposure (docs/ledger.md).
    pub gate: Arc<gate::ExposureGate>,
    /// The last write's failure (its code and message), until a write
    /// succeeds: `/readyz` reports it.
    pub write_failure: Arc<std::sync::Mutex<Option<(error::Code, String)>>>,
    /// Cluster mode: the snapshot this replica started from, if it was
    /// restored at start; `/readyz` reports it.
    pub restored: Option<Arc<RestoredFrom>>,
}

/// Exposure statistics by window (hours), with when they were computed.
pub type StatsCache = Arc<std::sync::Mutex<HashMap<u64, (Instant, serde_json::Value)>>>;

/// Which admission queue a piece of blocking work waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Reads the index or the ledger (shares the search slots).
    Read,
    /// Changes the index or the ledger.
    Write,
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
            write_permits: Arc::new(Semaphore::new(config.max_concurrent_writes.max(1))),
            config,
            permits: Arc::new(Semaphore::new(slots)),
            metrics: Arc::new(Metrics::default()),
            stats_cache: Default::default(),
            limiter: Default::default(),
            gate: Default::default(),
            write_failure: Default::default(),
            restored: None,
        }
    }

    /// The state of a replica restored from `restored` at start (cluster
    /// mode; `/readyz` reports it).
    pub fn with_restored(mut self, restored: Option<RestoredFrom>) -> AppState {
        self.restored = restored.map(Arc::new);
        self
    }

    /// Whether the page a GET would serve (`page`: what was asked for,
    /// stably written) is recorded as exposure for this client, and the
    /// recording budget's state for the response headers (the gate,
    /// docs/ledger.md). HEAD and other methods never record.
    pub fn admit_page(
        &self,
        method: &axum::http::Method,
        headers: &axum::http::HeaderMap,
        ip: Option<std::net::IpAddr>,
        page: &str,
    ) -> (bool, Option<ratelimit::Decision>) {
        if method != axum::http::Method::GET {
            if method == axum::http::Method::HEAD {
                self.gate.head();
            }
            return (false, None);
        }
        let client = gate::client_of(headers, ip);
        let (verdict, budget) = self.gate.admit(
            &client,
            page,
            self.config.recorded_pages_per_minute,
            Duration::from_secs(self.config.repeat_window_seconds),
            Instant::now(),
        );
        (verdict == gate::Verdict::Record, budget)
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
        let permit = self.admit(Work::Read, wait).await?;
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

    /// A slot in `work`'s queue, or 503 when none frees up within `wait`.
    async fn admit(
        &self,
        work: Work,
        wait: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let slots = match work {
            Work::Read => &self.permits,
            Work::Write => &self.write_permits,
        };
        match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ApiError::overloaded(
                "the server is at capacity; retry shortly",
            )),
        }
    }

    /// Run blocking engine work that is not a search (publishing, stats,
    /// cards) on a blocking thread, admitted in `work`'s queue.
    pub async fn run_blocking<R, F>(&self, work: Work, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&Engine) -> Result<R, ApiError> + Send + 'static,
    {
        let wait = Duration::from_millis(self.config.queue_timeout_ms);
        let permit = self.admit(work, wait).await?;
        let engine = self.engine.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&engine)
        })
        .await
        .map_err(ApiError::internal)?;
        if work == Work::Write {
            self.note_write(&out);
        }
        out
    }

    /// Remember a write's failure for `/readyz` (a server-side one: disk
    /// full, internal, the cluster log), or clear it when a write succeeds.
    pub fn note_write<R>(&self, out: &Result<R, ApiError>) {
        let mut w = self.write_failure.lock().unwrap_or_else(|e| e.into_inner());
        match out {
            Ok(_) => *w = None,
            Err(e) if e.status().is_server_error() => {
                *w = Some((e.code, e.message.clone()));
            }
            Err(_) => {}
        }
    }
}

/// The documented routes (`utoipa_axum`: each handler's path comes from
/// its `#[utoipa::path]`, so the OpenAPI document and the router cannot
/// disagree).
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::ui::index))
        .routes(routes!(routes::search::search))
        .routes(routes!(routes::search::listings))
        .routes(routes!(routes::suggest::suggest))
        .routes(routes!(routes::models::create))
        .routes(routes!(routes::calls::record))
        .routes(routes!(routes::keys::list_keys, routes::keys::create_key))
        .routes(routes!(routes::keys::revoke_key))
        .routes(routes!(routes::keys::rotate_key))
        .routes(routes!(routes::stats::exposure))
        .routes(routes!(routes::stats::builder))
        .routes(routes!(routes::stats::recording))
        .routes(routes!(routes::transparency::key))
        .routes(routes!(routes::transparency::head))
        .routes(routes!(routes::transparency::proof))
        .routes(routes!(routes::transparency::consistency))
        .routes(routes!(routes::transparency::entries))
        .routes(routes!(routes::hf::list_models))
        .routes(routes!(routes::ops::healthz))
        .routes(routes!(routes::ops::readyz))
        .routes(routes!(routes::ops::cluster))
        .routes(routes!(routes::ops::metrics))
        .routes(routes!(routes::ops::openapi))
}

/// The router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let (router, _doc) = api_router().split_for_parts();
    // Ids hold a `/`: these are `{*id}` routes, documented by hand in
    // `openapi::ApiDoc` (see `openapi::WILDCARD_ROUTES`).
    router
        .route(
            "/v1/models/{*id}",
            get(routes::models::get_model)
                .put(routes::models::replace)
                .delete(routes::models::delete)
                .options(routes::models::options),
        )
        .route("/api/models/{*id}", get(routes::hf::model_info))
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_limits,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::Extension(extract::BodyDeadline(
            Duration::from_millis(state.config.body_read_timeout_ms.max(1)),
        )))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(cors(&state.config.cors_origins))
        .layer(
            // A shed 503 is the server working as designed: not an ERROR line
            // per request under overload. Real failures are logged where
            // they happen (`ApiError::internal`).
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}

/// `s` percent-encoded for a URL's path segment or query (every byte but
/// RFC 3986's unreserved characters as `%XX`): the paging links the API
/// gives, and the paths `hubsearch verify` asks for.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// CORS for browser apps on other origins (`server.cors_origins`): the
/// methods and headers the API uses, the response headers a frontend reads
/// (paging links, caching, retry hints, Hub error codes), preflights cached
/// 10 minutes. An empty list adds no CORS headers; an origin that does not
/// parse is left out (and logged).
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| match HeaderValue::from_str(o) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!("server.cors_origins: {o:?} is not a valid origin");
                    None
                }
            })
            .collect();
        if list.is_empty() {
            return CorsLayer::new();
        }
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            header::IF_MATCH,
        ])
        .expose_headers([
            header::LINK,
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-error-code"),
        ])
        .max_age(Duration::from_secs(600))
}

/// 414 and 431 in the JSON error shape, before any handler runs.
async fn request_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let uri = req.uri().to_string().len();
    if uri > state.config.max_uri_bytes {
        let msg = format!(
            "the URI is {uri} bytes, over {}",
            state.config.max_uri_bytes
        );
        return ApiError::new(Code::UriTooLong, msg).into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > state.config.max_header_bytes {
        let msg = format!(
            "the headers are {headers} bytes, over {}",
            state.config.max_header_bytes
        );
        return ApiError::new(Code::HeadersTooLarge, msg).into_response();
    }
    next.run(req).await
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
///
/// Connections are accepted by our own loop over hyper (HTTP/1.1), so that
/// no client can hold the server: at most `server.max_connections` open
/// (and `max_connections_per_ip` from one address; past them a new
/// connection is closed at once), a request's headers must arrive within
/// `header_read_timeout_ms`, and idle kept-alive connections close after it.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let engine = state.engine.clone();
    // Warm the embedder and the index readers before the first request
    // is accepted (so before /readyz can answer): the first search is
    // then as fast as the others (docs/retrieval.md, Warm-up).
    let warm = engine.clone();
    match tokio::task::spawn_blocking(move || warm.warm_up()).await {
        Ok(Ok(took)) => tracing::info!("warmed up in {:.0} ms", took.as_secs_f64() * 1e3),
        Ok(Err(e)) => tracing::warn!("warm-up search failed: {e}"),
        Err(e) => tracing::warn!("warm-up failed: {e}"),
    }
    let config = state.config.clone();
    let router = app(state);
    let open = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_ip: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>> = Default::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let header_timeout = Duration::from_millis(config.header_read_timeout_ms.max(1));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors or similar: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let ip = peer.ip();
        {
            let mut counts = per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(ip).or_default();
            if *n >= config.max_connections_per_ip.max(1) {
                continue;
            }
            *n += 1;
        }
        let _ = stream.set_nodelay(true);
        // Handlers and the rate limiter see the client's address.
        let service =
            hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                router.clone(),
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ratelimit::ClientIp(ip));
                    req
                },
            ));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let open_here = OpenConnection {
            per_ip: per_ip.clone(),
            ip,
            _slot: slot,
        };
        tokio::spawn(async move {
            // Released when the task ends, normally or by a panic.
            let _open = open_here;
            let _ = conn.await;
        });
    }
    drop(listener);
    // In-flight requests finish; idle connections close.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    tokio::task::spawn_blocking(move || engine.flush())
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}

/// One open connection: its slot, and its count under its client's IP,
/// both given back when dropped.
struct OpenConnection {
    per_ip: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
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
