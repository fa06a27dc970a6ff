//! `GET /v1/search` and `GET /v1/listings`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hubsearch_core::{Filter, Mode, PolicyKind, SearchRequest};
use hubsearch_engine::listing::ListingSort;
use serde::Deserialize;

use super::HitDto;
use crate::error::{ApiError, Code};
use crate::extract::ApiQuery;
use crate::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    pub q: Option<String>,
    pub task: Option<String>,
    pub library: Option<String>,
    pub language: Option<String>,
    pub license: Option<String>,
    pub builder: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub mode: Option<String>,
    pub policy: Option<String>,
    pub seed: Option<u64>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
    pub explain: Option<bool>,
    /// Count every match and every facet value (costs a pass over the
    /// whole match set: ~10x the latency of a search on broad queries).
    pub facets: Option<bool>,
}

pub(crate) fn filter(
    task: Option<String>,
    library: Option<String>,
    language: Option<String>,
    license: Option<String>,
    builder: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
) -> Filter {
    let clean = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    Filter {
        task: clean(task),
        library: clean(library),
        language: clean(language),
        license: clean(license),
        builder: clean(builder),
        min_price,
        max_price,
        id_contains: None,
    }
}

/// Sets its flag when dropped.
#[derive(Default)]
struct Abandoned(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub async fn search(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let per_page = p.per_page.unwrap_or(state.config.default_per_page);
    let page = p.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::new(Code::InvalidPage, "page starts at 1"));
    }
    let mode: Mode = match p.mode.as_deref() {
        Some(m) => m
            .parse()
            .map_err(|e: String| ApiError::new(Code::InvalidMode, e))?,
        None => state.engine.default_mode(),
    };
    let policy: Option<PolicyKind> = p
        .policy
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| ApiError::new(Code::UnknownPolicy, e))?;
    // Dropped with this handler: when the client goes away (or the deadline
    // passes) before the search records its page, nobody saw it.
    let abandoned = Abandoned::default();
    // The engine checks the page against its limits.
    let offset = (page - 1).saturating_mul(per_page);
    let explain = p.explain.unwrap_or(false);
    let req = SearchRequest {
        query: p.q.unwrap_or_default(),
        filter: filter(
            p.task,
            p.library,
            p.language,
            p.license,
            p.builder,
            p.min_price,
            p.max_price,
        ),
        mode,
        policy,
        seed: p.seed,
        offset,
        limit: per_page,
        facets: p.facets.unwrap_or(false),
        record: true,
        exposed: None,
        abandoned: Some(abandoned.0.clone()),
    };
    let resp = state.run_search(move |e| e.search(&req)).await?;
    Ok(Json(serde_json::json!({
        "query": resp.query,
        "mode": resp.mode,
        "policy": resp.policy,
        "page": page,
        "per_page": per_page,
        "total": resp.total,
        "total_exact": resp.total_exact,
        "matched_all_words": resp.matched_all_words,
        "page_id": resp.page_id,
        "unknown_words": resp.unknown_words,
        "took_ms": resp.took_ms,
        "hits": resp.hits.into_iter().map(|h| HitDto::from_hit(h, explain)).collect::<Vec<_>>(),
        "facets": resp.facets.into_iter().map(|(k, v)| (k, v.into_iter().map(|(value, count)| serde_json::json!({"value": value, "count": count})).collect::<Vec<_>>().into())).collect::<serde_json::Map<_, _>>(),
    })))
}

/// `GET /v1/models/{id}/similar`: filters and the page size.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SimilarParams {
    pub task: Option<String>,
    pub library: Option<String>,
    pub language: Option<String>,
    pub license: Option<String>,
    pub builder: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub limit: Option<usize>,
    pub explain: Option<bool>,
}

/// The nearest models to one model's vector (docs/retrieval.md, Similar
/// models); called by `get_model` for ids ending in `/similar`.
pub async fn similar(
    state: AppState,
    id: String,
    p: SimilarParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let f = filter(
        p.task,
        p.library,
        p.language,
        p.license,
        p.builder,
        p.min_price,
        p.max_price,
    );
    let limit = p.limit.unwrap_or(state.config.default_per_page);
    let explain = p.explain.unwrap_or(false);
    let resp = state.run_search(move |e| e.similar(&id, &f, limit)).await?;
    Ok(Json(serde_json::json!({
        "model": resp.query,
        "took_ms": resp.took_ms,
        "hits": resp.hits.into_iter().map(|h| HitDto::from_hit(h, explain)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListingParams {
    pub task: Option<String>,
    pub library: Option<String>,
    pub language: Option<String>,
    pub license: Option<String>,
    pub builder: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    pub explain: Option<bool>,
}

/// Cursors are opaque to clients: `o<offset>`.
fn parse_cursor(c: Option<&str>) -> Result<usize, ApiError> {
    match c {
        None | Some("") => Ok(0),
        Some(c) => c
            .strip_prefix('o')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidCursor,
                    "the cursor is not one this server gave out",
                )
            }),
    }
}

pub async fn listings(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<ListingParams>,
) -> Result<Response, ApiError> {
    let sort: ListingSort = p
        .sort
        .as_deref()
        .unwrap_or("trending")
        .parse()
        .map_err(|e: String| ApiError::new(Code::InvalidSort, e))?;
    let limit = p.limit.unwrap_or(state.config.default_per_page);
    let offset = parse_cursor(p.cursor.as_deref())?;
    let f = filter(
        p.task, p.library, p.language, p.license, p.builder, None, None,
    );
    let explain = p.explain.unwrap_or(false);
    let resp = state
        .run_search(move |e| e.listing(&f, sort, offset, limit))
        .await?;
    let next = offset.saturating_add(resp.hits.len());
    let more = next < resp.total
        && !resp.hits.is_empty()
        && (sort != ListingSort::Fair || next < state.engine.config().search.candidates);
    let body = serde_json::json!({
        "sort": sort,
        "total": resp.total,
        "items": resp.hits.into_iter().map(|h| HitDto::from_hit(h, explain)).collect::<Vec<_>>(),
        "next_cursor": more.then(|| format!("o{next}")),
    });
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let mut out = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes.clone(),
    )
        .into_response();
    if sort == ListingSort::Fair {
        // Every fair page view changes the next one: not cacheable.
        out.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(out);
    }
    let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..16]);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        let mut nm = StatusCode::NOT_MODIFIED.into_response();
        nm.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(ApiError::internal)?,
        );
        return Ok(nm);
    }
    out.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(ApiError::internal)?,
    );
    let cc = format!("public, max-age={}", state.config.listing_max_age);
    out.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cc).map_err(ApiError::internal)?,
    );
    Ok(out)
}
