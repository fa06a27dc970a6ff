//! The call log's routes in process: every paid call's answer carries a
//! receipt whose entry is in the signed tree head; proofs, entries and the
//! 400 codes of bad ranges (docs/transparency.md). The real binary and
//! `hubsearch verify` are tested in crates/cli/tests/verify.rs.

#[allow(dead_code)]
mod common;

use axum::http::{Method, StatusCode};
use hubsearch_ledger::transparency::{
    hash_from_hex, leaf_hash, verify_consistency, verify_inclusion, Entry, PublicKey, SignedHead,
};
use serde_json::{json, Value};

use common::{hub, request, Hub};

async fn call(h: &Hub, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (s, _, v) = request(h, method, uri, Some(&h.admin), &[], body).await;
    (s, v)
}

async fn get(h: &Hub, uri: &str) -> Value {
    let (s, v) = call(h, Method::GET, uri, None).await;
    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    v
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    let list = v.as_array().unwrap().iter();
    list.map(|h| hash_from_hex(h.as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn receipts_are_in_the_signed_head_and_bad_ranges_are_refused() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let h = hub();
    let mut entries = Vec::new();
    for i in 0..5 {
        let body = json!({"model": "facebook/bart-large-cnn", "idempotency_key": format!("t{i}")});
        let (s, v) = call(&h, Method::POST, "/v1/calls", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["receipt"]["leaf_index"], i);
        let bytes = b64
            .decode(v["receipt"]["entry_b64"].as_str().unwrap())
            .unwrap();
        let e = Entry::parse(&bytes).unwrap();
        assert_eq!(
            (e.model.as_str(), e.amount_usd),
            ("facebook/bart-large-cnn", 0.004)
        );
        entries.push(bytes);
    }
    let key: PublicKey = serde_json::from_value(get(&h, "/v1/transparency/key").await).unwrap();
    let head: SignedHead = serde_json::from_value(get(&h, "/v1/transparency/sth").await).unwrap();
    let root = head.verify(&key.key().unwrap()).unwrap();
    assert_eq!(head.tree_size, 5);
    for (i, e) in entries.iter().enumerate() {
        let p = get(
            &h,
            &format!("/v1/transparency/proof?leaf_index={i}&tree_size=5"),
        )
        .await;
        let path = hashes(&p["audit_path"]);
        assert!(verify_inclusion(i as u64, 5, &leaf_hash(e), &path, &root));
    }
    let first = get(&h, "/v1/transparency/proof?leaf_index=0&tree_size=2").await;
    let c = get(&h, "/v1/transparency/consistency?first=2&second=5").await;
    let two = hubsearch_ledger::transparency::merkle::node_hash(
        &leaf_hash(&entries[0]),
        &leaf_hash(&entries[1]),
    );
    assert_eq!(hashes(&first["audit_path"]), vec![leaf_hash(&entries[1])]);
    assert!(verify_consistency(2, 5, &two, &root, &hashes(&c["proof"])));
    let got = get(&h, "/v1/transparency/entries?start=1&end=3").await;
    let want: Vec<String> = entries[1..3].iter().map(|e| b64.encode(e)).collect();
    assert_eq!(got["entries"], json!(want));
    // What the log does not hold yet is not found; a malformed request is
    // a 400.
    for (uri, status, code) in [
        (
            "/v1/transparency/proof?leaf_index=5&tree_size=5",
            StatusCode::NOT_FOUND,
            "leaf_beyond_tree",
        ),
        (
            "/v1/transparency/proof?leaf_index=0&tree_size=6",
            StatusCode::NOT_FOUND,
            "tree_size_beyond_head",
        ),
        (
            "/v1/transparency/consistency?first=3&second=2",
            StatusCode::NOT_FOUND,
            "no_proof",
        ),
        (
            "/v1/transparency/entries?start=5&end=6",
            StatusCode::NOT_FOUND,
            "leaf_beyond_tree",
        ),
        (
            "/v1/transparency/consistency?first=0&second=2",
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            "/v1/transparency/entries?start=0",
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
    ] {
        let (s, v) = call(&h, Method::GET, uri, None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{uri}"
        );
    }
    // Past the tree, entries are cut to it (RFC 9162 6.1).
    let (s, got) = call(
        &h,
        Method::GET,
        "/v1/transparency/entries?start=3&end=600",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let want: Vec<String> = entries[3..].iter().map(|e| b64.encode(e)).collect();
    assert_eq!(got["entries"], json!(want));
}
