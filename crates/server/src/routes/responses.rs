//! Error answers that several routes document alike, each set named once
//! and listed in their `utoipa::path` `responses(...)`. Documentation only:
//! the answers themselves are [`ApiError`](crate::error::ApiError)s, so no
//! variant is ever made.

#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::error::ErrorBody;

/// A JSON body that came too slowly or too large, or could not be stored.
#[derive(IntoResponses)]
pub enum BodyErrors {
    #[response(
        status = 408,
        description = "The body did not arrive within server.body_read_timeout_ms (body_timeout)"
    )]
    Timeout(ErrorBody),
    #[response(
        status = 413,
        description = "The body is over server.max_body_bytes (body_too_large)"
    )]
    TooLarge(ErrorBody),
    #[response(status = 507, description = "The disk is full (insufficient_storage)")]
    DiskFull(ErrorBody),
}

/// A write to a model by a builder's key: its own namespace only.
#[derive(IntoResponses)]
pub enum NamespaceErrors {
    #[response(status = 401, description = "No valid key")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Not this key's namespace")]
    Forbidden(ErrorBody),
}

/// A route for admin keys only.
#[derive(IntoResponses)]
pub enum AdminErrors {
    #[response(status = 401, description = "No valid key")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Not an admin key")]
    Forbidden(ErrorBody),
}

/// A key named by its prefix in the path.
#[derive(IntoResponses)]
pub enum KeyPrefixErrors {
    #[response(status = 400, description = "A bad path (invalid_path)")]
    BadPath(ErrorBody),
    #[response(status = 404, description = "No such key (key_not_found)")]
    NotFound(ErrorBody),
    #[response(
        status = 409,
        description = "More than one key starts so (key_ambiguous), revoked already (key_revoked_already), or the key this request is made with (key_in_use)"
    )]
    Conflict(ErrorBody),
}
