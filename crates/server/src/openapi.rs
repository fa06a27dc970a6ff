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

/// The document as JSON, with the constraints utoipa cannot derive
/// ([`constrain`]) and this server's configured limits: the longest query
/// (`search.max_query_chars`).
pub fn document_json(max_query_chars: usize) -> String {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    let mut doc = DOC
        .get_or_init(|| {
            let mut doc = serde_json::to_value(document()).unwrap_or_default();
            constrain(&mut doc);
            doc
        })
        .clone();
    if let Some(params) = doc["paths"]["/v1/search"]["get"]["parameters"].as_array_mut() {
        for p in params.iter_mut().filter(|p| p["name"] == "q") {
            p["schema"]["maxLength"] = serde_json::json!(max_query_chars);
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// A model id as the server takes it (`hubsearch_engine::catalog::is_valid_id`):
/// `name` or `namespace/name`, each part 1 to 96 of `A-Z a-z 0-9 . _ -`,
/// starting and ending with a letter or digit, no `--` or `..`; a
/// namespaced name is not `similar` (that path is the similar-models page).
pub const ID_PATTERN: &str = r"^(?!.*(--|\.\.))(?!.*/similar$)[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9])?(/[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9])?)?$";

/// A builder (an id's namespace): one part of [`ID_PATTERN`].
pub const BUILDER_PATTERN: &str = r"^(?!.*(--|\.\.))[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$";

/// What the server enforces that the derived document cannot say: the card
/// a publisher writes (every name the reader takes, no others, each field's
/// type and bounds, the id rule; on PUT the id is the path's), a paid
/// call's page and rank together, a key for a builder or an admin, the id
/// rule on PUT's path. Kept in one place so the document and the checks
/// are read side by side; the fuzzer run in CI (schemathesis) holds the
/// server to it.
fn constrain(doc: &mut serde_json::Value) {
    use serde_json::json;
    let schemas = &mut doc["components"]["schemas"];
    schemas["CardInput"] = card_input(true);
    schemas["CardReplacement"] = card_input(false);
    // page_id and rank: both (integers) or neither (absent or null).
    schemas["CallBody"]["anyOf"] = json!([
        {"properties": {"page_id": {"type": "null"}, "rank": {"type": "null"}}},
        {"required": ["page_id", "rank"],
         "properties": {"page_id": {"type": "integer"}, "rank": {"type": "integer"}}}
    ]);
    schemas["CallBody"]["additionalProperties"] = json!(false);
    // With `expand`, a Hub model has `_id`, `id` and what was asked for.
    schemas["HfModel"]["required"] = json!(["_id", "id"]);
    schemas["NewKey"]["properties"]["builder"]["pattern"] = json!(BUILDER_PATTERN);
    schemas["NewKey"]["anyOf"] = json!([
        {"required": ["builder"], "properties": {"builder": {"type": "string"}}},
        {"required": ["admin"], "properties": {"admin": {"const": true}}}
    ]);
    schemas["CallBody"]["properties"]["page_id"] =
        json!({"type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX});
    schemas["CallBody"]["properties"]["rank"] =
        json!({"type": ["integer", "null"], "minimum": 1, "maximum": u64::MAX});
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (_, item) in paths.iter_mut().filter(|(p, _)| p.starts_with("/v1/")) {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
                    continue;
                };
                for p in params.iter_mut() {
                    v1_param(p);
                }
            }
        }
    }
    let put = &mut doc["paths"]["/v1/models/{id}"]["put"];
    put["requestBody"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/CardReplacement"});
    if let Some(params) = put["parameters"].as_array_mut() {
        for p in params.iter_mut().filter(|p| p["name"] == "id") {
            p["schema"]["pattern"] = json!(ID_PATTERN);
        }
    }
    // If-Match as the server reads it: `*` or entity tags (visible ASCII
    // without quotes or commas inside), comma-separated.
    for method in ["put", "delete"] {
        let op = &mut doc["paths"]["/v1/models/{id}"][method];
        if let Some(params) = op["parameters"].as_array_mut() {
            for p in params.iter_mut().filter(|p| p["name"] == "If-Match") {
                p["schema"] = json!({"type": "string", "pattern": IF_MATCH_PATTERN});
            }
        }
    }
}

/// `If-Match`: `*`, or entity tags (`"..."`, `W/"..."`) separated by commas.
const IF_MATCH_PATTERN: &str =
    r#"^[ \t]*(\*|(W/)?"[!#-+\--~]*"([ \t]*,[ \t]*(W/)?"[!#-+\--~]*")*)[ \t]*$"#;

/// A /v1 parameter as the server reads it: a whole number is a u64 (up to
/// 2^64 - 1, not the int64 utoipa writes for it), and a query parameter
/// left blank (`?page=`, as an HTML form sends it) is the same as one left
/// out.
fn v1_param(p: &mut serde_json::Value) {
    use serde_json::json;
    let in_query = p["in"] == "query";
    let required = p["required"] == true;
    let schema = &mut p["schema"];
    if schema["type"] == "integer" && schema.get("maximum").is_none() {
        if let Some(o) = schema.as_object_mut() {
            o.remove("format");
        }
        schema["maximum"] = json!(u64::MAX);
    }
    // Every optional query parameter but a list (whose items may be blank
    // already): numbers, booleans, enums (`sort=`, `policy=`).
    let list = schema["type"] == "array";
    let free = schema["type"] == "string" && schema.as_object().is_some_and(|o| o.len() == 1);
    if in_query && !list && !free && !required {
        let orig = schema.take();
        *schema = json!({"anyOf": [orig, {"type": "string", "maxLength": 0}]});
    }
}

/// The card a publisher writes: with an id (`POST`), or without (`PUT`,
/// where the path names it).
fn card_input(with_id: bool) -> serde_json::Value {
    use hubsearch_core::record::{MAX_LIST_LEN, MAX_PRICE_USD};
    use serde_json::json;
    let text = json!({"type": ["string", "null"]});
    // Items may be strings, or booleans and numbers, which are read as
    // their text (YAML front matter writes Norwegian `no` as false).
    let list = json!({"type": ["array", "null"], "maxItems": MAX_LIST_LEN,
        "items": {"type": ["string", "boolean", "number"]}});
    let one_or_list = json!({"anyOf": [{"type": "string"}, list.clone()]});
    let body = json!({"type": ["string", "null"],
        "maxLength": crate::routes::models::MAX_PUBLISHED_TEXT_CHARS});
    let count = json!({"type": ["integer", "null"], "minimum": 0, "maximum": i64::MAX,
        "description": "Admin only"});
    let time = json!({"anyOf": [{"type": "string", "format": "date-time"}, {"const": ""}, {"type": "null"}],
        "description": "Admin only; RFC 3339, blank or null for none"});
    let mut props = serde_json::Map::new();
    for f in [
        "name",
        "task",
        "pipeline_tag",
        "library",
        "library_name",
        "model_type",
        "license",
        "description",
    ] {
        props.insert(f.into(), text.clone());
    }
    for f in ["builder", "author"] {
        props.insert(
            f.into(),
            json!({"type": ["string", "null"],
            "description": "The namespace (a builder's key: its own)"}),
        );
    }
    for f in [
        "frameworks",
        "languages",
        "tags",
        "datasets",
        "architectures",
    ] {
        props.insert(f.into(), list.clone());
    }
    for f in ["card_text", "cardText"] {
        props.insert(f.into(), body.clone());
    }
    props.insert(
        "cardData".into(),
        json!({"type": ["object", "null"], "description": "Hugging Face cardData: tags, language and datasets are read (license, pipeline_tag, library_name when strings); other keys are ignored",
            "properties": {"tags": list, "language": one_or_list, "datasets": one_or_list}}),
    );
    props.insert(
        "price_usd".into(),
        json!({"type": ["number", "null"], "minimum": 0, "maximum": MAX_PRICE_USD,
            "description": "Price per paid call in USD; absent = free"}),
    );
    for f in ["downloads", "likes", "paid_calls"] {
        props.insert(f.into(), count.clone());
    }
    for f in [
        "created_at",
        "createdAt",
        "updated_at",
        "last_modified",
        "lastModified",
    ] {
        props.insert(f.into(), time.clone());
    }
    let mut schema = json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A card as a publisher writes it; the Hugging Face names are read too. Fields the hub sets (downloads, likes, paid_calls, dates) need an admin key."
    });
    if with_id {
        for f in ["id", "modelId"] {
            props.insert(f.into(), json!({"type": "string", "pattern": ID_PATTERN}));
        }
        schema["oneOf"] = json!([{"required": ["id"]}, {"required": ["modelId"]}]);
    }
    schema["properties"] = serde_json::Value::Object(props);
    schema
}
