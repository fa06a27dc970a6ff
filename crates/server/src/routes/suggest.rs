//! `GET /v1/suggest`: completions of a text being typed (docs/retrieval.md,
//! Suggestions).

use axum::extract::State;
use axum::Json;
use hubsearch_engine::names::Suggestion;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::ApiQuery;
use crate::{AppState, Work};

/// Suggestions returned when `limit` is not given.
const DEFAULT_LIMIT: usize = 8;
/// The most model suggestions one request may ask for.
const MAX_LIMIT: usize = 20;

/// `GET /v1/suggest`'s parameters.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestParams {
    /// What was typed so far.
    pub q: Option<String>,
    /// Model suggestions at most (1..=20, default 8); up to 3 tasks and 3
    /// builders come after them.
    #[param(minimum = 1, maximum = 20)]
    pub limit: Option<usize>,
}

/// Completions of what was typed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestResponse {
    pub query: String,
    /// Models first (those whose id or name starts with the text, then
    /// those whose id has its words inside; most downloaded first), then
    /// tasks, then builders.
    pub suggestions: Vec<Suggestion>,
    pub took_ms: f64,
}

/// Completions of a text being typed: model names first (popular,
/// prefix before infix), then tasks and builders.
#[utoipa::path(get, path = "/v1/suggest", tag = "search",
    params(SuggestParams),
    responses(
        (status = 200, description = "Completions, best first", body = SuggestResponse),
        (status = 400, description = "A bad parameter (invalid_per_page, invalid_parameter)", body = ErrorBody),
    ))]
pub async fn suggest(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<SuggestParams>,
) -> Result<Json<SuggestResponse>, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            Code::InvalidPerPage,
            format!("limit must be in 1..={MAX_LIMIT}"),
        ));
    }
    let query = p.q.unwrap_or_default();
    state
        .run_blocking(Work::Read, move |e| {
            let started = std::time::Instant::now();
            let suggestions = e.suggest(&query, limit)?;
            Ok(Json(SuggestResponse {
                query,
                suggestions,
                took_ms: started.elapsed().as_secs_f64() * 1e3,
            }))
        })
        .await
}
