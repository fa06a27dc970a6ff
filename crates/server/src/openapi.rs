//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the request and response types (utoipa). Routes are
//! registered through `utoipa_axum`'s router ([`crate::api_router`]), so a
//! routed path is a documented one; the `{*id}` routes (ids hold a `/`),
//! which that router cannot describe, are documented here by hand
//! ([`WILDCARD_ROUTES`] and [`ApiDoc`]'s `paths`).

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

/// The routes the axum router serves with a `{*id}` wildcard, and the
/// documented paths that stand for them.
pub const WILDCARD_ROUTES: &[(&str, &[&str])] = &[
    (
        "/v1/models/{*id}",
        &["/v1/models/{id}", "/v1/models/{id}/similar"],
    ),
    (
        "/api/models/{*id}",
        &["/api/models/{id}", "/api/models/{id}/revision/{revision}"],
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hubsearch",
        description = "Search and ranking for AI model hubs, with exposure control and a Hugging Face compatible API. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code (`ErrorCode`). docs/api.md says what every parameter does.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::models::get_model,
        routes::models::replace,
        routes::models::delete,
        routes::search::similar,
        routes::hf::model_info,
        routes::hf::model_info_revision,
    ),
    modifiers(&Security),
    tags(
        (name = "search", description = "Search, listings, similar models"),
        (name = "models", description = "Reading and publishing cards"),
        (name = "calls", description = "Paid calls"),
        (name = "stats", description = "Exposure, calls and income"),
        (name = "transparency", description = "The call log: signed tree heads, inclusion and consistency proofs, entries (docs/transparency.md)"),
        (name = "hugging-face", description = "The Hugging Face Hub API's model listing"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The API key scheme: `Authorization: Bearer <key>`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The whole document (routes, schemas, security).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| crate::api_router().split_for_parts().1)
}

/// The document as JSON.
pub fn document_json() -> String {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().unwrap_or_default())
        .clone()
}
