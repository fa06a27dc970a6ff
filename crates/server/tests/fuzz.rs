//! Property-based fuzzing of the whole router (`oneshot`, no sockets):
//! random methods, paths, query strings, bodies and keys against every
//! route. Whatever the input: no panic, and no 5xx other than 503.
//!
//! `HUBSEARCH_FUZZ_CASES` sets the number of inputs (CI runs the default,
//! 2,000; `HUBSEARCH_FUZZ_CASES=1000000 cargo test --release -p
//! hubsearch-server --test fuzz` is the long run).

use axum::body::Body;
use axum::http::{header, Method, Request};
use hubsearch_server::app;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use tower::ServiceExt;

mod common;

/// A path segment: route words, ids, and hostile bytes (escapes, dots,
/// control and invisible characters, overlong runs).
#[rustfmt::skip]
fn segment() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "acme",
        "facebook",
        "bart-large-cnn",
        "revision",
        "main",
        "..",
        "%FF%FE",
        "%2F",
        "%E2%80%8B",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([String::from("a").repeat(3000)])
    .collect();
    prop_oneof![
        prop::sample::select(fixed),
        "[a-zA-Z0-9._~-]{0,12}",
        "(%[0-9A-Fa-f]{2}){1,4}",
    ]
}

#[rustfmt::skip]
fn path() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "/", "/v1/search", "/v1/listings", "/v1/models", "/v1/calls", "/v1/stats/exposure",
        "/api/models", "/healthz", "/readyz", "/metrics", "/openapi.json",
    ])
    .prop_map(str::to_string);
    let with_ids = (
        prop::sample::select(vec!["/v1/models/", "/api/models/", "/v1/builders/", "/"]),
        proptest::collection::vec(segment(), 1..4),
    )
        .prop_map(|(base, segs)| format!("{base}{}", segs.join("/")));
    prop_oneof![3 => fixed, 2 => with_ids]
}

#[rustfmt::skip]
fn value() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "0", "-1", "1000000000", "18446744073709551615", "99999999999999999999999", "NaN",
        "inf", "1e308", "true", "o1000000000", "o18446744073709551615", "hybrid", "vector",
        "fair", "stochastic", "fair,stochastic", "calls", "%00%FF", "title:bert AND (x OR",
    ])
    .prop_map(str::to_string);
    prop_oneof![fixed, "[ -~]{0,24}", "[0-9]{1,25}"]
}

#[rustfmt::skip]
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("q"),
        Just("mode"),
        Just("policy"),
        Just("seed"),
        Just("page"),
        Just("per_page"),
        Just("explain"),
        Just("facets"),
        Just("task"),
        Just("language"),
        Just("license"),
        Just("library"),
        Just("builder"),
        Just("min_price"),
        Just("max_price"),
        Just("sort"),
        Just("cursor"),
        Just("limit"),
        Just("window_hours"),
        Just("search"),
        Just("author"),
        Just("filter"),
        Just("direction"),
        Just("full"),
        Just("cardData"),
        Just("colour"),
    ];
    proptest::collection::vec((key, value()), 0..5).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+").replace('&', "%26")))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[rustfmt::skip]
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[ -~]{0,20}".prop_map(serde_json::Value::from),
    ];
    let card_key = prop_oneof![
        Just("id"),
        Just("model"),
        Just("builder"),
        Just("author"),
        Just("task"),
        Just("price_usd"),
        Just("price"),
        Just("downloads"),
        Just("amount_usd"),
        Just("idempotency_key"),
        Just("description"),
        Just("tags"),
        Just("languages"),
        Just("created_at"),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::vec((card_key.clone(), inner), 0..6).prop_map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        3 => json().prop_map(|v| Some(v.to_string().into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(Some(br#"{"id": "acme/fuzzed", "description": "x", "price_usd": 0.01}"#.to_vec())),
        1 => Just(Some(br#"{"model": "facebook/bart-large-cnn", "idempotency_key": "f"}"#.to_vec())),
    ]
}

#[test]
fn no_input_crashes_the_router_or_gets_a_5xx_but_503() {
    let cases: u32 = std::env::var("HUBSEARCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let hub = common::hub();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let method = prop_oneof![
        4 => Just(Method::GET),
        2 => Just(Method::POST),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
    ];
    let key = prop_oneof![
        Just(None),
        Just(Some(hub.admin.clone())),
        Just(Some(hub.acme.clone())),
        Just(Some("hs_not_a_key".to_string())),
    ];
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let start = std::time::Instant::now();
    runner
        .run(
            &(method, path(), query(), body(), key),
            |(method, path, query, body, key)| {
                let uri = if query.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{query}")
                };
                let Ok(uri) = uri.parse::<axum::http::Uri>() else {
                    return Ok(()); // not a URI a client could send
                };
                let mut req = Request::builder().method(method.clone()).uri(uri);
                if let Some(k) = &key {
                    req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
                }
                let req = match &body {
                    Some(b) => req
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(b.clone())),
                    None => req.body(Body::empty()),
                }
                .unwrap();
                let status = rt
                    .block_on(app(hub.state.clone()).oneshot(req))
                    .unwrap()
                    .status();
                prop_assert!(
                    !status.is_server_error() || status.as_u16() == 503,
                    "{method} {path}?{query} -> {status}"
                );
                Ok(())
            },
        )
        .unwrap();
    eprintln!(
        "fuzz: {cases} inputs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
