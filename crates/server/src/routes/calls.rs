//! `POST /v1/calls`: record a verified paid call. Paid calls come from the
//! hub's payment backend, which holds an admin key; a retried call with the
//! same idempotency key (body field or `Idempotency-Key` header) is counted
//! once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hubsearch_engine::PaidCall;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::models::authenticate;
use crate::error::{ApiError, ErrorBody};
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
    let call = PaidCall {
        idempotency_key: body.idempotency_key.or_else(|| {
            headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }),
        model: body.model,
        amount_usd: body.amount_usd,
        page_id: body.page_id,
        rank: body.rank,
    };
    // The call's own values are checked before it queues for a writer.
    state.engine.check_paid_call(&call)?;
    state
        .run_blocking(Work::Write, move |e| {
            let r = e.record_paid_call(call)?;
            let status = if r.recorded {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((
                status,
                Json(CallAnswer {
                    seq: r.seq,
                    recorded: r.recorded,
                    model: r.model,
                    builder: r.builder,
                    amount_usd: r.amount_usd,
                    builder_calls: r.builder_calls,
                    builder_income_usd: r.builder_income_usd,
                }),
            ))
        })
        .await
}
