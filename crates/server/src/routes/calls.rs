//! `POST /v1/calls`: record a verified paid call. Paid calls come from the
//! hub's payment backend, which holds an admin key; a retried call with the
//! same idempotency key (body field or `Idempotency-Key` header) is counted
//! once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hubsearch_engine::{CallReceipt, PaidCall};

use super::models::Caller;
use super::responses::{AdminErrors, BodyErrors};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::{AppState, Work};

/// Record a verified paid call (the payment backend's admin key).
#[utoipa::path(post, path = "/v1/calls", tag = "calls",
    request_body = PaidCall,
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, description = "Instead of the body's idempotency_key: 1 to 200 characters")),
    responses(
        (status = 201, description = "Recorded", body = CallReceipt),
        (status = 200, description = "Seen before under this key: counted once", body = CallReceipt),
        (status = 400, description = "A bad call (invalid_amount, invalid_idempotency_key, invalid_parameter, invalid_json)", body = ErrorBody),
        BodyErrors,
        AdminErrors,
        (status = 404, description = "No such model (model_not_found) or no such recorded page (page_not_found)", body = ErrorBody),
        (status = 409, description = "The key was used for another call (idempotency_key_reused)", body = ErrorBody),
    ))]
pub async fn record(
    State(state): State<AppState>,
    headers: HeaderMap,
    Caller(who): Caller,
    ApiJson(mut call): ApiJson<PaidCall>,
) -> Result<(StatusCode, Json<CallReceipt>), ApiError> {
    if !who.admin {
        return Err(ApiError::forbidden(
            "recording paid calls needs an admin key (the hub's payment backend)",
        ));
    }
    // The header, when sent, is checked like the body's key (1 to 200
    // characters) whichever of the two is used.
    let header = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if (1..=200).contains(&k.chars().count()) => Some(k.to_string()),
            _ => {
                return Err(ApiError::new(
                    crate::error::Code::InvalidIdempotencyKey,
                    "the Idempotency-Key header has 1 to 200 visible ASCII characters",
                ))
            }
        },
    };
    if call.idempotency_key.is_none() {
        call.idempotency_key = header;
    }
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
            Ok((status, Json(r)))
        })
        .await
}
