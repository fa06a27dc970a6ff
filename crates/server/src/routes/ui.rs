//! `GET /`: a small search page (static HTML and JS, no build step).

use axum::response::Html;

/// The search page (HTML).
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")))]
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../static/index.html"))
}
