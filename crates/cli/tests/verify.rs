//! `hubsearch verify` against a live server (real HTTP, the real binary):
//! paid calls with receipts; the key, head, proof, consistency and entries
//! endpoints checked here with the ledger's verifiers; the verifier's run
//! (receipts, inclusion, consistency with a saved head, the builder audit,
//! the monitor); a receipt with one flipped byte refused; and a hub whose
//! stored history was rewritten while it was stopped caught by the saved
//! head.

use std::path::Path;
use std::process::{Child, Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hubsearch_ledger::transparency::{
    hash_from_hex, leaf_hash, verify_consistency, verify_inclusion, ConsistencyProof, Entries,
    Entry, InclusionProof, PublicKey, SignedHead,
};
use serde_json::Value;

mod common;
use common::{admin_index, http, serve};

/// SIGTERM (a graceful stop: the ledger is flushed), then wait.
fn stop(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    child.wait().unwrap();
}

fn get<T: serde::de::DeserializeOwned>(addr: &str, path: &str) -> T {
    let (s, body) = http(addr, "GET", path, &[], "");
    assert_eq!(s, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn verify(addr: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hubsearch"))
        .args(["verify", "--hub", &format!("http://{addr}")])
        .args(args)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn pay(addr: &str, key: &str, body: &str) -> Value {
    let auth = format!("Bearer {key}");
    let (s, answer) = http(
        addr,
        "POST",
        "/v1/calls",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert!(s == 201 || s == 200, "{s} {answer}");
    serde_json::from_str(&answer).unwrap()
}

/// The endpoints, checked with the ledger's verifiers.
fn check_endpoints(addr: &str, answers: &[Value]) {
    let key: PublicKey = get(addr, "/v1/transparency/key");
    let head: SignedHead = get(addr, "/v1/transparency/sth");
    let root = head.verify(&key.key().unwrap()).unwrap();
    assert_eq!(head.tree_size, answers.len() as u64);
    for a in answers {
        let i = a["receipt"]["leaf_index"].as_u64().unwrap();
        let bytes = B64
            .decode(a["receipt"]["entry_b64"].as_str().unwrap())
            .unwrap();
        let e = Entry::parse(&bytes).unwrap();
        assert_eq!(
            (e.leaf_index, e.model.as_str()),
            (i, a["model"].as_str().unwrap())
        );
        let p: InclusionProof = get(
            addr,
            &format!(
                "/v1/transparency/proof?leaf_index={i}&tree_size={}",
                head.tree_size
            ),
        );
        let path: Vec<_> = p
            .audit_path
            .iter()
            .map(|h| hash_from_hex(h).unwrap())
            .collect();
        assert!(verify_inclusion(
            i,
            head.tree_size,
            &leaf_hash(&bytes),
            &path,
            &root
        ));
    }
    let all: Entries = get(
        addr,
        &format!("/v1/transparency/entries?start=0&end={}", head.tree_size),
    );
    assert_eq!(all.entries.len() as u64, head.tree_size);
    let c: ConsistencyProof = get(
        addr,
        &format!(
            "/v1/transparency/consistency?first=1&second={}",
            head.tree_size
        ),
    );
    let first = leaf_hash(&B64.decode(&all.entries[0]).unwrap());
    let proof: Vec<_> = c.proof.iter().map(|h| hash_from_hex(h).unwrap()).collect();
    assert!(verify_consistency(1, head.tree_size, &first, &root, &proof));
    // What the log does not hold yet is a 404, a malformed request a 400,
    // each with a stable code; entries are cut to the tree.
    for (path, status, code) in [
        (
            "/v1/transparency/proof?leaf_index=99&tree_size=3",
            404,
            "leaf_beyond_tree",
        ),
        (
            "/v1/transparency/proof?leaf_index=0&tree_size=999",
            404,
            "tree_size_beyond_head",
        ),
        (
            "/v1/transparency/consistency?first=0&second=2",
            400,
            "invalid_range",
        ),
        (
            "/v1/transparency/consistency?first=1&second=999",
            404,
            "tree_size_beyond_head",
        ),
        (
            "/v1/transparency/consistency?first=3&second=2",
            404,
            "no_proof",
        ),
        (
            "/v1/transparency/entries?start=999&end=1000",
            404,
            "leaf_beyond_tree",
        ),
        (
            "/v1/transparency/proof?leaf_index=-1&tree_size=2",
            400,
            "invalid_parameter",
        ),
    ] {
        let (s, body) = http(addr, "GET", path, &[], "");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (s, v["error"]["code"].as_str().unwrap()),
            (status, code),
            "{path}"
        );
    }
    let cut: Entries = get(addr, "/v1/transparency/entries?start=0&end=5000");
    assert_eq!(
        cut.entries, all.entries,
        "entries past the tree are cut to it"
    );
    let none: Entries = get(addr, "/v1/transparency/entries?start=2&end=1");
    assert!(none.entries.is_empty());
}

#[test]
fn verify_checks_receipts_consistency_and_a_builders_income_on_a_live_hub() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    let key = admin_index(&index, "none");
    let (child, addr) = serve(&index, "none");
    let model = "Helsinki-NLP/opus-mt-en-de";
    let mut answers = Vec::new();
    for i in 0..6 {
        let body =
            format!(r#"{{"model": "{model}", "amount_usd": 0.25, "idempotency_key": "c{i}"}}"#);
        answers.push(pay(&addr, &key, &body));
    }
    // A retry answers the original's receipt.
    let again = pay(
        &addr,
        &key,
        &format!(r#"{{"model": "{model}", "idempotency_key": "c2"}}"#),
    );
    assert_eq!(again["receipt"], answers[2]["receipt"]);
    check_endpoints(&addr, &answers);

    let receipts = dir.path().join("receipts.jsonl");
    let lines: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
    std::fs::write(&receipts, lines.join("\n")).unwrap();
    let state = dir.path().join("heads.json");
    let (r, s) = (receipts.to_str().unwrap(), state.to_str().unwrap());
    let out = verify(
        &addr,
        &["--receipts", r, "--state", s, "--builder", "Helsinki-NLP"],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text.matches("is in the signed tree").count(), 6, "{text}");
    assert!(
        text.contains("Helsinki-NLP: 6 calls, 1.500000 USD"),
        "{text}"
    );

    // More calls: the monitor finds the new head consistent with the saved one.
    for i in 6..9 {
        let body =
            format!(r#"{{"model": "{model}", "amount_usd": 0.5, "idempotency_key": "c{i}"}}"#);
        pay(&addr, &key, &body);
    }
    let out = verify(
        &addr,
        &[
            "--state",
            s,
            "--builder",
            "Helsinki-NLP",
            "--monitor",
            "--interval",
            "0",
            "--rounds",
            "2",
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("consistent with the saved head: 6 -> 9 entries"),
        "{text}"
    );
    assert!(
        text.contains("Helsinki-NLP: 9 calls, 3.000000 USD"),
        "{text}"
    );

    // One flipped byte in a receipt's entry: not in the tree.
    let mut bad = answers[1].clone();
    let mut bytes = B64
        .decode(bad["receipt"]["entry_b64"].as_str().unwrap())
        .unwrap();
    bytes[30] ^= 1;
    bad["receipt"]["entry_b64"] = B64.encode(&bytes).into();
    let bad_file = dir.path().join("bad.jsonl");
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let out = verify(&addr, &["--receipts", bad_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    stop(child);

    // The operator rewrites an old entry (a call made cheaper) while the
    // hub is down: the restarted hub's head contradicts the saved one.
    rewrite_entry(&index.join("ledger.redb"), 4);
    let (child, addr) = serve(&index, "none");
    let out = verify(&addr, &["--state", s]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("FAIL: two signed heads of 9 entries with different roots"),
        "{text}"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        saved["evidence"].as_array().unwrap().len(),
        1,
        "the bad head is kept"
    );
    stop(child);
}

/// Change entry `leaf`'s amount in a stopped hub's ledger.
fn rewrite_entry(path: &Path, leaf: u64) {
    const ENTRIES: redb::TableDefinition<u64, &[u8]> =
        redb::TableDefinition::new("call_log_entries");
    use redb::ReadableTable;
    let db = redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(ENTRIES).unwrap();
        let old = t.get(leaf).unwrap().unwrap().value().to_vec();
        let text = String::from_utf8(old)
            .unwrap()
            .replace("\"amount_usd\":0.25", "\"amount_usd\":0.05");
        t.insert(leaf, text.as_bytes()).unwrap();
    }
    w.commit().unwrap();
}
