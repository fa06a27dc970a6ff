//! `GET/PUT/DELETE /v1/models/{id}`, `POST /v1/models`: reading and
//! publishing cards. Writes need an API key; a builder's key may change only
//! that builder's models, an admin key any.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hubsearch_core::card::key_of;
use hubsearch_core::{record, Group, ModelCard};
use serde_json::Value;

use crate::error::{ApiError, Code};
use crate::extract::ApiJson;
use crate::keys::Principal;
use crate::AppState;

/// The key's holder, or 401.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    state.keys.verify(key).ok_or_else(ApiError::unauthorized)
}

fn may_write(p: &Principal, builder: &str) -> Result<(), ApiError> {
    if p.admin || p.builder.as_deref() == Some(builder) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this key may not change models of builder {builder:?}"
        )))
    }
}

fn now() -> String {
    hubsearch_core::card::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

/// Parse and validate a card body, keeping what only the hub may set.
fn card_from_body(body: &Value, id_from_path: Option<&str>) -> Result<ModelCard, ApiError> {
    let mut v = body.clone();
    if let (Some(id), Some(obj)) = (id_from_path, v.as_object_mut()) {
        match obj.get("id").and_then(Value::as_str) {
            Some(other) if other != id => {
                return Err(ApiError::new(
                    Code::IdMismatch,
                    format!("the body's id {other:?} differs from the path's {id:?}"),
                ))
            }
            _ => {
                obj.insert("id".into(), Value::String(id.to_string()));
            }
        }
    }
    let text = serde_json::to_string(&v).map_err(ApiError::internal)?;
    record::parse_json(&text).map_err(|e| ApiError::new(Code::InvalidCard, e.to_string()))
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .run_blocking(move |e| {
            let card = e.get(&id)?;
            let tally = e.ledger().tally_of(key_of(&card.id), Group::Model);
            let earnings = e.ledger().earnings_of(key_of(&card.id), Group::Model);
            Ok(Json(serde_json::json!({
                "model": card,
                "exposure": tally,
                "calls": earnings,
            })))
        })
        .await
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = authenticate(&state, &headers)?;
    let mut card = card_from_body(&body, None)?;
    may_write(&who, &card.builder)?;
    let stamp = now();
    card.created_at.get_or_insert_with(|| stamp.clone());
    card.updated_at = Some(stamp);
    card.paid_calls = 0;
    state
        .run_blocking(move |e| {
            if e.text_index()
                .get(&card.id)
                .map_err(|x| ApiError::from(hubsearch_engine::Error::from(x)))?
                .is_some()
            {
                return Err(ApiError::new(
                    Code::ModelExists,
                    format!(
                        "{} exists; use PUT /v1/models/{} to replace it",
                        card.id, card.id
                    ),
                ));
            }
            e.publish(card.clone())?;
            Ok((
                StatusCode::CREATED,
                Json(serde_json::json!({"model": card})),
            ))
        })
        .await
}

pub async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = authenticate(&state, &headers)?;
    let mut card = card_from_body(&body, Some(&id))?;
    may_write(&who, &card.builder)?;
    state
        .run_blocking(move |e| {
            let old = e
                .text_index()
                .get(&card.id)
                .map_err(|x| ApiError::from(hubsearch_engine::Error::from(x)))?;
            if let Some((_, old)) = &old {
                // Changing the owner needs the old owner's (or an admin's) key too.
                may_write(&who, &old.builder)?;
                card.created_at = old.created_at.clone();
                card.paid_calls = old.paid_calls;
            }
            card.updated_at = Some(now());
            let created = e.publish(card.clone())?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(serde_json::json!({"model": card}))))
        })
        .await
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let who = authenticate(&state, &headers)?;
    state
        .run_blocking(move |e| {
            let card = e.get(&id)?;
            may_write(&who, &card.builder)?;
            e.delete_model(&id)?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}
