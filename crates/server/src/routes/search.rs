//! `GET /v1/search` and `GET /v1/listings`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hubsearch_core::{Filter, ListingSort, Mode, PolicyKind, SearchRequest};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::HitDto;
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::Filtered;
use crate::filters::FilterParams;
use crate::ratelimit::ClientIp;
use crate::AppState;

/// `GET /v1/search`'s own parameters (the filters are [`FilterParams`]).
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query; empty = filtered browsing (most downloaded first, ranked
    /// by the policy, pages past the candidates in download order).
    pub q: Option<String>,
    /// text, vector or hybrid (default: the hub's).
    #[param(inline, value_type = Option<Mode>)]
    pub mode: Option<String>,
    /// Weight of the vector side in hybrid fusion, 0..=1 (without `mode`
    /// it implies mode=hybrid; with another mode it is not read; 0 = text
    /// alone, no query embedding).
    #[param(minimum = 0.0, maximum = 1.0)]
    pub semantic_ratio: Option<f64>,
    /// Ranking policy (default: the hub's).
    #[param(inline, value_type = Option<PolicyKind>)]
    pub policy: Option<String>,
    /// Seed of the stochastic policy.
    pub seed: Option<u64>,
    /// 1-based page number.
    #[param(minimum = 1)]
    pub page: Option<usize>,
    /// Hits per page (default server.default_per_page; past
    /// search.max_limit it is read as search.max_limit).
    #[param(minimum = 1)]
    pub per_page: Option<usize>,
    /// Add every score part to each hit.
    pub explain: Option<bool>,
    /// Count every match exactly and every facet's values (disjunctive).
    pub facets: Option<bool>,
}

/// One value of a facet and how many matching cards have it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    pub query: String,
    /// The retrieval mode used (a search without words is text).
    pub mode: String,
    /// The policy that ordered the page.
    pub policy: String,
    pub page: usize,
    pub per_page: usize,
    /// The next page's number; null on the last page.
    pub next_page: Option<usize>,
    /// Matching cards: exact when `total_exact`, else the candidates
    /// retrieved (a lower bound).
    pub total: usize,
    pub total_exact: bool,
    /// Whether every query word is a word some card contains.
    pub matched_all_words: bool,
    /// The exposure ledger's id of this page (a paid call may name it).
    pub page_id: Option<u64>,
    /// Query words no card contains (matched as a prefix, as a typo of a
    /// word ids contain, or not at all; docs/retrieval.md).
    pub unknown_words: Vec<String>,
    pub took_ms: f64,
    pub hits: Vec<HitDto>,
    /// With `facets=true`: per facet, its most frequent values among the
    /// matches, each facet counted without its own selection.
    pub facets: BTreeMap<String, Vec<FacetValue>>,
}

/// A page of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListingPage {
    pub sort: String,
    pub page: usize,
    pub per_page: usize,
    /// The next page's number; null on the last page.
    pub next_page: Option<usize>,
    pub total: usize,
    pub hits: Vec<HitDto>,
}

/// The models nearest to one model.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarPage {
    /// The model the others are like.
    pub model: String,
    pub took_ms: f64,
    pub hits: Vec<HitDto>,
}

/// The page size asked for (default `server.default_per_page`); past
/// `search.max_limit` it is read as it (0 is left for the engine to refuse).
fn page_size(state: &AppState, per_page: Option<usize>) -> usize {
    let max = state.engine.config().search.max_limit.max(1);
    per_page.unwrap_or(state.config.default_per_page).min(max)
}

/// The page a request asks for: `page` (from 1) and `per_page`, the one
/// paging scheme of /v1 (docs/api.md, Paging).
pub(crate) fn paging(
    state: &AppState,
    page: Option<usize>,
    per_page: Option<usize>,
) -> Result<(usize, usize, usize), ApiError> {
    let per_page = page_size(state, per_page);
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::new(Code::InvalidPage, "page starts at 1"));
    }
    // A page past every result is empty (an offset too large to hold is
    // past every result too).
    let offset = (page - 1).saturating_mul(per_page);
    Ok((page, per_page, offset))
}

/// A page's hits as the API shows them.
fn hit_dtos(hits: Vec<hubsearch_core::Hit>, explain: bool) -> Vec<HitDto> {
    hits.into_iter()
        .map(|h| HitDto::from_hit(h, explain))
        .collect()
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

/// Search models: BM25, vectors or both, ordered by a ranking policy.
#[utoipa::path(get, path = "/v1/search", tag = "search",
    params(SearchParams, FilterParams),
    responses(
        (status = 200, description = "A page of hits", body = SearchPage),
        (status = 400, description = "A bad parameter (invalid_parameter, invalid_filter, invalid_mode, unknown_policy, invalid_page, invalid_per_page, query_too_long, embedding_unavailable)", body = ErrorBody),
        (status = 429, description = "Over the rate limit (rate_limited)", body = ErrorBody),
        (status = 503, description = "Overloaded or past the deadline (overloaded, search_timeout)", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    ip: Option<axum::Extension<ClientIp>>,
    Filtered(p, filter): Filtered<SearchParams>,
) -> Result<(HeaderMap, Json<SearchPage>), ApiError> {
    let (page, per_page, offset) = paging(&state, p.page, p.per_page)?;
    let mut mode: Mode = match p.mode.as_deref() {
        Some(m) => m
            .parse()
            .map_err(|e: String| ApiError::new(Code::InvalidMode, e))?,
        None if p.semantic_ratio.is_some() => Mode::Hybrid,
        None => state.engine.default_mode(),
    };
    // The weight of the vector side: read in hybrid mode only.
    let mut semantic_ratio = p.semantic_ratio.filter(|_| mode == Mode::Hybrid);
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
    let query = p.q.unwrap_or_default();
    // What this client asked to see: the gate records one page once.
    let asked = format!(
        "search\n{query}\n{mode:?}\n{policy:?}\n{:?}\n{semantic_ratio:?}\n{filter:?}\n{offset}\n{per_page}",
        p.seed
    );
    let (record, budget) = state.admit_page(&method, &headers, ip.map(|i| i.0 .0), &asked);
    let req = SearchRequest {
        query,
        filter,
        mode,
        policy,
        seed: p.seed,
        semantic_ratio,
        offset,
        limit: per_page,
        facets: p.facets.unwrap_or(false),
        // A HEAD request (axum answers it with this handler) shows nobody
        // a page: never exposure; repeats and pages past the client's
        // budget neither (the gate).
        record,
        exposed: None,
        abandoned: Some(abandoned.0.clone()),
    };
    let depth = state.engine.depth(&req);
    let resp = state.run_search(move |e| e.search(&req)).await?;
    let end = depth.map_or(resp.total, |d| resp.total.min(d));
    let mut out = HeaderMap::new();
    if let Some(b) = budget {
        crate::gate::budget_headers(&mut out, state.config.recorded_pages_per_minute, &b);
    }
    Ok((
        out,
        Json(SearchPage::new(resp, page, per_page, offset, end, explain)),
    ))
}

impl SearchPage {
    /// The API's page of an engine answer: page `page` of `per_page` hits
    /// starting at `offset`, the results ending at `end` (for `next_page`),
    /// every score part when `explain`. `hubsearch search --json` prints the
    /// same page.
    pub fn new(
        resp: hubsearch_engine::SearchResponse,
        page: usize,
        per_page: usize,
        offset: usize,
        end: usize,
        explain: bool,
    ) -> SearchPage {
        let next = next_page(page, offset, resp.hits.len(), end);
        SearchPage {
            query: resp.query,
            mode: resp.mode.as_str().to_string(),
            policy: resp.policy,
            page,
            per_page,
            next_page: next,
            total: resp.total,
            total_exact: resp.total_exact,
            matched_all_words: resp.matched_all_words,
            page_id: resp.page_id,
            unknown_words: resp.unknown_words,
            took_ms: resp.took_ms,
            hits: hit_dtos(resp.hits, explain),
            facets: resp
                .facets
                .into_iter()
                .map(|(k, v)| {
                    let values = v
                        .into_iter()
                        .map(|(value, count)| FacetValue { value, count })
                        .collect();
                    (k, values)
                })
                .collect(),
        }
    }
}

/// `GET /v1/models/{id}/similar`: the page size (and the filters).
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// How many models (past search.max_limit it is read as it).
    #[param(minimum = 1)]
    pub per_page: Option<usize>,
    /// Add every score part to each hit.
    pub explain: Option<bool>,
}

/// Models like this one: the nearest cards to its vector, filters
/// honoured, the model itself left out (docs/retrieval.md, Similar models).
/// Routed through `/v1/models/{*id}`: `get_model` answers ids ending in
/// `/similar` with this.
#[utoipa::path(get, path = "/v1/models/{id}/similar", tag = "search",
    params(("id" = String, Path, description = "The model's id, `namespace/name`"), SimilarParams, FilterParams),
    responses(
        (status = 200, description = "The nearest models", body = SimilarPage),
        (status = 400, description = "A bad parameter, or vector search disabled", body = ErrorBody),
        (status = 404, description = "No such model (model_not_found)", body = ErrorBody),
    ))]
pub async fn similar(
    state: AppState,
    id: String,
    p: SimilarParams,
    f: Filter,
) -> Result<Json<SimilarPage>, ApiError> {
    let limit = page_size(&state, p.per_page);
    let explain = p.explain.unwrap_or(false);
    let resp = state.run_search(move |e| e.similar(&id, &f, limit)).await?;
    Ok(Json(SimilarPage {
        model: resp.query,
        took_ms: resp.took_ms,
        hits: hit_dtos(resp.hits, explain),
    }))
}

/// `GET /v1/listings`' own parameters (the filters are [`FilterParams`]).
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListingParams {
    /// trending (default; most downloaded), calls, newest, price, likes,
    /// updated or fair.
    #[param(inline, value_type = Option<ListingSort>)]
    pub sort: Option<String>,
    /// 1-based page number.
    #[param(minimum = 1)]
    pub page: Option<usize>,
    /// Hits per page (past search.max_limit it is read as it).
    #[param(minimum = 1)]
    pub per_page: Option<usize>,
    /// Add every score part to each hit.
    pub explain: Option<bool>,
}

/// Ranked browsing without a query: `ETag` and `Cache-Control` (a fair
/// listing is `no-store`), pages by `page`/`per_page`.
#[utoipa::path(get, path = "/v1/listings", tag = "search",
    params(ListingParams, FilterParams),
    responses(
        (status = 200, description = "A page of the listing", body = ListingPage),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "A bad parameter (invalid_sort, invalid_filter, ...)", body = ErrorBody),
    ))]
pub async fn listings(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    ip: Option<axum::Extension<ClientIp>>,
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
    // Only a fair listing records its page (through the gate, like search).
    let (record, budget) = if sort == ListingSort::Fair {
        let asked = format!("listing\n{f:?}\n{offset}\n{limit}");
        state.admit_page(&method, &headers, ip.map(|i| i.0 .0), &asked)
    } else {
        (false, None)
    };
    let resp = state
        .run_search(move |e| e.listing(&f, sort, offset, limit, record))
        .await?;
    let next = next_page(page, offset, resp.hits.len(), resp.total);
    let body = ListingPage {
        sort: sort.as_str().to_string(),
        page,
        per_page,
        next_page: next,
        total: resp.total,
        hits: hit_dtos(resp.hits, explain),
    };
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
        if let Some(b) = budget {
            let per_minute = state.config.recorded_pages_per_minute;
            crate::gate::budget_headers(out.headers_mut(), per_minute, &b);
        }
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
