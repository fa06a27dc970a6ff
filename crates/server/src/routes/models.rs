//! `GET/PUT/DELETE /v1/models/{id}`, `POST /v1/models`: reading and
//! publishing cards. Writes need an API key; a builder's key may change only
//! that builder's models, an admin key any.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use hubsearch_core::{record, ModelCard};
use hubsearch_engine::catalog::{etag, is_valid_id, IfMatch};
use hubsearch_engine::Publisher;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::responses::{BodyErrors, NamespaceErrors};
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::keys::{Principal, Verdict};
use crate::{AppState, Work};

/// The caller's key, checked from the headers before any body is read: a
/// client without a valid key never gets a request body buffered.
pub struct Caller(pub Principal);

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(state, &parts.headers).map(Caller)
    }
}

/// The key an `Authorization: Bearer <key>` header carries.
/// A write's `If-Match` header, parsed (docs/api.md, Conditional writes);
/// one left blank is one left out, as blank query parameters are.
fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(v) = headers
        .get(axum::http::header::IF_MATCH)
        .filter(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
    else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| {
        ApiError::new(
            Code::InvalidParameter,
            "If-Match: not visible ASCII; send `*` or quoted entity tags",
        )
    })?;
    Ok(Some(IfMatch::parse(v)?))
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme name is case-insensitive (RFC 9110, 11.1).
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
}

/// The key's holder, or 401.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let key = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    match state.keys.check(key) {
        Verdict::Valid(p) => Ok(p),
        Verdict::Revoked => Err(ApiError::new(
            Code::KeyRevoked,
            "this API key was revoked; ask the hub's operator for a new one",
        )),
        Verdict::Unknown => Err(ApiError::unauthorized()),
    }
}

/// The fields a publisher may set (with [`SERVER_FIELDS`], what the card
/// reader reads).
#[rustfmt::skip]
const PUBLISHER_FIELDS: &[&str] = &[
    "id", "modelId", "name", "builder", "author", "task", "pipeline_tag", "library",
    "library_name", "frameworks", "model_type", "languages", "license", "tags", "datasets",
    "architectures", "description", "card_text", "cardText", "cardData", "price_usd",
];

/// Fields only the hub sets: popularity comes from its own records (imports
/// by an admin, the ledger's verified calls), dates from its clock.
#[rustfmt::skip]
const SERVER_FIELDS: &[&str] = &[
    "downloads", "likes", "paid_calls", "created_at", "createdAt", "updated_at",
    "last_modified", "lastModified",
];

/// The longest card text a publisher sends, in characters (the reader's
/// limit is in bytes, and a character is at most 4).
pub const MAX_PUBLISHED_TEXT_CHARS: usize = hubsearch_core::record::MAX_CARD_BYTES / 4;

/// The owner of an id: its namespace (`acme/x` -> `acme`); `None` for an
/// un-namespaced id, which only an admin key may publish.
fn namespace(id: &str) -> Option<&str> {
    id.split_once('/').map(|(ns, _)| ns)
}

/// Whether the key may change the model with this id: an admin key any, a
/// builder's key only ids in its own namespace.
fn may_write(p: &Principal, id: &str) -> Result<(), ApiError> {
    if p.admin || (namespace(id).is_some() && namespace(id) == p.builder.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this key may only change models in its own namespace ({}/...), not {id:?}",
            p.builder.as_deref().unwrap_or("-")
        )))
    }
}

/// `{id}/similar` is the similar-models page (GET only): no card is
/// published under a name `similar` in a namespace, and other methods on
/// such a path are a 405 naming GET.
fn similar_page(id: &str) -> bool {
    id.ends_with("/similar")
}

/// `OPTIONS /v1/models/{id}`: the methods the path answers (GET only for a
/// similar-models page).
pub async fn options(ApiPath(id): ApiPath<String>) -> axum::response::Response {
    let allow = if similar_page(&id) {
        "GET,HEAD"
    } else {
        "GET,HEAD,PUT,DELETE"
    };
    (
        StatusCode::OK,
        [(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static(allow),
        )],
    )
        .into_response()
}

/// The 405 for a method other than GET on a similar-models page.
fn get_only(id: &str, method: &str) -> axum::response::Response {
    let mut r = ApiError::new(
        Code::MethodNotAllowed,
        format!(
            "/v1/models/{id} is the similar-models page of {}: GET only, not {method}",
            id.trim_end_matches("/similar")
        ),
    )
    .into_response();
    r.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static("GET,HEAD"),
    );
    r
}

/// The id rule (`hubsearch_engine::catalog::is_valid_id`, and no name
/// `similar` in a namespace: that path is the similar-models page),
/// checked before a write queues.
fn check_id(id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) && !similar_page(id) {
        Ok(())
    } else {
        Err(hubsearch_engine::Error::InvalidId { id: id.to_string() }.into())
    }
}

/// Parse and check a published card: known fields only, a valid id in the
/// key's namespace, the builder its namespace, and (for a builder's key) no
/// field the hub owns.
fn card_from_body(
    who: &Principal,
    body: &Value,
    id_from_path: Option<&str>,
) -> Result<ModelCard, ApiError> {
    let mut v = body.clone();
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::new(Code::InvalidCard, "a card is a JSON object"));
    };
    let known = |k: &str| PUBLISHER_FIELDS.contains(&k) || SERVER_FIELDS.contains(&k);
    if let Some(unknown) = obj.keys().find(|k| !known(k)) {
        let fields = [PUBLISHER_FIELDS, SERVER_FIELDS].concat().join(", ");
        return Err(ApiError::new(
            Code::InvalidCard,
            format!("unknown field {unknown:?} (a card has: {fields})"),
        ));
    }
    if id_from_path.is_none() && obj.contains_key("id") && obj.contains_key("modelId") {
        return Err(ApiError::new(
            Code::InvalidCard,
            "give the id as `id` or as `modelId`, not both",
        ));
    }
    if let Some(id) = id_from_path {
        // On PUT the path names the card; a body id (either name) may only
        // repeat it.
        for key in ["id", "modelId"] {
            match obj.get(key) {
                None => {}
                Some(Value::String(other)) if other == id => {}
                Some(Value::String(other)) => {
                    return Err(ApiError::new(
                        Code::IdMismatch,
                        format!("the body's {key} {other:?} differs from the path's {id:?}"),
                    ))
                }
                Some(_) => {
                    return Err(ApiError::new(
                        Code::InvalidCard,
                        format!("{key} must be a string (the path's id)"),
                    ))
                }
            }
        }
        obj.remove("modelId");
        obj.insert("id".into(), Value::String(id.to_string()));
    }
    for key in ["card_text", "cardText"] {
        let chars = obj
            .get(key)
            .and_then(Value::as_str)
            .map(|t| t.chars().count());
        if chars.is_some_and(|n| n > MAX_PUBLISHED_TEXT_CHARS) {
            return Err(ApiError::new(
                Code::InvalidCard,
                format!("{key} is longer than {MAX_PUBLISHED_TEXT_CHARS} characters"),
            ));
        }
    }
    let text = serde_json::to_string(&v).map_err(ApiError::internal)?;
    let card =
        record::parse_json(&text).map_err(|e| ApiError::new(Code::InvalidCard, e.to_string()))?;
    if !who.admin {
        let set_by_hub = body
            .as_object()
            .and_then(|o| o.keys().find(|k| SERVER_FIELDS.contains(&k.as_str())));
        if let Some(f) = set_by_hub {
            return Err(ApiError::new(
                Code::ReadOnlyField,
                format!("{f:?} is set by the hub, not by the publisher"),
            ));
        }
    }
    check_id(&card.id)?;
    may_write(who, &card.id)?;
    if !who.admin && namespace(&card.id) != Some(card.builder.as_str()) {
        return Err(ApiError::forbidden(format!(
            "the builder of {:?} is its namespace, not {:?}",
            card.id, card.builder
        )));
    }
    Ok(card)
}

/// A card as a publisher writes it (`POST /v1/models`, `PUT
/// /v1/models/{id}`): the reader also takes the Hugging Face names in
/// brackets. Unknown fields are an error; the fields the hub sets
/// (`downloads`, `likes`, `paid_calls`, dates) need an admin key.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CardInput {
    /// `name` or `namespace/name` (`modelId`); the path's id on PUT.
    id: Option<String>,
    name: Option<String>,
    /// The namespace, for a builder's key (`author`).
    builder: Option<String>,
    /// Pipeline tag (`pipeline_tag`).
    task: Option<String>,
    /// (`library_name`)
    library: Option<String>,
    frameworks: Option<Vec<String>>,
    model_type: Option<String>,
    languages: Option<Vec<String>>,
    license: Option<String>,
    tags: Option<Vec<String>>,
    datasets: Option<Vec<String>>,
    architectures: Option<Vec<String>>,
    description: Option<String>,
    /// The model card's text (`cardText`).
    card_text: Option<String>,
    /// Hugging Face `cardData` (language, license, tags, datasets, ...).
    #[schema(value_type = Option<Object>, rename = "cardData")]
    card_data: Option<()>,
    /// Price per paid call in USD; absent = free.
    price_usd: Option<f64>,
    /// Admin only.
    downloads: Option<u64>,
    /// Admin only.
    likes: Option<u64>,
    /// Admin only.
    paid_calls: Option<u64>,
    /// Admin only (RFC 3339).
    created_at: Option<String>,
    /// Admin only (RFC 3339).
    last_modified: Option<String>,
}

/// One model, its exposure and its paid calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelPage {
    pub model: ModelCard,
    pub exposure: hubsearch_ledger::Tally,
    pub calls: hubsearch_ledger::Earnings,
}

/// A published card, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub model: ModelCard,
}

/// One model with its exposure and paid calls (ids may hold a `/`; an id
/// ending in `/similar` that is no model is the similar-models page).
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models",
    params(("id" = String, Path, description = "The model's id, `namespace/name`")),
    responses(
        (status = 200, description = "The model", body = ModelPage,
            headers(("ETag" = String, description = "The card's entity tag, for If-Match on PUT and DELETE"))),
        (status = 404, description = "No such model (model_not_found)", body = ErrorBody),
    ))]
pub async fn get_model(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    uri: axum::http::Uri,
) -> Result<axum::response::Response, ApiError> {
    // `{id}/similar` is the similar-models page, unless a model has that id.
    if let Some(base) = id.strip_suffix("/similar") {
        if !state.engine.has_model(&id) {
            let crate::extract::Filtered(p, f) = crate::extract::split_filtered::<
                super::search::SimilarParams,
            >(uri.query().unwrap_or(""))?;
            return Ok(super::search::similar(state, base.to_string(), p, f)
                .await?
                .into_response());
        }
    }
    state
        .run_blocking(Work::Read, move |e| {
            let m = e.model_record(&id)?;
            let tag = etag(&m.card);
            Ok((
                [(axum::http::header::ETAG, tag)],
                Json(ModelPage {
                    model: m.card,
                    exposure: m.exposure,
                    calls: m.calls,
                }),
            )
                .into_response())
        })
        .await
}

/// Publish a model card. A builder's key publishes in its own namespace;
/// an admin key anywhere.
#[utoipa::path(post, path = "/v1/models", tag = "models",
    request_body = CardInput,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Published", body = Published),
        (status = 400, description = "A bad card (invalid_card, invalid_id, read_only_field, invalid_json)", body = ErrorBody),
        BodyErrors,
        (status = 401, description = "No valid key (unauthorized)", body = ErrorBody),
        (status = 403, description = "Not this key's namespace (forbidden)", body = ErrorBody),
        (status = 409, description = "The id exists (model_exists)", body = ErrorBody),
        (status = 503, description = "Writes shed or the cluster log unavailable", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let card = card_from_body(&who, &body, None)?;
    state
        .run_blocking(Work::Write, move |e| {
            let card = e.create_model(card)?;
            Ok((StatusCode::CREATED, Json(Published { model: card })))
        })
        .await
}

/// Replace (or create) a model card; the hub's counts stay for a
/// builder's key.
#[utoipa::path(put, path = "/v1/models/{id}", tag = "models",
    params(("id" = String, Path, description = "The model's id, `namespace/name`"),
        ("If-Match" = Option<String>, Header, description = "Replace only if the card is this version: an ETag from GET (or `*`: only if it exists); else 412 precondition_failed")),
    request_body = CardInput,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Replaced", body = Published,
            headers(("ETag" = String, description = "The stored card's entity tag"))),
        (status = 201, description = "Created", body = Published,
            headers(("ETag" = String, description = "The stored card's entity tag"))),
        (status = 412, description = "If-Match names another version (precondition_failed)", body = ErrorBody),
        (status = 400, description = "A bad card (invalid_card, id_mismatch, ...)", body = ErrorBody),
        BodyErrors,
        NamespaceErrors,
    ))]
pub async fn replace(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Result<ApiJson<Value>, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    if similar_page(&id) {
        return Ok(get_only(&id, "PUT"));
    }
    let pre = if_match(&headers)?;
    let ApiJson(body) = body?;
    let card = card_from_body(&who, &body, Some(&id))?;
    let by = if who.admin {
        Publisher::Admin
    } else {
        Publisher::Builder
    };
    state
        .run_blocking(Work::Write, move |e| {
            let (card, created) = e.replace_model_if(card, by, pre.as_ref())?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            // The tag of the card as stored (read back: the index keeps it
            // as the next GET gives it).
            let tag = e.get(&card.id).map(|c| etag(&c)).unwrap_or_default();
            Ok((
                status,
                [(axum::http::header::ETAG, tag)],
                Json(Published { model: card }),
            )
                .into_response())
        })
        .await
}

/// Delete a model.
#[utoipa::path(delete, path = "/v1/models/{id}", tag = "models",
    params(("id" = String, Path, description = "The model's id, `namespace/name`"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the card is this version: an ETag from GET (or `*`); else 412 precondition_failed")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A malformed If-Match (invalid_parameter)", body = ErrorBody),
        (status = 412, description = "If-Match names another version (precondition_failed)", body = ErrorBody),
        NamespaceErrors,
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let pre = if_match(&headers)?;
    state
        .run_blocking(Work::Write, move |e| {
            if similar_page(&id) && e.get(&id).is_err() {
                return Ok(get_only(&id, "DELETE"));
            }
            may_write(&who, &id)?;
            e.get(&id)?;
            e.delete_model_if(&id, pre.as_ref())?;
            Ok(StatusCode::NO_CONTENT.into_response())
        })
        .await
}
