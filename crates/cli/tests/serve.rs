//! The real binary serving real HTTP on a local port: health, search,
//! publishing with a key made by `hubsearch keys create`, the real
//! huggingface_hub Python client, and a graceful shutdown on SIGTERM that
//! flushes the ledger.

mod common;
use common::{http, hub, root, serve};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn serves_http_talks_to_huggingface_hub_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    let fixtures = root().join("tests/fixtures");
    let out = hub(&index, "hash")
        .args(["import", "--quiet"])
        .arg(fixtures.join("cards.jsonl"))
        .arg(fixtures.join("cards_md"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = hub(&index, "hash")
        .args(["keys", "create", "--builder", "acme"])
        .output()
        .unwrap();
    assert!(key.status.success());
    let key = String::from_utf8(key.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("hs_"));

    let (mut child, addr) = serve(&index, "hash");
    assert_eq!(http(&addr, "GET", "/healthz", &[], "").0, 200);
    let (s, body) = http(&addr, "GET", "/v1/search?q=opus+mt+en+de", &[], "");
    assert_eq!(s, 200);
    assert!(body.contains("Helsinki-NLP/opus-mt-en-de"), "{body}");
    let auth = format!("Bearer {key}");
    let card = r#"{"id": "acme/live-model", "task": "summarization", "description": "Summarises quokka sightings."}"#;
    let (s, body) = http(
        &addr,
        "POST",
        "/v1/models",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        card,
    );
    assert_eq!(s, 201, "{body}");
    let (_, body) = http(&addr, "GET", "/v1/search?q=quokka", &[], "");
    assert!(
        body.contains("acme/live-model"),
        "published model not searchable: {body}"
    );

    // The real huggingface_hub client (installed by scripts/test).
    let py = Command::new("python3")
        .arg(root().join("tests/hf_client.py"))
        .arg(format!("http://{addr}"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "huggingface_hub client failed (scripts/test installs it with pip):\n{}\n{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );

    // SIGTERM: graceful shutdown, ledger flushed.
    let (_, before) = http(&addr, "GET", "/v1/stats/exposure", &[], "");
    assert!(before.contains("\"pages_served\""), "{before}");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no graceful exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // Every served page is in the ledger after the restart.
    let (mut child, addr) = serve(&index, "hash");
    let (_, after) = http(&addr, "GET", "/v1/stats/exposure", &[], "");
    let pages = |s: &str| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"));
        v["pages_served"].as_u64().unwrap()
    };
    assert!(pages(&after) >= 2, "{after}");
    child.kill().unwrap();
    child.wait().unwrap();
}
