//! Extractors that answer malformed input in our error format.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// `Query<T>` whose rejection is `400 invalid_parameter`. A parameter
/// left blank (`?limit=`, as an HTML form sends an empty field) is the same
/// as one left out (docs/api.md).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let segments = given(parts.uri.query().unwrap_or(""));
        parse_named(&segments, Code::InvalidParameter).map(ApiQuery)
    }
}

/// The query string's `key=value` segments, blank values left out.
fn given(query: &str) -> Vec<&str> {
    query
        .split('&')
        .filter(|seg| {
            form_urlencoded::parse(seg.as_bytes())
                .next()
                .is_some_and(|(_, v)| !v.is_empty())
        })
        .collect()
}

/// A /v1 read's own parameters `T` and the shared filters
/// ([`crate::filters::FilterParams`]) from one query string; repeated keys
/// are lists. Unknown keys (in neither) and bad values are `400
/// invalid_parameter` (`invalid_filter` for filter values).
pub struct Filtered<T>(pub T, pub hubsearch_core::Filter);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Filtered<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        split_filtered(parts.uri.query().unwrap_or(""))
    }
}

/// The work of [`Filtered`]: split the raw `key=value` segments by their
/// (decoded) key into the route's own and the filters', then parse each
/// part once. A blank parameter is as if left out.
pub fn split_filtered<T: DeserializeOwned>(query: &str) -> Result<Filtered<T>, ApiError> {
    let (mut own, mut filters) = (Vec::new(), Vec::new());
    for seg in given(query) {
        let key = form_urlencoded::parse(seg.as_bytes())
            .next()
            .map(|(k, _)| k)
            .unwrap_or_default();
        if crate::filters::FILTER_KEYS.contains(&key.as_ref()) {
            filters.push(seg);
        } else {
            own.push(seg);
        }
    }
    let own: T = parse_named(&own, Code::InvalidParameter)?;
    let filters: crate::filters::FilterParams = parse_named(&filters, Code::InvalidFilter)?;
    Ok(Filtered(own, filters.into_filter()?))
}

/// Parse raw query-string segments as `X`; on a bad value, name the
/// parameter (serde's message does not): the first segment that fails on
/// its own for a reason other than a missing field.
fn parse_named<X: DeserializeOwned>(segments: &[&str], code: Code) -> Result<X, ApiError> {
    serde_html_form::from_str(&segments.join("&")).map_err(|e| {
        let culprit = segments.iter().find(|seg| {
            serde_html_form::from_str::<X>(seg)
                .is_err_and(|e| !e.to_string().starts_with("missing field"))
        });
        match culprit.and_then(|seg| form_urlencoded::parse(seg.as_bytes()).next()) {
            Some((k, v)) => ApiError::new(code, format!("{k}={v:?}: {e}")),
            None => ApiError::new(code, e.to_string()),
        }
    })
}

/// `Path<T>` whose rejection (e.g. a segment that is not UTF-8 once
/// percent-decoded) is `400 invalid_path`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::new(Code::InvalidPath, e.body_text()))
    }
}

/// `Json<T>` whose rejection is `400 invalid_json` (or `413 body_too_large`).
pub struct ApiJson<T>(pub T);

/// How long a route may wait for a request body (`server.body_read_timeout_ms`),
/// set on every request by the router.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline(pub std::time::Duration);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // One deadline for the whole body: a client trickling a byte at a
        // time cannot hold the connection and its buffer (a per-read
        // timeout would be reset by every byte).
        let wait = req
            .extensions()
            .get::<BodyDeadline>()
            .map_or(std::time::Duration::from_secs(10), |d| d.0);
        let read = axum::Json::<T>::from_request(req, state);
        let Ok(read) = tokio::time::timeout(wait, read).await else {
            return Err(ApiError::new(
                Code::BodyTimeout,
                format!(
                    "the request body did not arrive within {} ms",
                    wait.as_millis()
                ),
            ));
        };
        match read {
            Ok(j) => Ok(ApiJson(j.0)),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(Code::BodyTooLarge, e.body_text()))
            }
            Err(e) => Err(ApiError::new(Code::InvalidJson, e.body_text())),
        }
    }
}
