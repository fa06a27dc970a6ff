//! The HTTP API through `app(state)` with `oneshot` (no socket), by area:
//! search, listings, publish/auth, calls, stats, Hugging Face compatibility,
//! operations and errors. The engine is real (tantivy, redb, HNSW) over the
//! project's fixture cards; vectors come from the hash stand-in so the suite
//! runs fast (the MiniLM embedder has its own tests).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use hubsearch_server::app;
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;
use common::{hub, request, Hub, LostPages};

async fn call(
    h: &Hub,
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    request(h, method, uri, key, &[], body).await
}

/// POST `body` with `key` to `uri`: the status and the error code, if any.
async fn post_code(h: &Hub, uri: &str, key: &str, body: Value) -> (StatusCode, Option<String>) {
    let (s, v) = post(h, uri, key, body).await;
    (s, v["error"]["code"].as_str().map(str::to_string))
}

/// Builder acme's key publishing `card` is refused with `status` and `code`.
async fn acme_refused(h: &Hub, card: Value, status: StatusCode, code: &str) {
    let (s, v) = post(h, "/v1/models", &h.acme, card.clone()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (status, Some(code)),
        "{card}"
    );
}

/// GET `uri`: the status and the error code, if any.
async fn get_code(h: &Hub, uri: &str) -> (StatusCode, Option<String>) {
    let (s, v) = get(h, uri).await;
    (s, v["error"]["code"].as_str().map(str::to_string))
}

async fn get_h(h: &Hub, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
    call(h, Method::GET, uri, None, None).await
}

/// GET `uri` with the header `name: value`.
async fn get_with(
    h: &Hub,
    uri: &str,
    name: header::HeaderName,
    value: &str,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    request(h, Method::GET, uri, None, &[(name, value)], None).await
}

async fn get(h: &Hub, uri: &str) -> (StatusCode, Value) {
    let (s, _, v) = call(h, Method::GET, uri, None, None).await;
    (s, v)
}

async fn post(h: &Hub, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = call(h, Method::POST, uri, Some(key), Some(body)).await;
    (s, v)
}

async fn put(h: &Hub, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = call(h, Method::PUT, uri, Some(key), Some(body)).await;
    (s, v)
}

async fn delete(h: &Hub, uri: &str, key: &str) -> (StatusCode, Value) {
    let (s, _, v) = call(h, Method::DELETE, uri, Some(key), None).await;
    (s, v)
}

/// GET each of `uris`, which must answer `status`: the bodies.
async fn get_each(h: &Hub, status: StatusCode, uris: &[impl AsRef<str>]) -> Vec<Value> {
    let mut bodies = Vec::new();
    for uri in uris.iter().map(AsRef::as_ref) {
        let (s, v) = get(h, uri).await;
        assert_eq!(s, status, "{uri}: {v}");
        bodies.push(v);
    }
    bodies
}

/// Take every permit of `slots`, as if that many requests held them.
fn hold_all(slots: &tokio::sync::Semaphore) -> tokio::sync::SemaphorePermit<'_> {
    slots
        .try_acquire_many(slots.available_permits() as u32)
        .unwrap()
}

/// `f` of each item of the JSON array `v`.
fn each<'a, T>(v: &'a Value, f: impl FnMut(&'a Value) -> T) -> Vec<T> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn ids(v: &Value, list: &str) -> Vec<String> {
    each(&v[list], |h| h["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn search_finds_filters_explains_and_pages() {
    let h = hub();
    let (s, v) = get(&h, "/v1/search?q=opus+mt+en+de&explain=true&facets=true").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v, "hits")[0], "Helsinki-NLP/opus-mt-en-de");
    let parts = &v["hits"][0]["explain"];
    assert!(
        parts["bm25"].as_f64().unwrap() > 0.0 && parts["relevance"] == 1.0,
        "{parts}"
    );
    assert!(v["facets"]["task"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["value"] == "translation"));

    let (_, v) = get(&h, "/v1/search?q=speech&language=nl&mode=text").await;
    assert_eq!(ids(&v, "hits"), ["acme/dutch-asr"]);
    let (_, v) = get(&h, "/v1/search?q=&max_price=0.0015&min_price=0.0005").await;
    assert_eq!(ids(&v, "hits"), ["solo/tapas-small-finetuned-wtq"]);

    for mode in ["vector", "hybrid"] {
        let (s, v) = get(
            &h,
            &format!(
                "/v1/search?q=dutch+speech+transcription&mode={mode}&explain=true&language=nl"
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["mode"], mode);
        assert!(ids(&v, "hits")
            .iter()
            .all(|id| id == "acme/dutch-asr"
                || id == "nlptown/bert-base-multilingual-uncased-sentiment"));
        assert!(v["hits"][0]["explain"]["vector_sim"].is_number());
    }

    // Pages of a deterministic policy continue each other.
    let (_, all) = get(&h, "/v1/search?q=model&per_page=4&policy=relevance").await;
    let (_, p1) = get(&h, "/v1/search?q=model&per_page=2&page=1&policy=relevance").await;
    let (_, p2) = get(&h, "/v1/search?q=model&per_page=2&page=2&policy=relevance").await;
    assert_eq!(
        [ids(&p1, "hits"), ids(&p2, "hits")].concat(),
        ids(&all, "hits")
    );
    // A seed makes a stochastic page reproducible.
    let (_, a) = get(&h, "/v1/search?q=model&policy=stochastic&seed=7").await;
    let (_, b) = get(&h, "/v1/search?q=model&policy=stochastic&seed=7").await;
    assert_eq!(ids(&a, "hits"), ids(&b, "hits"));
}

#[tokio::test]
async fn bad_search_input_gets_stable_codes() {
    let h = hub();
    for (uri, status, code) in [
        ("/v1/search?q=x&per_page=0", 400, "invalid_per_page"),
        ("/v1/search?q=x&page=0", 400, "invalid_page"),
        ("/v1/search?q=x&mode=telepathy", 400, "invalid_mode"),
        ("/v1/search?q=x&policy=best", 400, "unknown_policy"),
        ("/v1/search?q=x&min_price=cheap", 400, "invalid_filter"),
        ("/v1/search?q=x&min_price=-1", 400, "invalid_filter"),
        ("/v1/search?q=x&min_downloads=-1", 400, "invalid_filter"),
        (
            "/v1/search?q=x&created_after=yesterday",
            400,
            "invalid_filter",
        ),
        ("/v1/search?q=x&colour=red", 400, "invalid_parameter"),
        (
            "/v1/search?q=x&semantic_ratio=1.5",
            400,
            "invalid_parameter",
        ),
        ("/v1/listings?sort=random", 400, "invalid_sort"),
        ("/v1/listings?cursor=o3", 400, "invalid_parameter"),
        ("/v1/listings?page=zzz", 400, "invalid_parameter"),
        ("/v1/nothing", 404, "not_found"),
        ("/v1/models/no/such-model", 404, "model_not_found"),
        ("/v1/builders/nobody-at-all", 404, "builder_not_found"),
    ] {
        let (s, v) = get(&h, uri).await;
        assert_eq!(s.as_u16(), status, "{uri}: {v}");
        assert_eq!(v["error"]["code"], code, "{uri}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // A bad value's message names its parameter.
    for (uri, name) in [
        ("/v1/search?q=x&min_price=cheap", "min_price"),
        ("/v1/search?q=x&page=two", "page"),
        ("/v1/listings?min_likes=many", "min_likes"),
    ] {
        let (_, v) = get(&h, uri).await;
        assert!(
            v["error"]["message"].as_str().unwrap().contains(name),
            "{uri}: {v}"
        );
    }
    let long = "a".repeat(600);
    assert_eq!(
        get_code(&h, &format!("/v1/search?q={long}")).await,
        (StatusCode::BAD_REQUEST, Some("query_too_long".to_string()))
    );
    // Odd but valid input never breaks the server.
    let odd = [
        "%22",
        "((",
        "AND",
        "*",
        "%E2%9C%93",
        "a+b+c+d+e+f+g+h+i+j+k",
    ];
    let uris = odd.map(|q| format!("/v1/search?q={q}&mode=hybrid"));
    get_each(&h, StatusCode::OK, &uris).await;
}

#[tokio::test]
async fn listings_sort_cache_and_page() {
    let h = hub();
    let (s, hd, v) = get_h(&h, "/v1/listings?sort=trending&per_page=3").await;
    assert_eq!(s, StatusCode::OK);
    let downloads = each(&v["hits"], |i| i["downloads"].as_u64().unwrap());
    assert!(downloads.windows(2).all(|w| w[0] >= w[1]), "{downloads:?}");
    assert_eq!(v["total"], 7);
    let etag = hd[header::ETAG].to_str().unwrap().to_string();
    assert!(hd[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("max-age"));
    // Conditional request: 304.
    let uri = "/v1/listings?sort=trending&per_page=3";
    let (s, _, _) = get_with(&h, uri, header::IF_NONE_MATCH, &etag).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    // Page by page, everything once.
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let (_, v) = get(
            &h,
            &format!("/v1/listings?sort=newest&per_page=2&page={page}"),
        )
        .await;
        seen.extend(ids(&v, "hits"));
        match v["next_page"].as_u64() {
            Some(p) => {
                assert_eq!(p, page + 1);
                page = p;
            }
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!((seen.len(), dedup.len()), (7, 7));
    let (_, v) = get(&h, "/v1/listings?sort=price&per_page=10").await;
    let prices = each(&v["hits"], |i| i["price_usd"].as_f64().unwrap_or(0.0));
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    let (_, hd, v) = get_h(&h, "/v1/listings?sort=fair&per_page=3").await;
    assert_eq!(v["hits"].as_array().unwrap().len(), 3);
    assert_eq!(hd[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn publishing_needs_the_right_key() {
    let h = hub();
    let card = json!({"id": "acme/new-ner", "task": "token-classification", "description": "Finds zymurgical entities in brewing logs.", "price_usd": 0.003});
    let (s, _, v) = call(&h, Method::POST, "/v1/models", None, Some(card.clone())).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = post(&h, "/v1/models", "hs_not_a_key", card.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = json!({"id": "facebook/fake", "description": "x"});
    acme_refused(&h, other, StatusCode::FORBIDDEN, "forbidden").await;
    let (s, v) = post(&h, "/v1/models", &h.acme, card.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Searchable at once.
    let (_, v) = get(&h, "/v1/search?q=zymurgical&mode=text").await;
    assert_eq!(ids(&v, "hits"), ["acme/new-ner"]);
    acme_refused(&h, card.clone(), StatusCode::CONFLICT, "model_exists").await;
    // Replace by the owner.
    let (s, v) = put(
        &h,
        "/v1/models/acme/new-ner",
        &h.acme,
        json!({"description": "Finds hop varieties."}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = get(&h, "/v1/search?q=zymurgical&mode=text").await;
    assert!(ids(&v, "hits").is_empty());
    // Bad bodies.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/models")
        .header(header::AUTHORIZATION, format!("Bearer {}", h.acme))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let resp = app(h.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let wrong_type = json!({"id": "acme/x", "downloads": "many"});
    acme_refused(&h, wrong_type, StatusCode::BAD_REQUEST, "invalid_card").await;
    let (s, v) = put(&h, "/v1/models/acme/x", &h.acme, json!({"id": "acme/y"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id_mismatch"))
    );
    // Delete: not by another builder's key, yes by admin.
    let (s, _) = delete(&h, "/v1/models/facebook/bart-large-cnn", &h.acme).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = delete(&h, "/v1/models/facebook/bart-large-cnn", &h.admin).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = get(&h, "/v1/models/facebook/bart-large-cnn").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = get(&h, "/v1/search?q=bart+large+cnn&mode=hybrid").await;
    assert!(!ids(&v, "hits").contains(&"facebook/bart-large-cnn".to_string()));
    // A huge body is refused.
    let big = json!({"id": "acme/big", "card_text": "x".repeat(2 << 20)});
    let (s, v) = post(&h, "/v1/models", &h.acme, big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
}

#[tokio::test]
async fn paid_calls_are_counted_once() {
    let h = hub();
    let body = json!({"model": "facebook/bart-large-cnn", "idempotency_key": "pay-1"});
    let (s, _) = post(&h, "/v1/calls", &h.acme, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&h, "/v1/calls", &h.admin, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["amount_usd"], 0.004);
    let (s, v2) = post(&h, "/v1/calls", &h.admin, body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v2["recorded"].as_bool(), v2["seq"].clone()),
        (Some(false), v["seq"].clone())
    );
    let (_, v) = post(
        &h,
        "/v1/calls",
        &h.admin,
        json!({"model": "facebook/bart-large-cnn", "amount_usd": 0.5}),
    )
    .await;
    assert_eq!(v["builder_calls"], 2);
    assert!((v["builder_income_usd"].as_f64().unwrap() - 0.504).abs() < 1e-9);
    assert_eq!(
        post_code(&h, "/v1/calls", &h.admin, json!({"model": "no/such"})).await,
        (StatusCode::NOT_FOUND, Some("model_not_found".to_string()))
    );
    assert_eq!(
        post_code(
            &h,
            "/v1/calls",
            &h.admin,
            json!({"model": "facebook/bart-large-cnn", "amount_usd": -2})
        )
        .await,
        (StatusCode::BAD_REQUEST, Some("invalid_amount".to_string()))
    );
    let (_, v) = get(&h, "/v1/builders/facebook").await;
    assert_eq!(v["calls"], 2);
    let (_, v) = get(&h, "/v1/stats/exposure").await;
    assert_eq!(v["calls_models"]["total"], 2.0);
}

#[tokio::test]
async fn exposure_stats_follow_what_was_served() {
    // Five views of one page by one client count five times only without
    // the repeat window (the gate; see one_client_cannot_write_...).
    let h = common::hub_with(|c| c.server.repeat_window_seconds = 0);
    let (_, before) = get(&h, "/v1/stats/exposure").await;
    assert_eq!(before["pages_served"], 0);
    for _ in 0..5 {
        get(&h, "/v1/search?q=translation&per_page=3").await;
    }
    h.state.engine.ledger().flush().unwrap();
    let (s, v) = get(&h, "/v1/stats/exposure?window_hours=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pages_served"], 5);
    let total = v["exposure_models"]["total"].as_f64().unwrap();
    // Each page of 3 gives 1 + 1/log2(3) + 1/2 under the log attention model.
    let page = 1.0 + 1.0 / 3f64.log2() + 0.5;
    assert!(
        (total - 5.0 * page).abs() < 1e-6 || total < 5.0 * page,
        "{total}"
    );
    assert!(v["exposure_models"]["gini"].as_f64().unwrap() > 0.0);
    assert_eq!(
        v["recent_exposure_models"]["total"],
        v["exposure_models"]["total"]
    );
    let (_, b) = get(&h, "/v1/builders/Helsinki-NLP").await;
    assert!(b["impressions"].as_u64().unwrap() >= 1, "{b}");
}

#[tokio::test]
async fn hugging_face_listing_is_compatible() {
    let h = hub();
    let (s, hd, v) = get_h(&h, "/api/models?search=opus&limit=5").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["modelId"], "Helsinki-NLP/opus-mt-en-de");
    assert!(v[0]["createdAt"].is_string() || v[0]["createdAt"].is_null());
    assert!(hd.get(header::LINK).is_none());
    let (_, hd, v) = get_h(
        &h,
        "/api/models?limit=2&sort=downloads&direction=-1&full=true",
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["id"], "sentence-transformers/all-MiniLM-L6-v2");
    let link = hd[header::LINK].to_str().unwrap();
    assert!(
        link.contains("cursor=2") && link.ends_with("rel=\"next\""),
        "{link}"
    );
    let (_, v) = get(
        &h,
        "/api/models?filter=automatic-speech-recognition&author=acme",
    )
    .await;
    assert_eq!(v[0]["id"], "acme/dutch-asr");
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = get(&h, "/api/models/acme/dutch-asr").await;
    assert_eq!(
        (s, v["pipeline_tag"].as_str()),
        (StatusCode::OK, Some("automatic-speech-recognition"))
    );
}

#[tokio::test]
async fn operations_endpoints() {
    let h = hub();
    assert_eq!(get(&h, "/healthz").await.0, StatusCode::OK);
    let (_, v) = get(&h, "/readyz").await;
    assert_eq!(v["models"], 7);
    get(&h, "/v1/search?q=bert").await;
    let (_, m) = get(&h, "/metrics").await;
    let m = m.as_str().unwrap().to_string();
    assert!(
        m.contains("hubsearch_http_requests_total{route=\"/v1/search\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(m.contains("hubsearch_http_request_duration_seconds_bucket{route=\"/v1/search\""));
    assert!(m.contains("hubsearch_index_models 7"));
    let (_, api) = get(&h, "/openapi.json").await;
    for path in [
        "/v1/search",
        "/v1/listings",
        "/v1/models/{id}",
        "/v1/calls",
        "/api/models",
    ] {
        assert!(
            api["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let (s, _, page) = get_h(&h, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("<form id=\"f\">"));
}

/// Issue "No client can crash, rig or starve the hub": each finding, at the
/// HTTP level.
#[tokio::test]
async fn deep_cursors_and_pages_are_bounded() {
    let h = hub();
    // A cursor far past the end answers an empty page (it used to reach
    // tantivy's collector and abort the process allocating 48 GB).
    let (s, v) = get(&h, "/v1/listings?page=1000000000").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["hits"].as_array().unwrap().is_empty());
    assert!(v["next_page"].is_null());
    let (s, v) = get(&h, &format!("/v1/listings?page={}&per_page=1", usize::MAX)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = get(&h, "/api/models?cursor=1000000000").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(0));
    // Page arithmetic does not wrap: a page past every result is empty.
    let past_the_end = [
        "/v1/search?q=bert&page=18446744073709551615",
        "/v1/search?q=bert&page=18446744073709551615&per_page=100",
        "/v1/search?page=18446744073709551615&per_page=100",
        "/v1/listings?page=18446744073709551615&per_page=100",
    ];
    for v in get_each(&h, StatusCode::OK, &past_the_end).await {
        assert!(
            ids(&v, "hits").is_empty() && v["next_page"].is_null(),
            "{v}"
        );
    }
}

#[tokio::test]
async fn builders_publish_only_in_their_namespace_and_cannot_set_hub_fields() {
    let h = hub();
    // Another namespace, by id or by the body's builder / author, or none.
    for body in [
        json!({"id": "globex/x", "description": "x"}),
        json!({"id": "globex/x", "builder": "acme", "description": "x"}),
        json!({"id": "acme/x", "builder": "globex", "description": "x"}),
        json!({"id": "acme/x", "author": "google", "description": "x"}),
        json!({"id": "bert-base-fake", "description": "x"}),
    ] {
        acme_refused(&h, body, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // The admin may publish anywhere.
    let by_admin = json!({"id": "bert-base-fake", "description": "x"});
    let (s, _) = post_code(&h, "/v1/models", &h.admin, by_admin).await;
    assert_eq!(s, StatusCode::CREATED);
    // Popularity and dates are the hub's.
    for field in ["downloads", "likes", "paid_calls", "created_at"] {
        let mut body = json!({"id": "acme/rigged", "description": "x"});
        body[field] = if field == "created_at" {
            json!("2030-01-01T00:00:00Z")
        } else {
            json!(1_000_000_000u64)
        };
        acme_refused(&h, body, StatusCode::BAD_REQUEST, "read_only_field").await;
    }
    // Unknown fields are errors (a misspelt price would publish a free model).
    let misspelt = json!({"id": "acme/cheap", "price": 0.5});
    acme_refused(&h, misspelt, StatusCode::BAD_REQUEST, "invalid_card").await;
    // Look-alike, invisible and path characters in ids.
    for id in [
        "acme/evil\u{200b}",
        "acme/\u{202e}lave",
        "acme/a?b",
        "acme/a#b",
        "acme/../x",
        "acme/x/y",
        "acme/-x",
    ] {
        acme_refused(&h, json!({"id": id}), StatusCode::BAD_REQUEST, "invalid_id").await;
    }
    // What the hub counted survives a builder's replace.
    let (s, v) = post(
        &h,
        "/v1/models",
        &h.admin,
        json!({"id": "acme/popular", "downloads": 500, "likes": 7}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let better = json!({"description": "now better"});
    let (s, v) = put(&h, "/v1/models/acme/popular", &h.acme, better).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["model"]["downloads"].as_u64(),
            v["model"]["likes"].as_u64()
        ),
        (Some(500), Some(7))
    );
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_call_is_refused() {
    let h = hub();
    let body =
        json!({"model": "facebook/bart-large-cnn", "idempotency_key": "k-1", "amount_usd": 0.01});
    let (s, v) = post(&h, "/v1/calls", &h.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for other in [
        json!({"model": "facebook/bart-large-cnn", "idempotency_key": "k-1", "amount_usd": 0.5}),
        json!({"model": "Helsinki-NLP/opus-mt-en-de", "idempotency_key": "k-1", "amount_usd": 0.01}),
    ] {
        let (s, v) = post(&h, "/v1/calls", &h.admin, other).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("idempotency_key_reused")),
            "{v}"
        );
    }
    let (_, v) = get(&h, "/v1/builders/facebook").await;
    assert_eq!(v["calls"], 1, "{v}");
}

#[tokio::test]
async fn every_error_is_json_with_a_code() {
    let h = hub();
    let code = |v: &Value| v["error"]["code"].as_str().map(str::to_string);
    let (s, _, v) = call(&h, Method::PATCH, "/v1/search?q=x", None, None).await;
    assert_eq!(
        (s, code(&v).as_deref()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let long = format!("/v1/search?q={}", "a".repeat(20_000));
    let (s, v) = get(&h, &long).await;
    assert_eq!(
        (s, code(&v).as_deref()),
        (StatusCode::URI_TOO_LONG, Some("uri_too_long"))
    );
    let filler = header::HeaderName::from_static("x-filler");
    let (s, _, v) = get_with(&h, "/v1/search?q=x", filler, &"b".repeat(40_000)).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(code(&v).as_deref(), Some("headers_too_large"));
    for uri in [
        "/v1/models/acme/%FF%FE",
        "/api/models/x/%C0",
        "/v1/builders/%FF",
    ] {
        let (s, v) = get(&h, uri).await;
        assert_eq!(
            (s, code(&v).as_deref()),
            (StatusCode::BAD_REQUEST, Some("invalid_path")),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_link_header_never_echoes_a_hostile_host() {
    let h = hub();
    let host = "evil.example>; rel=\"x\", <http://a";
    let (s, hd, _) = get_with(&h, "/api/models?limit=1", header::HOST, host).await;
    assert_eq!(s, StatusCode::OK);
    let link = hd[header::LINK].to_str().unwrap().to_string();
    assert!(link.starts_with("<http://127.0.0.1/api/models?"), "{link}");
    assert!(!link.contains("evil"), "{link}");
}

#[tokio::test]
async fn an_abandoned_search_is_not_exposure() {
    let h = hub();
    let engine = h.state.engine.clone();
    let mut req = hubsearch_core::SearchRequest::new("bert", 10);
    req.abandoned = Some(Arc::new(std::sync::atomic::AtomicBool::new(true)));
    engine.search(&req).unwrap();
    assert_eq!(engine.ledger().pages(), 0);
    req.abandoned = None;
    engine.search(&req).unwrap();
    assert_eq!(engine.ledger().pages(), 1);
}

/// A revoked key is refused from the next request on, with its own code;
/// a rotated key's successor works at once, without a restart.
#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_its_successor_works() {
    let h = hub();
    let card = |n: &str| json!({"id": format!("acme/{n}"), "task": "translation"});
    assert_eq!(
        post_code(&h, "/v1/models", &h.acme, card("one")).await,
        (StatusCode::CREATED, None)
    );
    // The CLI's store, as another process would open it.
    let store = hubsearch_server::keys::KeyStore::new(h.state.engine.dir());
    let new = store.rotate(&h.acme).unwrap();
    assert_eq!(
        post_code(&h, "/v1/models", &h.acme, card("two")).await,
        (StatusCode::UNAUTHORIZED, Some("key_revoked".into()))
    );
    assert_eq!(
        post_code(&h, "/v1/models", &new, card("two")).await,
        (StatusCode::CREATED, None)
    );
    assert_eq!(
        post_code(&h, "/v1/models", "hs_never_issued", card("three")).await,
        (StatusCode::UNAUTHORIZED, Some("unauthorized".into()))
    );
}

/// The auth scheme's name is case-insensitive (RFC 9110, 11.1); another
/// scheme is no key.
#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let h = hub();
    let body = json!({"id": "acme/cased", "task": "translation"});
    for (scheme, want) in [
        ("bearer", StatusCode::CREATED),
        ("BEARER", StatusCode::OK),
        ("Basic", StatusCode::UNAUTHORIZED),
    ] {
        let req = Request::builder()
            .method("PUT")
            .uri("/v1/models/acme/cased")
            .header(header::AUTHORIZATION, format!("{scheme} {}", h.acme))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app(h.state.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), want, "{scheme}");
    }
}

/// A HEAD request runs the search handler (axum answers HEAD with GET's)
/// but shows nobody a page: the ledger records nothing; a GET records one.
#[tokio::test]
async fn a_head_request_is_not_exposure() {
    let h = hub();
    let head = Request::builder()
        .method("HEAD")
        .uri("/v1/search?q=bert")
        .body(Body::empty())
        .unwrap();
    let resp = app(h.state.clone()).oneshot(head).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.state.engine.ledger().pages(), 0);
    let (status, _) = get(&h, "/v1/search?q=bert").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.state.engine.ledger().pages(), 1);
}

/// Real connections on a port: a flood of clients that never finish their
/// headers is cut off by the header timeout and the per-IP limit, and
/// `/healthz` keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_hold_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub();
    let mut state = h.state.clone();
    state.config.header_read_timeout_ms = 300;
    state.config.max_connections_per_ip = 20;
    let (addr, stop, server) = serve(state).await;
    // 20 slowloris connections: a request line, then nothing.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(c);
    }
    // Over the per-IP limit: closed at once.
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), extra.read(&mut buf))
        .await
        .expect("the extra connection was neither answered nor closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "a connection over the per-IP limit was served");
    // The header timeout closes every slow one.
    for c in &mut slow {
        let r = tokio::time::timeout(std::time::Duration::from_secs(3), c.read(&mut buf))
            .await
            .expect("a slow client was kept open past the header timeout");
        // Closed (0 bytes or reset), or answered with a 408: never left hanging.
        if let Ok(n) = r {
            assert!(
                n == 0 || buf.starts_with(b"HTTP/1.1 408"),
                "{:?}",
                &buf[..n]
            );
        }
    }
    drop(slow);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Then a normal client is served.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(2), c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// `state` served on a free local port: its address, the sender that stops
/// the server and the server's task.
async fn serve(
    state: hubsearch_server::AppState,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hubsearch_server::run(listener, state, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// Real connections: a write without a key is answered 401 before its body
/// is read (the client has sent only headers announcing 1 MB), and a keyed
/// body trickled a byte at a time is cut off by the one body deadline with
/// a JSON 408 `body_timeout`, although every byte came well within any
/// per-read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_keyless_bodies_are_not_buffered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub();
    let mut state = h.state.clone();
    state.config.body_read_timeout_ms = 600;
    let (addr, stop, server) = serve(state).await;
    let answer = |mut c: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut out))
            .await
            .expect("no answer and no close");
        String::from_utf8_lossy(&out).into_owned()
    };
    // No key, a 1 MB body announced and none sent: 401 at once.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let t = std::time::Instant::now();
    let out = answer(c).await;
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    assert!(out.contains("\"unauthorized\""), "{out}");
    assert!(
        t.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // A keyed paid call whose body trickles: 408 body_timeout near the deadline.
    let body = br#"{"model": "facebook/bart-large-cnn", "idempotency_key": "slow-1"}"#;
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        h.admin,
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let t = std::time::Instant::now();
    let (mut rd, mut wr) = c.into_split();
    let trickle = tokio::spawn(async move {
        for b in body.iter() {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rd.read_to_end(&mut out))
        .await
        .expect("a trickled body held the connection");
    let out = String::from_utf8_lossy(&out);
    let took = t.elapsed();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("\"body_timeout\""), "{out}");
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    trickle.abort();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    // The cut-off call was not recorded: its key is new to the ledger.
    let body = json!({"model": "facebook/bart-large-cnn", "idempotency_key": "slow-1"});
    let (s, v) = post(&h, "/v1/calls", &h.admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// A GET from the address `ip` (as the accept loop marks each request).
async fn get_from(h: &Hub, uri: &str, ip: [u8; 4]) -> (StatusCode, axum::http::HeaderMap) {
    let mut req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(hubsearch_server::ratelimit::ClientIp(
            std::net::IpAddr::from(ip),
        ));
    let resp = app(h.state.clone()).oneshot(req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

/// The attack of issue 26: one anonymous client searching a rival's model
/// 300 times (the same page, then 300 pages that differ only by seed) adds
/// one page of exposure, then at most its budget's worth; every answer is
/// still served. Fifty distinct people viewing the same page all count.
#[tokio::test]
async fn one_client_cannot_write_a_rivals_exposure() {
    let h = hub();
    let budget = h.state.config.recorded_pages_per_minute as u64;
    assert!(budget > 0 && h.state.config.repeat_window_seconds > 0);
    let target = "/v1/search?q=opus-mt-en-de&per_page=1";
    let attacker = [203, 0, 113, 7];
    for _ in 0..300 {
        assert_eq!(get_from(&h, target, attacker).await.0, StatusCode::OK);
    }
    h.state.engine.ledger().flush().unwrap();
    assert_eq!(h.state.engine.ledger().pages(), 1);
    let mut last = axum::http::HeaderMap::new();
    for i in 0..300 {
        let (s, headers) = get_from(&h, &format!("{target}&seed={i}"), attacker).await;
        assert_eq!(s, StatusCode::OK);
        last = headers;
    }
    h.state.engine.ledger().flush().unwrap();
    let pages = h.state.engine.ledger().pages();
    // The budget refills a token every 2 s: a slow test run may earn one more.
    assert!(
        pages <= budget + 2,
        "{pages} pages recorded from one client"
    );
    let (_, b) = get(&h, "/v1/builders/Helsinki-NLP").await;
    let exposure = b["exposure"].as_f64().unwrap();
    assert!(exposure <= (budget + 2) as f64, "{b}");
    // Past the budget: served, not recorded, and the headers say why.
    let limit: Vec<_> = last.get_all("ratelimit").iter().collect();
    assert!(
        limit
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("\"exposure\";r=0")),
        "{last:?}"
    );
    let (_, f) = get(&h, "/v1/stats/recording").await;
    assert_eq!(f["repeats_discarded"], 299, "{f}");
    assert!(
        f["over_budget_discarded"].as_u64().unwrap() >= 300 - budget - 2,
        "{f}"
    );
    // Fifty people, one view each of the same page: fifty pages.
    for i in 0..50u8 {
        assert_eq!(
            get_from(&h, target, [198, 51, 100, i]).await.0,
            StatusCode::OK
        );
    }
    h.state.engine.ledger().flush().unwrap();
    assert_eq!(h.state.engine.ledger().pages(), pages + 50);
}

/// `/readyz` reports a failed write (here a disk-full answer from a write)
/// until a write succeeds again.
#[tokio::test]
async fn readyz_reports_a_failed_write_until_one_succeeds() {
    use hubsearch_server::error::{ApiError, Code};
    use hubsearch_server::Work;
    let h = hub();
    let (s, _) = get(&h, "/readyz").await;
    assert_eq!(s, StatusCode::OK);
    let failed: Result<(), ApiError> = h
        .state
        .run_blocking(Work::Write, |_| {
            Err(ApiError::new(
                Code::InsufficientStorage,
                "no space left on device",
            ))
        })
        .await;
    assert!(failed.is_err());
    let (s, v) = get(&h, "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "write_failing", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("insufficient_storage"));
    // A client's own mistake is not a server failure.
    let body = json!({"id": "acme/ok-card", "description": "fine"});
    let (s, _) = post(&h, "/v1/models", &h.acme, json!({"id": "bad id!"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(get(&h, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    // A write that succeeds clears it.
    let (s, v) = post(&h, "/v1/models", &h.acme, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(get(&h, "/readyz").await.0, StatusCode::OK);
}

/// A replica restored from a snapshot at start says which on `/readyz`
/// (object name, bucket, position, writer, the log's start); one that
/// started from its own state says null.
#[tokio::test]
async fn readyz_says_which_snapshot_a_replica_restored_from() {
    let mut h = hub();
    let (s, v) = get(&h, "/readyz").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["restored"].is_null(), "{v}");
    h.state = h
        .state
        .clone()
        .with_restored(Some(hubsearch_server::RestoredFrom {
            snapshot: "snapshot-000000000163-r1".into(),
            bucket: "hubsearch-snapshots".into(),
            position: 163,
            replica: "r1".into(),
            log_first: 164,
        }));
    let (s, v) = get(&h, "/readyz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["restored"],
        json!({
            "snapshot": "snapshot-000000000163-r1",
            "bucket": "hubsearch-snapshots",
            "position": 163,
            "replica": "r1",
            "log_first": 164
        }),
        "{v}"
    );
}

/// Served pages given up on are `hubsearch_cluster_pages_lost` on
/// `/metrics`, with `hubsearch_cluster_pages_failed` kept as an alias of
/// the same count; outside cluster mode neither is there.
#[tokio::test]
async fn metrics_count_the_served_pages_lost() {
    let h = hub();
    let (_, m) = get(&h, "/metrics").await;
    assert!(!m.as_str().unwrap().contains("pages_lost"), "{m}");
    assert!(h
        .state
        .engine
        .set_replicator(Arc::new(LostPages { lost: 3 })));
    let (s, m) = get(&h, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().unwrap();
    for name in [
        "hubsearch_cluster_pages_lost",
        "hubsearch_cluster_pages_failed",
    ] {
        assert!(
            m.contains(&format!("# TYPE {name} gauge\n{name} 3\n")),
            "{name}: {m}"
        );
    }
    // The JSON says `pages_lost`, and `pages_failed` (deprecated) with the
    // same count, on /readyz and /v1/cluster.
    for v in get_each(&h, StatusCode::OK, &["/readyz", "/v1/cluster"]).await {
        let c = &v["cluster"];
        assert_eq!(
            (c["pages_sent"].as_u64(), c["pages_lost"].as_u64()),
            (Some(40), Some(3)),
            "{v}"
        );
        assert_eq!(c["pages_failed"], c["pages_lost"], "{v}");
    }
}

/// POST an admin key's `action` (`rotate`, `revoke`) on the key `prefix`.
async fn key_action(h: &Hub, prefix: &str, action: &str) -> (StatusCode, Value) {
    post(
        h,
        &format!("/v1/keys/{prefix}/{action}"),
        &h.admin,
        json!({}),
    )
    .await
}

/// The admin key routes: only an admin key manages keys; a key made over
/// HTTP works at once and is listed without its secret; rotating revokes
/// the old key (401 key_revoked) and hands out a working one; revoking
/// twice is 409, an unknown prefix 404.
#[tokio::test]
async fn admin_key_routes_make_list_revoke_and_rotate_keys() {
    let h = hub();
    let (s, _, _) = call(&h, Method::GET, "/v1/keys", Some(&h.acme), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&h, "/v1/keys", &h.admin, json!({"builder": "zeta"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let prefix = v["info"]["prefix"].as_str().unwrap().to_string();
    assert!(
        key.starts_with(&prefix) && v["info"]["builder"] == "zeta",
        "{v}"
    );
    let card = |id: &str| json!({"id": id, "description": "a zeta model"});
    let (s, v) = post(&h, "/v1/models", &key, card("zeta/one")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _, listed) = call(&h, Method::GET, "/v1/keys", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!listed.to_string().contains(&key), "a listing shows no key");
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["prefix"] == prefix.as_str()));
    let (s, v) = key_action(&h, &prefix, "rotate").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fresh = v["key"].as_str().unwrap().to_string();
    assert_eq!(
        post_code(&h, "/v1/models", &key, card("zeta/two")).await,
        (StatusCode::UNAUTHORIZED, Some("key_revoked".to_string()))
    );
    let (s, v) = post(&h, "/v1/models", &fresh, card("zeta/two")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let fresh_prefix = &fresh[..11];
    let (s, _) = key_action(&h, fresh_prefix, "revoke").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        post_code(&h, "/v1/models", &fresh, card("zeta/three")).await,
        (StatusCode::UNAUTHORIZED, Some("key_revoked".to_string()))
    );
    let (s, v) = key_action(&h, fresh_prefix, "revoke").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("key_revoked_already"))
    );
    assert_eq!(
        post_code(&h, "/v1/keys/hs_ffffffff/revoke", &h.admin, json!({})).await,
        (StatusCode::NOT_FOUND, Some("key_not_found".to_string()))
    );
}

/// What the document allows is accepted and what it forbids refused (two
/// of the OpenAPI fuzzer's findings): a blank date filter is no bound, and
/// window_hours past its documented maximum is a 400, not clamped.
#[tokio::test]
async fn blank_filters_are_no_bound_and_documented_limits_hold() {
    let h = hub();
    let (s, all) = get(&h, "/v1/search?q=translation").await;
    assert_eq!(s, StatusCode::OK);
    let (s, blank) = get(
        &h,
        "/v1/search?q=translation&created_after=&updated_before=",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{blank}");
    assert_eq!(ids(&blank, "hits"), ids(&all, "hits"));
    assert_eq!(
        get(&h, "/v1/stats/exposure?window_hours=8760").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get_code(&h, "/v1/stats/exposure?window_hours=8761").await,
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_parameter".to_string())
        )
    );
    let (s, _) = get(&h, "/v1/stats/exposure?window_hours=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sort_by_calls_reads_the_ledger() {
    let h = hub();
    let (_, before) = get(&h, "/v1/listings?sort=calls&per_page=100").await;
    let all = ids(&before, "hits");
    // The card listed last before any call.
    let target = all.last().unwrap().clone();
    assert_ne!(all[0], target);
    for i in 0..3 {
        let body = json!({"model": &target, "idempotency_key": format!("c{i}")});
        let (s, v) = post(&h, "/v1/calls", &h.admin, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, after) = get(&h, "/v1/listings?sort=calls&per_page=3").await;
    assert_eq!(ids(&after, "hits")[0], target, "{after}");
    // Paging stays consistent: the second page does not repeat the first.
    let (_, p2) = get(&h, "/v1/listings?sort=calls&per_page=3&page=2").await;
    for id in ids(&p2, "hits") {
        assert!(!ids(&after, "hits").contains(&id), "{id} on two pages");
    }
}

#[tokio::test]
async fn reads_and_writes_are_admitted_apart_and_shed_with_503() {
    let mut h = hub();
    h.state.config.queue_timeout_ms = 20;
    h.state.config.stats_cache_ms = 0;
    // Every write slot busy: a publish is shed, searches still run.
    let held = hold_all(&h.state.write_permits);
    let (s, v) = post(&h, "/v1/models", &h.acme, json!({"id": "acme/queued"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{v}"
    );
    let (s, _) = get(&h, "/v1/search?q=bert&mode=text").await;
    assert_eq!(s, StatusCode::OK);
    drop(held);
    // Every read slot busy: stats, cards and listings are shed too, and
    // /healthz (no engine work) still answers.
    let held = hold_all(&h.state.permits);
    let engine_reads = [
        "/v1/stats/exposure",
        "/v1/models/facebook/bart-large-cnn",
        "/v1/builders/facebook",
        "/v1/listings",
        "/api/models/facebook/bart-large-cnn",
    ];
    get_each(&h, StatusCode::SERVICE_UNAVAILABLE, &engine_reads).await;
    let (s, _) = get(&h, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    drop(held);
}

/// A search tells its page's id; a paid call may name the page and rank it
/// came from (what off-policy estimates join on), both or neither.
#[tokio::test]
async fn calls_can_name_the_page_they_came_from() {
    let h = hub();
    let (s, v) = get(&h, "/v1/search?q=summarization").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let page = v["page_id"]
        .as_u64()
        .expect("a recorded search has a page_id");
    let first = v["hits"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = post(
        &h,
        "/v1/calls",
        &h.admin,
        json!({"model": first, "page_id": page, "rank": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for bad in [
        json!({"model": first, "page_id": page}),
        json!({"model": first, "rank": 1}),
        json!({"model": first, "page_id": page, "rank": 0}),
    ] {
        assert_eq!(
            post_code(&h, "/v1/calls", &h.admin, bad.clone()).await,
            (
                StatusCode::BAD_REQUEST,
                Some("invalid_parameter".to_string())
            ),
            "{bad}"
        );
    }
    // A page never recorded: not found (the same call can name it once it is).
    let unrecorded = json!({"model": first, "page_id": page + 1000, "rank": 1});
    assert_eq!(
        post_code(&h, "/v1/calls", &h.admin, unrecorded).await,
        (StatusCode::NOT_FOUND, Some("page_not_found".to_string()))
    );
}

/// Browser apps on other origins may call the API (server.cors_origins,
/// default any): preflights are answered, and the headers a frontend reads
/// are exposed.
#[tokio::test]
async fn cross_origin_browser_apps_are_allowed() {
    let h = hub();
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/calls")
        .header(header::ORIGIN, "https://app.example.org")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap();
    let resp = app(h.state.clone()).oneshot(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let hd = resp.headers();
    assert_eq!(hd[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let methods = hd[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = hd[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let origin = "https://app.example.org";
    let (_, hd, _) = get_with(&h, "/api/models?limit=1", header::ORIGIN, origin).await;
    assert_eq!(hd[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let exposed = hd[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("link") && exposed.contains("x-error-code"),
        "{exposed}"
    );
}

/// Models like this one: the nearest cards by vector, the model itself left
/// out, filters honoured; an unknown model is a 404.
#[tokio::test]
async fn similar_models_are_the_nearest_cards() {
    let h = hub();
    let (s, v) = get(
        &h,
        "/v1/models/Helsinki-NLP/opus-mt-en-de/similar?per_page=3",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got = ids(&v, "hits");
    assert!(!got.is_empty() && got.len() <= 3, "{got:?}");
    assert!(
        !got.contains(&"Helsinki-NLP/opus-mt-en-de".to_string()),
        "{got:?}"
    );
    let sims = each(&v["hits"], |x| x["score"].as_f64().unwrap());
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{sims:?}");
    let (s, v) = get(
        &h,
        "/v1/models/Helsinki-NLP/opus-mt-en-de/similar?task=automatic-speech-recognition",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!ids(&v, "hits").is_empty());
    for hit in v["hits"].as_array().unwrap() {
        assert_eq!(hit["task"], "automatic-speech-recognition", "{hit}");
    }
    assert_eq!(
        get_code(&h, "/v1/models/no/such/similar").await,
        (StatusCode::NOT_FOUND, Some("model_not_found".to_string()))
    );
    let (s, _) = get(&h, "/v1/models/Helsinki-NLP/opus-mt-en-de/similar?bogus=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// With `server.rate_limit_per_minute`, a client past its share gets a 429
/// with `Retry-After`; every answer carries the IETF RateLimit headers; a
/// key is its own client; health checks are never limited.
#[tokio::test]
async fn clients_over_their_rate_get_429() {
    let mut h = hub();
    h.state.config.rate_limit_per_minute = 2;
    let (s1, hd1, _) = get_h(&h, "/v1/search?q=translation").await;
    assert_eq!(s1, StatusCode::OK);
    assert_eq!(hd1["ratelimit-policy"], "\"default\";q=2;w=60");
    assert!(
        hd1["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"default\";r=1;"),
        "{:?}",
        hd1["ratelimit"]
    );
    let (s2, _, _) = get_h(&h, "/v1/listings").await;
    assert_eq!(s2, StatusCode::OK);
    let (s3, hd3, v) = get_h(&h, "/v1/search?q=translation").await;
    assert_eq!(s3, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    let wait: u64 = hd3[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Health checks are never limited; a key is a client of its own.
    let (s, _, _) = get_h(&h, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&h, Method::GET, "/v1/listings", Some(&h.acme), None).await;
    assert_eq!(s, StatusCode::OK);
}

/// Filters as docs/api.md defines them, checked against sets the test
/// computes itself from the unfiltered listing: several values of a facet
/// (OR), exclusion, ranges; disjunctive facet counts; tags as the Hub
/// writes them.
#[tokio::test]
async fn filters_values_exclusions_ranges_and_disjunctive_facets() {
    let h = hub();
    let (_, all) = get(&h, "/v1/listings?per_page=100").await;
    let all = all["hits"].as_array().unwrap().clone();
    assert_eq!(all.len(), 7);
    let expect = |keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        let mut v: Vec<String> = all
            .iter()
            .filter(|c| keep(c))
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let has_lang = |c: &Value, l: &str| {
        c["languages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str() == Some(l))
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "language=de&language=fr",
            expect(&|c| has_lang(c, "de") || has_lang(c, "fr")),
        ),
        (
            "language=de,fr",
            expect(&|c| has_lang(c, "de") || has_lang(c, "fr")),
        ),
        ("language=-en", expect(&|c| !has_lang(c, "en"))),
        (
            "language=en&license=-mit",
            expect(&|c| has_lang(c, "en") && c["license"] != "mit"),
        ),
        (
            "task=summarization&task=translation",
            expect(&|c| c["task"] == "summarization" || c["task"] == "translation"),
        ),
        (
            "min_downloads=5000&max_downloads=500000",
            expect(&|c| (5000..=500000).contains(&c["downloads"].as_u64().unwrap())),
        ),
        (
            "min_likes=41",
            expect(&|c| c["likes"].as_u64().unwrap() >= 41),
        ),
    ];
    for (q, want) in cases {
        assert!(
            !want.is_empty() && want.len() < 7,
            "{q}: a case that selects"
        );
        for path in ["/v1/search?per_page=100&", "/v1/listings?per_page=100&"] {
            let (s, v) = get(&h, &format!("{path}{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            let mut got = ids(&v, "hits");
            got.sort();
            assert_eq!(got, want, "{path}{q}");
            assert_eq!(v["total"], want.len(), "{path}{q}");
        }
    }
    // Disjunctive facets: picking a task keeps the other tasks' counts
    // (over everything else the filter selects); other facets count the
    // selection.
    let (_, v) = get(&h, "/v1/search?facets=true&task=translation").await;
    assert_eq!(v["total"], 1, "{v}");
    let tasks = v["facets"]["task"].as_array().unwrap();
    assert!(tasks.len() >= 5, "every task stays visible: {tasks:?}");
    let mut langs = each(&v["facets"]["language"], |x| x["value"].as_str().unwrap());
    langs.sort();
    assert_eq!(
        langs,
        ["de", "en"],
        "languages of the translation card only"
    );
    // Tags as the Hub writes them, on /v1 and on the Hub API.
    let (_, v) = get(&h, "/v1/search?tag=dataset:opus").await;
    assert_eq!(ids(&v, "hits"), ["Helsinki-NLP/opus-mt-en-de"]);
    let (_, v) = get(&h, "/api/models?filter=dataset:opus").await;
    let hf = each(&v, |m| m["id"].as_str().unwrap());
    assert_eq!(hf, ["Helsinki-NLP/opus-mt-en-de"]);
    let (_, v) = get(&h, "/api/models?filter=pytorch&filter=license:apache-2.0").await;
    let hf = each(&v, |m| m["id"].as_str().unwrap());
    assert_eq!(hf, ["sentence-transformers/all-MiniLM-L6-v2"]);
    let (_, v) = get(&h, "/api/models?filter=sentence-transformers").await;
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "library names are tags: {v}"
    );
}

/// Browsing without words pages past the ranked candidates (no wall at
/// `search.candidates`), every card once; `semantic_ratio` weighs hybrid.
#[tokio::test]
async fn browsing_pages_past_the_candidates_and_semantic_ratio() {
    let h = common::hub_with(|c| c.search.candidates = 3);
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let (s, v) = get(&h, &format!("/v1/search?per_page=2&page={page}")).await;
        assert_eq!(s, StatusCode::OK, "page {page}: {v}");
        assert_eq!(v["total"], 7);
        let ranks = each(&v["hits"], |x| x["rank"].as_u64().unwrap());
        let first = (page as u64 - 1) * 2 + 1;
        assert_eq!(
            ranks,
            (first..first + ranks.len() as u64).collect::<Vec<_>>()
        );
        seen.extend(ids(&v, "hits"));
        match v["next_page"].as_u64() {
            Some(p) => page = p as usize,
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!((seen.len(), dedup.len()), (7, 7), "{seen:?}");
    // A query keeps its depth: the last page is cut there and names no
    // next page, a page past it is empty.
    let (s, v) = get(
        &h,
        "/v1/search?q=bert+german+model+english&per_page=2&facets=true&page=2",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v, "hits").len(), 1, "cut at the depth (3): {v}");
    assert!(v["next_page"].is_null(), "{v}");
    let (s, v) = get(&h, "/v1/search?q=german&per_page=2&page=3").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        ids(&v, "hits").is_empty() && v["next_page"].is_null(),
        "{v}"
    );
    // Browsing pages past the candidates record nothing; absurd pages are
    // refused; -0 is a price of 0.
    let (_, v) = get(&h, "/v1/search?per_page=2&page=4").await;
    assert!(v["page_id"].is_null() && !ids(&v, "hits").is_empty(), "{v}");
    let (s, v) = get(&h, "/v1/search?page=18446744073709551615").await;
    assert_eq!(s.as_u16(), 200, "{v}");
    assert!(ids(&v, "hits").is_empty(), "{v}");
    let (_, v) = get(&h, "/v1/search?max_price=-0&per_page=100").await;
    let (_, zero) = get(&h, "/v1/search?max_price=0&per_page=100").await;
    assert!(zero["total"].as_u64().unwrap() > 0, "{zero}");
    assert_eq!(ids(&v, "hits"), ids(&zero, "hits"), "-0 is 0");
    let (s, v) = get(
        &h,
        "/v1/search?per_page=3&q=german+speech&semantic_ratio=0.7",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["mode"], "hybrid");
    let (_, v) = get(&h, "/v1/search?per_page=3&q=german+speech&semantic_ratio=0").await;
    assert_eq!(v["mode"], "text");
    // With another explicit mode it is not read: the same page as without.
    let (s, with) = get(
        &h,
        "/v1/search?per_page=3&q=german+speech&mode=text&semantic_ratio=0.5",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{with}");
    let (_, without) = get(&h, "/v1/search?per_page=3&q=german+speech&mode=text").await;
    assert_eq!(
        (with["mode"].clone(), ids(&with, "hits")),
        (without["mode"].clone(), ids(&without, "hits"))
    );
    // The weight changes the fused relevance.
    let rel = |v: &Value| each(&v["hits"], |x| x["explain"]["relevance"].as_f64().unwrap());
    let (_, a) = get(
        &h,
        "/v1/search?per_page=3&q=german+speech&semantic_ratio=0.1&explain=true&policy=relevance",
    )
    .await;
    let (_, b) = get(
        &h,
        "/v1/search?per_page=3&q=german+speech&semantic_ratio=0.9&explain=true&policy=relevance",
    )
    .await;
    assert_ne!(rel(&a), rel(&b));
}

/// Rules chosen so the OpenAPI document can state them (docs/api.md, The
/// document): a blank parameter is one left out; a request may not revoke
/// its own key; a Hub boolean is true or false.
#[tokio::test]
async fn blank_parameters_are_absent_and_a_key_cannot_revoke_itself() {
    let h = hub();
    let blank = [
        "/v1/search?q=bert&page=&per_page=&policy=&seed=&explain=",
        "/v1/listings?sort=&page=",
        "/v1/stats/exposure?window_hours=",
        "/v1/suggest?q=ber&limit=",
    ];
    get_each(&h, StatusCode::OK, &blank).await;
    let (s, v) = get(&h, "/api/models?full=yes").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let own: String = h.admin.chars().take(11).collect();
    let (s, v) = key_action(&h, &own, "revoke").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("key_in_use")),
        "{v}"
    );
    // Still valid: the refused revocation changed nothing.
    let (s, _, _) = call(&h, Method::GET, "/v1/keys", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::OK);
}

/// A request with an `If-Match` header: the status, headers and body.
async fn call_if(
    h: &Hub,
    method: Method,
    uri: &str,
    if_match: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let headers = [(header::IF_MATCH, if_match)];
    request(h, method, uri, Some(&h.admin), &headers, body).await
}

/// Conditional writes (docs/api.md): GET's ETag names the card's version
/// and changes when the card does; PUT and DELETE with If-Match write only
/// while the card is that version (412 precondition_failed otherwise, the
/// card unchanged); `*` needs the card to exist; a malformed value is 400.
/// Two writers holding the same tag race twenty times: each time exactly
/// one wins (the lost-update case If-Match exists for).
#[tokio::test]
async fn if_match_guards_replace_and_delete() {
    let h = hub();
    let uri = "/v1/models/acme/dutch-asr";
    let tag = |hs: &axum::http::HeaderMap| hs[header::ETAG].to_str().unwrap().to_string();
    let (s, hs, _) = get_h(&h, uri).await;
    assert_eq!(s, StatusCode::OK);
    let t0 = tag(&hs);
    assert!(
        t0.starts_with('"') && t0.ends_with('"') && t0.len() == 18,
        "{t0}"
    );
    // The same card, the same tag.
    assert_eq!(tag(&get_h(&h, uri).await.1), t0);
    let card = |d: &str| json!({"id": "acme/dutch-asr", "description": d});
    // A stale or foreign tag: 412, the card unchanged.
    let (s, _, v) = call_if(
        &h,
        Method::PUT,
        uri,
        "\"0000000000000000\"",
        Some(card("x")),
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
    assert_eq!(v["error"]["code"], "precondition_failed");
    assert_eq!(tag(&get_h(&h, uri).await.1), t0);
    // A weak tag never matches (strong comparison), even the current one.
    let (s, _, _) = call_if(&h, Method::PUT, uri, &format!("W/{t0}"), Some(card("x"))).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // Malformed: 400.
    let (s, _, v) = call_if(&h, Method::PUT, uri, "no-quotes", Some(card("x"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // The current tag (in a list): written; the answer's tag is GET's.
    let (s, hs, _) = call_if(
        &h,
        Method::PUT,
        uri,
        &format!("\"a\", {t0}"),
        Some(card("v1")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let t1 = tag(&hs);
    assert_ne!(t1, t0, "a changed card has another tag");
    assert_eq!(tag(&get_h(&h, uri).await.1), t1);
    // The old tag no longer works.
    let (s, _, _) = call_if(&h, Method::PUT, uri, &t0, Some(card("v2"))).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // `*`: only an existing card.
    let (s, _, _) = call_if(
        &h,
        Method::PUT,
        "/v1/models/acme/not-there",
        "*",
        Some(json!({"id": "acme/not-there", "description": "new"})),
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        get(&h, "/v1/models/acme/not-there").await.0,
        StatusCode::NOT_FOUND
    );
    // Racing writers with the same tag: exactly one wins each time.
    for round in 0..20 {
        let t = tag(&get_h(&h, uri).await.1);
        let a = call_if(&h, Method::PUT, uri, &t, Some(card(&format!("a{round}"))));
        let b = call_if(&h, Method::PUT, uri, &t, Some(card(&format!("b{round}"))));
        let (ra, rb) = tokio::join!(a, b);
        let mut got = [ra.0.as_u16(), rb.0.as_u16()];
        got.sort_unstable();
        assert_eq!(got, [200, 412], "round {round}");
        let winner = if ra.0 == StatusCode::OK { "a" } else { "b" };
        let (_, v) = get(&h, uri).await;
        assert_eq!(v["model"]["description"], format!("{winner}{round}"));
    }
    // DELETE: a stale tag is refused, the current one deletes.
    let (s, _, _) = call_if(&h, Method::DELETE, uri, &t1, None).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let t = tag(&get_h(&h, uri).await.1);
    let (s, _, _) = call_if(&h, Method::DELETE, uri, &t, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(get(&h, uri).await.0, StatusCode::NOT_FOUND);
}

/// `index.page_log_keep` reaches the ledger (docs/ledger.md, Retention):
/// of 6 searches served, the logs of the newest 4 stay, all 6 are booked.
#[tokio::test]
async fn the_page_log_keeps_what_the_config_says() {
    let h = common::hub_with(|c| c.index.page_log_keep = 4);
    let engine = h.state.engine.clone();
    for q in [
        "bert",
        "opus",
        "german",
        "sentiment",
        "summarization",
        "translation",
    ] {
        engine
            .search(&hubsearch_core::SearchRequest::new(q, 10))
            .unwrap();
    }
    let mut queries = Vec::new();
    engine
        .ledger()
        .each_logged(|p| queries.push(p.query), |_| {})
        .unwrap();
    assert_eq!(
        queries,
        ["german", "sentiment", "summarization", "translation"]
    );
    assert_eq!(engine.ledger().pages(), 6);
    assert_eq!(engine.ledger().page_log_counts().unwrap(), (4, 2));
}
