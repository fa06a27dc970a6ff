//! `GET /v1/stats/exposure`, `GET /v1/builders/{author}`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use std::time::{Duration, Instant};
use utoipa::IntoParams;

use crate::{AppState, StatsCache, Work};

/// `GET /v1/stats/exposure`'s parameters.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// The recent window, hours (1..=8760, default 24).
    #[param(minimum = 1, maximum = 8760)]
    pub window_hours: Option<u64>,
}

/// Concentration of exposure, paid calls and income over models and
/// builders (cached for server.stats_cache_ms).
#[utoipa::path(get, path = "/v1/stats/exposure", tag = "stats",
    params(StatsParams),
    responses(
        (status = 200, description = "The hub's concentration figures", body = hubsearch_engine::exposure_stats::ExposureStats),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn exposure(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<Json<Value>, ApiError> {
    let hours = p.window_hours.unwrap_or(24);
    if !(1..=24 * 365).contains(&hours) {
        return Err(ApiError::new(
            Code::InvalidParameter,
            format!("window_hours must be 1 to 8760, not {hours}"),
        ));
    }
    let fresh = Duration::from_millis(state.config.stats_cache_ms);
    let cache = state.stats_cache.clone();
    // Cached figures need no slot: pollers do not queue behind searches.
    if let Some(v) = cached(&cache, hours, fresh) {
        return Ok(Json(v));
    }
    state
        .run_blocking(Work::Read, move |e| {
            // Another poller may have filled the cache while this one queued.
            if let Some(v) = cached(&cache, hours, fresh) {
                return Ok(Json(v));
            }
            let v = serde_json::to_value(e.exposure_stats(hours)).map_err(ApiError::internal)?;
            cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(hours, (Instant::now(), v.clone()));
            Ok(Json(v))
        })
        .await
}

/// The figures for `hours` if computed less than `fresh` ago.
fn cached(cache: &StatsCache, hours: u64, fresh: Duration) -> Option<Value> {
    let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get(&hours)
        .filter(|(at, _)| at.elapsed() < fresh)
        .map(|(_, v)| v.clone())
}

/// One builder's exposure, paid calls and income.
#[utoipa::path(get, path = "/v1/builders/{author}", tag = "stats",
    params(("author" = String, Path, description = "The builder (an id's namespace)")),
    responses(
        (status = 200, description = "The builder's figures", body = hubsearch_engine::exposure_stats::BuilderStats),
        (status = 404, description = "No such builder (builder_not_found)", body = ErrorBody),
    ))]
pub async fn builder(
    State(state): State<AppState>,
    ApiPath(author): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .run_blocking(Work::Read, move |e| match e.builder_stats(&author) {
            Some(s) => serde_json::to_value(s)
                .map(Json)
                .map_err(ApiError::internal),
            None => Err(ApiError::new(
                Code::BuilderNotFound,
                format!("no builder {author:?} on this hub"),
            )),
        })
        .await
}

/// What the exposure gate did since this server started: pages recorded,
/// and pages served but not recorded (repeats, over a client's budget,
/// HEAD requests), with the rules in force (docs/ledger.md, Gaming
/// resistance).
#[utoipa::path(get, path = "/v1/stats/recording", tag = "stats",
    responses(
        (status = 200, description = "The gate's counts", body = crate::gate::RecordingFigures),
    ))]
pub async fn recording(State(state): State<AppState>) -> Json<crate::gate::RecordingFigures> {
    let c = &state.config;
    Json(
        state
            .gate
            .figures(c.recorded_pages_per_minute, c.repeat_window_seconds),
    )
}
