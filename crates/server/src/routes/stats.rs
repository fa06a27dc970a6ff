//! `GET /v1/stats/exposure`, `GET /v1/builders/{author}`.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, Code};
use crate::extract::ApiQuery;
use crate::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    pub window_hours: Option<u64>,
}

pub async fn exposure(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<Json<Value>, ApiError> {
    let hours = p.window_hours.unwrap_or(24).clamp(1, 24 * 365);
    state
        .run_blocking(move |e| {
            serde_json::to_value(e.exposure_stats(hours))
                .map(Json)
                .map_err(ApiError::internal)
        })
        .await
}

pub async fn builder(
    State(state): State<AppState>,
    Path(author): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .run_blocking(move |e| match e.builder_stats(&author) {
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
