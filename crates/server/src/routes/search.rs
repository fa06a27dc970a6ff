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
use crate::extract::Filtered;
use crate::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// The query; empty = filtered browsing (most downloaded first, ranked
    /// by the policy, pages past the candidates in download order).
    pub q: Option<String>,
    /// text, vector or hybrid (default: the hub's).
    pub mode: Option<String>,
    /// Weight of the vector side in hybrid fusion, 0..=1 (implies
    /// mode=hybrid; 0 = text alone, no query embedding).
    pub semantic_ratio: Option<f64>,
    pub policy: Option<String>,
    pub seed: Option<u64>,
    /// 1-based page number.
    pub page: Option<usize>,
    pub per_page: Option<usize>,
    pub explain: Option<bool>,
    /// Count every match exactly and every facet's values (disjunctive).
    pub facets: Option<bool>,
}

/// The page a request asks for: `page` (from 1) and `per_page`, the one
/// paging scheme of /v1 (docs/api.md, Paging).
pub(crate) fn paging(
    state: &AppState,
    page: Option<usize>,
    per_page: Option<usize>,
) -> Result<(usize, usize, usize), ApiError> {
    let per_page = per_page.unwrap_or(state.config.default_per_page);
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::new(Code::InvalidPage, "page starts at 1"));
    }
    // The engine checks the page against its limits.
    Ok((page, per_page, (page - 1).saturating_mul(per_page)))
}

/// The next page's number, when there is one.
fn next_page(page: usize, offset: usize, got: usize, total: usize) -> Option<usize> {
    (got > 0 && offset.saturating_add(got) < total).then_some(page + 1)
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
    Filtered(p, filter): Filtered<SearchParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (page, per_page, offset) = paging(&state, p.page, p.per_page)?;
    let mut mode: Mode = match p.mode.as_deref() {
        Some(m) => m
            .parse()
            .map_err(|e: String| ApiError::new(Code::InvalidMode, e))?,
        None if p.semantic_ratio.is_some() => Mode::Hybrid,
        None => state.engine.default_mode(),
    };
    let mut semantic_ratio = p.semantic_ratio;
    if semantic_ratio == Some(0.0) && mode == Mode::Hybrid {
        // Text alone: no query vector to compute.
        mode = Mode::Text;
        semantic_ratio = None;
    }
    let policy: Option<PolicyKind> = p
        .policy
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| ApiError::new(Code::UnknownPolicy, e))?;
    // Dropped with this handler: when the client goes away (or the deadline
    // passes) before the search records its page, nobody saw it.
    let abandoned = Abandoned::default();
    let explain = p.explain.unwrap_or(false);
    let req = SearchRequest {
        query: p.q.unwrap_or_default(),
        filter,
        mode,
        policy,
        seed: p.seed,
        semantic_ratio,
        offset,
        limit: per_page,
        facets: p.facets.unwrap_or(false),
        record: true,
        exposed: None,
        abandoned: Some(abandoned.0.clone()),
    };
    let resp = state.run_search(move |e| e.search(&req)).await?;
    let next = next_page(page, offset, resp.hits.len(), resp.total);
    Ok(Json(serde_json::json!({
        "query": resp.query,
        "mode": resp.mode,
        "policy": resp.policy,
        "page": page,
        "per_page": per_page,
        "next_page": next,
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

/// `GET /v1/models/{id}/similar`: the page size (and the filters).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SimilarParams {
    pub per_page: Option<usize>,
    pub explain: Option<bool>,
}

/// The nearest models to one model's vector (docs/retrieval.md, Similar
/// models); called by `get_model` for ids ending in `/similar`.
pub async fn similar(
    state: AppState,
    id: String,
    p: SimilarParams,
    f: Filter,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = p.per_page.unwrap_or(state.config.default_per_page);
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
    /// trending (default), calls, newest, price, likes, updated or fair.
    pub sort: Option<String>,
    /// 1-based page number.
    pub page: Option<usize>,
    pub per_page: Option<usize>,
    pub explain: Option<bool>,
}

pub async fn listings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Filtered(p, f): Filtered<ListingParams>,
) -> Result<Response, ApiError> {
    let sort: ListingSort = p
        .sort
        .as_deref()
        .unwrap_or("trending")
        .parse()
        .map_err(|e: String| ApiError::new(Code::InvalidSort, e))?;
    let (page, per_page, offset) = paging(&state, p.page, p.per_page)?;
    let limit = per_page;
    let explain = p.explain.unwrap_or(false);
    let resp = state
        .run_search(move |e| e.listing(&f, sort, offset, limit))
        .await?;
    let next = next_page(page, offset, resp.hits.len(), resp.total);
    let body = serde_json::json!({
        "sort": sort,
        "page": page,
        "per_page": per_page,
        "next_page": next,
        "total": resp.total,
        "hits": resp.hits.into_iter().map(|h| HitDto::from_hit(h, explain)).collect::<Vec<_>>(),
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
