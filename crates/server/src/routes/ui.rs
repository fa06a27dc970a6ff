//! `GET /`: a small search page (static HTML and JS, no build step).

use axum::response::Html;

pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../static/index.html"))
}
