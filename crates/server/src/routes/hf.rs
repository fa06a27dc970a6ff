//! `GET /api/models` and `GET /api/models/{id}`: the Hugging Face Hub API's
//! model listing, so `huggingface_hub.HfApi(endpoint=...).list_models(...)`
//! works against hubsearch. Supports `search` (ids containing it, as on the
//! Hub), `author`, `filter` (repeatable, comma-separated: tags the model
//! must all carry, as the Hub writes them), `pipeline_tag`, `gated`, `sort`
//! (downloads, trendingScore = downloads, likes, lastModified, createdAt),
//! `direction`, `limit`, `full`, `cardData`, `expand` (the properties kept),
//! and pagination by `Link: <...>;
//! rel="next"` (scheme from `X-Forwarded-Proto`); any other parameter is a
//! 400. `model_info` answers `/api/models/{id}` and `/revision/main`; a
//! missing model or revision carries `X-Error-Code` as the Hub does.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hubsearch_core::ListingSort;
use hubsearch_core::{FacetFilter, Filter, ModelCard};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::ApiPath;
use crate::{percent_encode, AppState, Work};

/// Decode `a=b&c=d` with percent-escapes and `+` for space.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn hf_time(s: &Option<String>) -> Value {
    match s.as_deref().and_then(hubsearch_core::card::unix_seconds) {
        Some(t) => {
            let base = hubsearch_core::card::rfc3339(t);
            Value::String(base.trim_end_matches('Z').to_string() + ".000Z")
        }
        None => Value::Null,
    }
}

/// A model as the Hugging Face Hub API writes it (`ModelInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HfModel {
    #[serde(rename = "_id")]
    pub internal_id: String,
    pub id: String,
    pub model_id: String,
    pub author: String,
    pub likes: u64,
    pub downloads: u64,
    pub private: bool,
    /// Tags as the Hub writes them (docs/api.md, Tags).
    pub tags: Vec<String>,
    #[serde(rename = "pipeline_tag")]
    pub pipeline_tag: Option<String>,
    #[serde(rename = "library_name")]
    pub library_name: Option<String>,
    /// When the card says (never made up).
    pub created_at: Option<String>,
    /// With `full=true` (and on model_info).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<Option<String>>,
    /// With `full=true`: always empty here (no files are kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siblings: Option<Vec<Object>>,
    /// With `cardData=true` or `full=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_data: Option<HfCardData>,
}

/// No fields (a sibling file; none are kept).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Object {}

/// The card's metadata as the Hub's `cardData`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HfCardData {
    pub language: Vec<String>,
    pub license: Option<String>,
    pub tags: Vec<String>,
    pub datasets: Vec<String>,
    pub pipeline_tag: Option<String>,
}

fn hf_time_str(s: &Option<String>) -> Option<String> {
    match hf_time(s) {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn item(c: &ModelCard, full: bool, card_data: bool) -> HfModel {
    HfModel {
        internal_id: c.id.clone(),
        id: c.id.clone(),
        model_id: c.id.clone(),
        author: c.builder.clone(),
        likes: c.likes,
        downloads: c.downloads,
        private: false,
        tags: c.hub_tags(),
        pipeline_tag: c.task.clone(),
        library_name: c.library.clone(),
        created_at: hf_time_str(&c.created_at),
        last_modified: full.then(|| hf_time_str(&c.last_modified)),
        siblings: full.then(Vec::new),
        card_data: (card_data || full).then(|| HfCardData {
            language: c.languages.clone(),
            license: c.license.clone(),
            tags: c.tags.clone(),
            datasets: c.datasets.clone(),
            pipeline_tag: c.task.clone(),
        }),
    }
}

/// `list_models`' parameters that hubsearch honours (the handler reads the
/// raw query: `filter` repeats; any other parameter is a 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct HfListParams {
    /// Every model whose id contains this text, ignoring case (all pages).
    search: Option<String>,
    /// The id's namespace.
    author: Option<String>,
    /// Tags the model must all carry (repeat, or separate by commas).
    #[param(style = Form, explode)]
    filter: Option<Vec<String>>,
    /// The model's pipeline tag.
    pipeline_tag: Option<String>,
    /// No model here is gated: true lists nothing.
    gated: Option<bool>,
    /// The order: `downloads` (default; `trendingScore` is the same here),
    /// `likes`, `lastModified`, `createdAt` (snake_case forms too).
    #[param(schema_with = sort_schema)]
    sort: Option<String>,
    /// -1 descending (default), 1 ascending.
    #[param(schema_with = direction_schema)]
    direction: Option<i32>,
    /// Models per page (at most search.max_limit; 0 is read as 1).
    limit: Option<usize>,
    /// Add lastModified, siblings and cardData (ignored with `expand`).
    full: Option<bool>,
    /// Add cardData (ignored with `expand`).
    #[serde(rename = "cardData")]
    #[param(rename = "cardData")]
    card_data: Option<bool>,
    /// Only these properties (besides `_id` and `id`), as on the Hub
    /// (repeat, or separate by commas); with `expand`, `full` and
    /// `cardData` are ignored.
    #[param(style = Form, explode, schema_with = expand_schema)]
    expand: Option<Vec<String>>,
    /// Accepted and ignored as on the Hub (config is not listed).
    config: Option<bool>,
    /// The next page (from the `Link` header): an offset; blank is the
    /// first page.
    #[param(pattern = "^[0-9]{0,15}$")]
    cursor: Option<String>,
}

/// The values `sort` takes (see [`listing_sort`]).
const SORTS: [&str; 9] = [
    "downloads",
    "trending",
    "trendingScore",
    "trending_score",
    "likes",
    "lastModified",
    "last_modified",
    "createdAt",
    "created_at",
];

fn sort_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(SORTS))
        .build()
}

fn direction_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some([-1, 1]))
        .build()
}

fn expand_schema() -> utoipa::openapi::Array {
    let item = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EXPANDABLE.iter().map(|(name, _)| *name)));
    utoipa::openapi::ArrayBuilder::new().items(item).build()
}

/// The Hugging Face Hub's model listing (`HfApi.list_models`): pages by
/// `Link: <...>; rel="next"`.
#[utoipa::path(get, path = "/api/models", tag = "hugging-face",
    params(HfListParams),
    responses(
        (status = 200, description = "Models; a `Link` header names the next page", body = Vec<HfModel>),
        (status = 400, description = "A parameter hubsearch cannot honour, or a bad value (invalid_parameter, invalid_sort, invalid_cursor)", body = ErrorBody),
    ))]
pub async fn list_models(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = parse_query(raw.as_deref().unwrap_or(""));
    check_params(&params)?;
    let expand = expand_of(&params)?;
    let max = state.engine.config().search.max_limit;
    let Some(q) = list_query(&params, max)? else {
        return Ok(Json(Vec::<HfModel>::new()).into_response());
    };
    let HfListQuery {
        filter,
        sort: listing_sort,
        reverse,
        offset,
        limit,
        full,
        card_data,
    } = q;
    // Tools' listings are exposure only when server.record_hf_api says so.
    let record = state.config.record_hf_api;
    let r = state
        .run_search(move |e| e.listing_in(&filter, listing_sort, reverse, offset, limit, record))
        .await?;
    let (cards, total): (Vec<ModelCard>, usize) =
        (r.hits.into_iter().map(|h| h.card).collect(), r.total);
    let next = offset.saturating_add(cards.len());
    let mut resp = match &expand {
        Some(keys) => {
            let items = cards
                .iter()
                .map(|c| expanded(c, keys))
                .collect::<Result<Vec<Value>, ApiError>>()?;
            Json(items).into_response()
        }
        None => {
            let items: Vec<HfModel> = cards.iter().map(|c| item(c, full, card_data)).collect();
            Json(items).into_response()
        }
    };
    if !cards.is_empty() && next < total {
        resp.headers_mut()
            .insert(header::LINK, next_link(&headers, &params, next)?);
    }
    Ok(resp)
}

/// Refuse a parameter the Hub has and hubsearch cannot honour, or one
/// neither knows.
fn check_params(params: &[(String, String)]) -> Result<(), ApiError> {
    for (k, _) in params {
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(u, _)| u == k) {
            return Err(ApiError::new(
                Code::InvalidParameter,
                format!("`{k}` is not supported by hubsearch's Hub API: {why}"),
            ));
        }
        if !SUPPORTED.contains(&k.as_str()) {
            return Err(ApiError::new(
                Code::InvalidParameter,
                format!(
                    "unknown parameter `{k}` (supported: {})",
                    SUPPORTED.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The `expand` properties hubsearch keeps (the Hub's names), and where
/// each is in a full item's JSON.
const EXPANDABLE: [(&str, &str); 11] = [
    ("author", "author"),
    ("cardData", "cardData"),
    ("createdAt", "createdAt"),
    ("downloads", "downloads"),
    ("lastModified", "lastModified"),
    ("library_name", "library_name"),
    ("likes", "likes"),
    ("pipeline_tag", "pipeline_tag"),
    ("private", "private"),
    ("siblings", "siblings"),
    ("tags", "tags"),
];

/// The properties `expand` asks for (repeated, or comma-separated), checked:
/// one hubsearch does not keep is a 400 naming it. With `expand`, `full` and
/// `cardData` are ignored (the Hub's client never sends both).
fn expand_of(params: &[(String, String)]) -> Result<Option<Vec<&'static str>>, ApiError> {
    let asked: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "expand")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    if asked.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for a in asked {
        match EXPANDABLE.iter().find(|(name, _)| *name == a) {
            Some((_, key)) => out.push(*key),
            None => {
                let kept: Vec<&str> = EXPANDABLE.iter().map(|(n, _)| *n).collect();
                return Err(ApiError::new(
                    Code::InvalidParameter,
                    format!(
                        "expand={a:?} is not kept by hubsearch (it keeps: {})",
                        kept.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(Some(out))
}

/// A model with `_id`, `id` and only the `expand`ed properties (the Hub's
/// answer to `expand`).
fn expanded(c: &ModelCard, keys: &[&str]) -> Result<Value, ApiError> {
    let full = serde_json::to_value(item(c, true, true)).map_err(ApiError::internal)?;
    let mut out = serde_json::Map::new();
    for k in ["_id", "id"].iter().chain(keys) {
        if let Some(v) = full.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// A checked `GET /api/models` query: what to list and how to show it.
struct HfListQuery {
    filter: Filter,
    sort: ListingSort,
    /// Ascending (`direction=1`).
    reverse: bool,
    offset: usize,
    limit: usize,
    full: bool,
    card_data: bool,
}

/// The first value of parameter `k`.
fn param(params: &[(String, String)], k: &str) -> Option<String> {
    params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone())
}

/// The listing a query asks for (at most `max` a page), `None` when it
/// lists nothing (`gated=true`), or the first bad value's error.
fn list_query(params: &[(String, String)], max: usize) -> Result<Option<HfListQuery>, ApiError> {
    let get = |k: &str| param(params, k);
    let flag = |k: &str| -> Result<bool, ApiError> {
        match get(k) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::new(
                Code::InvalidParameter,
                format!("{k} must be true or false, not {v:?}"),
            )),
        }
    };
    flag("config")?;
    // A limit past search.max_limit (however large) is read as it.
    let limit = match get("limit") {
        None => max,
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            l.parse::<usize>().unwrap_or(max).clamp(1, max)
        }
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidParameter,
                "limit must be a number",
            ))
        }
    };
    let offset = match get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| ApiError::new(Code::InvalidCursor, "bad cursor"))?,
    };
    let gated = flag("gated")?;
    let reverse = match get("direction").as_deref() {
        None | Some("-1") => false,
        Some("1") => true,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidParameter,
                format!("direction must be -1 (descending) or 1 (ascending), not {other:?}"),
            ))
        }
    };
    let sort = get("sort").map_or(Ok(ListingSort::Trending), |s| listing_sort(&s))?;
    let (full, card_data) = (flag("full")?, flag("cardData")?);
    // No model here is gated: gated=true lists nothing (once the rest of
    // the query is checked).
    if gated {
        return Ok(None);
    }
    Ok(Some(HfListQuery {
        filter: list_filter(params),
        sort,
        reverse,
        offset,
        limit,
        full,
        card_data,
    }))
}

/// The models a query selects: `author`, `pipeline_tag`, `filter` tags and
/// `search`.
fn list_filter(params: &[(String, String)]) -> Filter {
    let get = |k: &str| param(params, k);
    let mut filter = Filter::default();
    if let Some(a) = get("author").filter(|a| !a.is_empty()) {
        filter.builder = FacetFilter::is(a);
    }
    if let Some(t) = get("pipeline_tag").filter(|t| !t.is_empty()) {
        filter.task = FacetFilter::is(t);
    }
    // As on the Hub, every `filter` value is a tag the model must carry
    // (repeated or comma-separated: all of them), tags as the Hub writes
    // them (`ModelCard::hub_tags`: `dataset:squad`, `license:mit`, `en`,
    // `pytorch`, `text-classification`).
    for (k, v) in params {
        if k == "filter" {
            filter.tags.all.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_string),
            );
        }
    }
    // As on the Hub, `search` selects every model whose id contains it (all
    // pages), ordered by `sort`; hubsearch's ranked relevance is /v1/search.
    filter.id_contains = get("search").filter(|s| !s.trim().is_empty());
    filter
}

/// The listing order a Hub `sort` names.
fn listing_sort(sort: &str) -> Result<ListingSort, ApiError> {
    // hubsearch has no trending score of its own: trending is downloads.
    Ok(match sort {
        "downloads" | "trending" | "trendingScore" | "trending_score" => ListingSort::Trending,
        "likes" => ListingSort::Likes,
        "lastModified" | "last_modified" => ListingSort::Updated,
        "createdAt" | "created_at" => ListingSort::Newest,
        other => {
            return Err(ApiError::new(
                Code::InvalidSort,
                format!(
                    "cannot sort by {other:?} (downloads, trendingScore, likes, lastModified or createdAt)"
                ),
            ))
        }
    })
}

/// The `Link: <...>; rel="next"` value for the page from offset `next`:
/// the same query with `cursor=next`.
fn next_link(
    headers: &HeaderMap,
    params: &[(String, String)],
    next: usize,
) -> Result<HeaderValue, ApiError> {
    // The Host header is echoed only when it is a plain host[:port].
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1");
    let mut q: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "cursor")
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    q.push(format!("cursor={next}"));
    // Behind a TLS proxy the link keeps the scheme the client used.
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let link = format!(
        "<{scheme}://{host}/api/models?{}>; rel=\"next\"",
        q.join("&")
    );
    HeaderValue::from_str(&link).map_err(ApiError::internal)
}

/// `GET /api/models/{id}` and `GET /api/models/{id}/revision/{revision}`
/// (what `model_info(id, revision=...)` asks): hubsearch keeps one revision
/// per model, `main`.
#[utoipa::path(get, path = "/api/models/{id}", tag = "hugging-face",
    params(("id" = String, Path, description = "The model's id, `namespace/name`")),
    responses(
        (status = 200, description = "The model", body = HfModel),
        (status = 404, description = "No such model (`X-Error-Code: RepoNotFound`)", body = ErrorBody),
    ))]
pub async fn model_info(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<String>,
) -> Result<Json<HfModel>, ApiError> {
    let (id, revision) = match path.split_once("/revision/") {
        Some((id, rev)) => (id.to_string(), Some(rev.to_string())),
        None => (path, None),
    };
    state
        .run_blocking(Work::Read, move |e| {
            let card = e.get(&id)?;
            if let Some(rev) = revision.filter(|r| r != "main") {
                return Err(ApiError::new(
                    Code::RevisionNotFound,
                    format!("{id} has one revision, main, not {rev:?}"),
                ));
            }
            Ok(Json(item(&card, true, true)))
        })
        .await
}

/// `model_info(id, revision=...)`: the one revision is `main` (answered by
/// [`model_info`]; this function only documents the route).
#[utoipa::path(get, path = "/api/models/{id}/revision/{revision}", tag = "hugging-face",
    params(
        ("id" = String, Path, description = "The model's id, `namespace/name`"),
        ("revision" = String, Path, description = "main"),
    ),
    responses(
        (status = 200, description = "The model", body = HfModel),
        (status = 404, description = "No such model or revision (`X-Error-Code: RepoNotFound` / `RevisionNotFound`)", body = ErrorBody),
    ))]
#[allow(dead_code)]
pub fn model_info_revision() {}

/// Parameters `list_models` may send that hubsearch honours.
const SUPPORTED: [&str; 13] = [
    "expand",
    "search",
    "author",
    "filter",
    "pipeline_tag",
    "sort",
    "direction",
    "limit",
    "full",
    "cardData",
    "config",
    "cursor",
    "gated",
];

/// Parameters `list_models` may send that hubsearch cannot honour: a clear
/// 400, never a silently ignored filter.
const UNSUPPORTED: [(&str, &str); 4] = [
    ("apps", "no app metadata is kept"),
    ("inference", "no inference status is kept"),
    ("inference_provider", "no inference providers are kept"),
    ("num_parameters", "no parameter counts are kept"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_keeps_what_is_asked_and_names_what_is_not_kept() {
        let q = |s: &str| parse_query(s);
        assert_eq!(expand_of(&q("search=x")).unwrap(), None);
        assert_eq!(
            expand_of(&q("expand=downloads&expand=likes,createdAt")).unwrap(),
            Some(vec!["downloads", "likes", "createdAt"])
        );
        let e = expand_of(&q("expand=safetensors")).unwrap_err();
        assert!(e.message.contains("safetensors"), "{}", e.message);
        // With expand, full is ignored (not a refusal the document cannot state).
        assert_eq!(
            expand_of(&q("expand=downloads&full=true")).unwrap(),
            Some(vec!["downloads"])
        );
        assert!(expand_of(&q("expand=")).is_err());
        let c = ModelCard {
            id: "a/b".into(),
            builder: "a".into(),
            downloads: 7,
            likes: 2,
            ..Default::default()
        };
        let v = expanded(&c, &["downloads"]).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["_id", "downloads", "id"]);
        assert_eq!(v["downloads"], 7);
    }

    #[test]
    fn query_strings() {
        let p = parse_query("search=bert+base&filter=a%2Cb&filter=c&full&x=%zz");
        assert_eq!(p[0], ("search".into(), "bert base".into()));
        assert_eq!(p[1], ("filter".into(), "a,b".into()));
        assert_eq!(p[3], ("full".into(), "".into()));
        assert_eq!(p[4], ("x".into(), "%zz".into()));
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
