//! `/v1/keys`: API keys for an admin (docs/api.md, Keys). Listing, making,
//! revoking and rotating keys over HTTP, as `hubsearch keys` does on the
//! machine; in cluster mode the changes go through the log, so a key made
//! or revoked on one replica holds on every replica (docs/cluster.md).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hubsearch_engine::keys::{KeyChange, KeyInfo, KeyStore, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::models::{bearer, Caller};
use super::responses::{AdminErrors, KeyPrefixErrors};
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::{AppState, Work};

/// A key to make: for a builder, or an admin key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The builder (an id's namespace) the key may publish for.
    #[serde(default)]
    pub builder: Option<String>,
    /// An admin key (any model, paid calls, keys).
    #[serde(default)]
    pub admin: bool,
}

/// A key just made: the key itself, shown this once, and how it is listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MadeKey {
    pub key: String,
    pub info: KeyInfo,
}

/// Apply `changes` (through the log in cluster mode), the last of which
/// adds `key`, and answer the new key with how it is listed.
fn made(
    e: &hubsearch_engine::Engine,
    changes: Vec<KeyChange>,
    key: String,
) -> Result<(StatusCode, Json<MadeKey>), ApiError> {
    e.change_keys(changes)?;
    let info = e
        .keys()
        .info_of(&key)
        .ok_or_else(|| ApiError::internal("a key just made is not in the store"))?;
    Ok((StatusCode::CREATED, Json(MadeKey { key, info })))
}

/// A request may not revoke or rotate the key it is made with: an admin
/// would lock themselves out (make another admin key and revoke this one
/// with it, or use `hubsearch keys` on the machine).
fn not_own_key(headers: &HeaderMap, change: &KeyChange) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(own) if change.revokes(own) => Err(ApiError::new(
            Code::KeyInUse,
            "this request is made with the key it would revoke: make another admin key and revoke this one with it",
        )),
        _ => Ok(()),
    }
}

/// Only an admin key manages keys.
fn admin_only(who: &Principal) -> Result<(), ApiError> {
    if who.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("managing API keys needs an admin key"))
    }
}

/// Every key (never the keys themselves: their first characters, holder,
/// dates).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Every key, oldest first", body = Vec<KeyInfo>),
        AdminErrors,
    ))]
pub async fn list_keys(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    admin_only(&who)?;
    Ok(Json(state.keys.list()))
}

/// Make a key for a builder (or an admin key).
#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body = NewKey,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Made: the key is shown this once", body = MadeKey),
        (status = 400, description = "A bad body (invalid_json, invalid_parameter)", body = ErrorBody),
        (status = 413, description = "The body is over server.max_body_bytes (body_too_large)", body = ErrorBody),
        AdminErrors,
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<MadeKey>), ApiError> {
    admin_only(&who)?;
    if let Some(b) = &body.builder {
        if b.contains('/') || !hubsearch_engine::catalog::is_valid_id(b) {
            return Err(ApiError::new(
                Code::InvalidParameter,
                format!("builder {b:?} is not a namespace (1 to 96 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit, no -- or ..)"),
            ));
        }
    }
    let builder = body.builder;
    if builder.is_none() && !body.admin {
        return Err(ApiError::new(
            Code::InvalidParameter,
            "a key is for a builder (\"builder\": NAME) or an admin key (\"admin\": true)",
        ));
    }
    let principal = Principal {
        builder,
        admin: body.admin,
    };
    let (key, change) = KeyStore::make(principal);
    state
        .run_blocking(Work::Write, move |e| made(e, vec![change], key))
        .await
}

/// Revoke the key these first characters (or the whole key) name: refused
/// from the next request on, on every replica.
#[utoipa::path(post, path = "/v1/keys/{prefix}/revoke", tag = "keys",
    params(("prefix" = String, Path, description = "The key's first characters as listed (or the whole key)")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Revoked", body = KeyInfo),
        AdminErrors,
        KeyPrefixErrors,
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiPath(prefix): ApiPath<String>,
) -> Result<Json<KeyInfo>, ApiError> {
    admin_only(&who)?;
    state
        .run_blocking(Work::Write, move |e| {
            let (mut info, change) = e.keys().revocation(&prefix)?;
            not_own_key(&headers, &change)?;
            if let KeyChange::Revoke { revoked_unix, .. } = &change {
                info.revoked_unix = Some(*revoked_unix);
            }
            e.change_keys(vec![change])?;
            Ok(Json(info))
        })
        .await
}

/// Replace the key these first characters name by a new one for the same
/// holder (the old one revoked in the same change).
#[utoipa::path(post, path = "/v1/keys/{prefix}/rotate", tag = "keys",
    params(("prefix" = String, Path, description = "The key's first characters as listed (or the whole key)")),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The new key, shown this once", body = MadeKey),
        AdminErrors,
        KeyPrefixErrors,
    ))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiPath(prefix): ApiPath<String>,
) -> Result<(StatusCode, Json<MadeKey>), ApiError> {
    admin_only(&who)?;
    state
        .run_blocking(Work::Write, move |e| {
            let (old, revoke) = e.keys().revocation(&prefix)?;
            not_own_key(&headers, &revoke)?;
            let (key, add) = KeyStore::make(Principal {
                builder: old.builder,
                admin: old.admin,
            });
            made(e, vec![revoke, add], key)
        })
        .await
}
