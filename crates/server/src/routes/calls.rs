//! `POST /v1/calls`: record a verified paid call. Paid calls come from the
//! hub's payment backend, which holds an admin key; a retried call with the
//! same idempotency key (body field or `Idempotency-Key` header) is counted
//! once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hubsearch_core::card::key_of;
use hubsearch_core::Group;
use hubsearch_engine::ledger::CallOrigin;
use hubsearch_engine::CallRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::models::authenticate;
use crate::error::{ApiError, Code, ErrorBody};
use crate::extract::ApiJson;
use crate::{AppState, Work};

/// A verified paid call, as the hub's payment backend reports it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// The model called.
    pub model: String,
    /// USD paid, 0..=1000; defaults to the model's price.
    pub amount_usd: Option<f64>,
    /// 1 to 200 characters; a retry with the same key counts once (or the
    /// `Idempotency-Key` header).
    pub idempotency_key: Option<String>,
    /// The recorded search page the call came from (its `page_id`) and the
    /// hit's rank on it: both or neither.
    pub page_id: Option<u64>,
    pub rank: Option<u64>,
}

/// A recorded (or already recorded) paid call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallAnswer {
    /// The ledger's sequence number of the call.
    pub seq: u64,
    /// False when the idempotency key was seen before (counted once).
    pub recorded: bool,
    pub model: String,
    pub builder: String,
    pub amount_usd: f64,
    /// The builder's paid calls and income so far.
    pub builder_calls: u64,
    pub builder_income_usd: f64,
}

/// Record a verified paid call (the payment backend's admin key).
#[utoipa::path(post, path = "/v1/calls", tag = "calls",
    request_body = CallBody,
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Instead of the body's idempotency_key")),
    responses(
        (status = 201, description = "Recorded", body = CallAnswer),
        (status = 200, description = "Seen before under this key: counted once", body = CallAnswer),
        (status = 400, description = "A bad call (invalid_amount, invalid_idempotency_key, invalid_parameter, invalid_json)", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 409, description = "The key was used for another call (idempotency_key_reused)", body = ErrorBody),
    ))]
pub async fn record(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CallBody>,
) -> Result<(StatusCode, Json<CallAnswer>), ApiError> {
    let who = authenticate(&state, &headers)?;
    if !who.admin {
        return Err(ApiError::forbidden(
            "recording paid calls needs an admin key (the hub's payment backend)",
        ));
    }
    let idem = body.idempotency_key.clone().or_else(|| {
        headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    if idem.as_ref().is_some_and(|k| k.is_empty() || k.len() > 200) {
        return Err(ApiError::new(
            Code::InvalidIdempotencyKey,
            "an idempotency key has 1 to 200 characters",
        ));
    }
    if let Some(a) = body.amount_usd {
        if !(a.is_finite() && (0.0..=1000.0).contains(&a)) {
            return Err(ApiError::new(
                Code::InvalidAmount,
                "amount_usd must be between 0 and 1000",
            ));
        }
    }
    let origin = match (body.page_id, body.rank) {
        (None, None) => None,
        // In cluster mode page ids are the serving replica's (docs/cluster.md).
        (Some(page), Some(rank))
            if rank >= 1
                && (state.engine.replicator().is_some()
                    || page < state.engine.ledger().pages()) =>
        {
            Some(CallOrigin { page, rank })
        }
        _ => return Err(ApiError::new(
            Code::InvalidParameter,
            "page_id and rank go together: page_id a recorded page (a search's page_id), rank >= 1",
        )),
    };
    state
        .run_blocking(Work::Write, move |e| {
            let card = e.get(&body.model)?;
            let amount = body.amount_usd.unwrap_or(card.price_usd.unwrap_or(0.0));
            let out = e.record_call(CallRecord {
                model: key_of(&card.id),
                builder: key_of(&card.builder),
                model_id: card.id.clone(),
                builder_name: card.builder.clone(),
                amount_usd: amount,
                amount_stated: body.amount_usd.is_some(),
                idempotency_key: idem,
                origin,
            })?;
            let income = e
                .ledger()
                .earnings_of(key_of(&card.builder), Group::Builder);
            let status = if out.recorded {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((
                status,
                Json(CallAnswer {
                    seq: out.seq,
                    recorded: out.recorded,
                    model: card.id,
                    builder: card.builder,
                    amount_usd: amount,
                    builder_calls: income.calls,
                    builder_income_usd: income.income_usd,
                }),
            ))
        })
        .await
}
