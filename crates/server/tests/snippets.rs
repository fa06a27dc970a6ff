//! Snippets over HTTP (docs/retrieval.md, Snippets): a published card
//! whose text holds HTML comes back with a `formatted` snippet in which
//! the only markup is `<mark>`, everything else escaped.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hubsearch_server::app;
use serde_json::{json, Value};
use tower::ServiceExt;

#[allow(dead_code)]
mod common;
use common::hub;

async fn call(
    h: &common::Hub,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", h.admin));
    let req = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            req.body(Body::from(b.to_string())).unwrap()
        }
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = app(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// `s` with its `<mark>` and `</mark>` removed: what must hold no markup.
fn unmarked(s: &str) -> String {
    s.replace("<mark>", "").replace("</mark>", "")
}

#[tokio::test]
async fn a_card_with_html_gets_an_escaped_marked_snippet() {
    let h = hub();
    let card = json!({
        "id": "acme/sarcasm-detector",
        "task": "text-classification",
        "description": "Detects sarcasm <script>alert(1)</script> in tweets. <img src=x onerror=alert(2)> Try `<script>alert(3)</script>` & see.",
        "card_text": "---\nlicense: mit\n---\n# Sarcasm\n\nA <b>zygomorphic</b> **sarcasm** model, see [the paper](https://example.org).",
    });
    let (s, v) = call(&h, Method::POST, "/v1/models", Some(card)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    for mode in ["text", "hybrid"] {
        let (s, v) = call(
            &h,
            Method::GET,
            &format!("/v1/search?q=sarcasm+tweets&mode={mode}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let hit = &v["hits"][0];
        assert_eq!(hit["id"], "acme/sarcasm-detector", "{v}");
        let f = hit["formatted"].as_str().unwrap();
        // The description has both words: it is the snippet. The script
        // element is gone; the code span's tag is shown as text; the image
        // tag is gone; `&` is escaped.
        assert_eq!(
            f,
            "Detects <mark>sarcasm</mark> in <mark>tweets</mark>. Try \
             &lt;script&gt;alert(3)&lt;/script&gt; &amp; see.",
            "{mode}"
        );
        assert!(!f.to_ascii_lowercase().contains("<script"));
        assert!(
            !unmarked(f).contains('<') && !unmarked(f).contains('>'),
            "{f}"
        );
    }

    // A word only in the body: the body is the snippet, front matter and
    // markup gone.
    let (_, v) = call(&h, Method::GET, "/v1/search?q=zygomorphic&mode=text", None).await;
    let f = v["hits"][0]["formatted"].as_str().unwrap();
    assert_eq!(
        f,
        "Sarcasm A <mark>zygomorphic</mark> sarcasm model, see the paper."
    );
}

#[tokio::test]
async fn browsing_and_listings_get_unmarked_snippets() {
    let h = hub();
    let (_, v) = call(&h, Method::GET, "/v1/search?per_page=100", None).await;
    let hits = v["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    for hit in hits {
        let f = hit["formatted"].as_str().unwrap();
        assert!(!f.contains('<'), "{f}");
    }
    // The fixture's opus-mt card: its description, as written.
    let opus = hits
        .iter()
        .find(|h| h["id"] == "Helsinki-NLP/opus-mt-en-de")
        .unwrap();
    assert_eq!(opus["formatted"], "Translates English to German.");
}
