//! `hubsearch eval --calls SEED` end to end (docs/metrics.md, Simulated
//! calls): the real executable on a generated hub. With a seed the JSON
//! reproduces itself and `fair_impact` leaves `relevance`'s order; without
//! the option no call is drawn and the JSON says nothing of calls.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_hubsearch"))
        .env_remove("HUBSEARCH_INDEX")
        .env_remove("HUBSEARCH_CONFIG")
        .env("HUBSEARCH_EMBEDDING__MODEL", "none")
        .current_dir(dir)
        .args(["--index", "idx"])
        .args(args)
        .output()
        .expect("run hubsearch");
    assert!(
        out.status.success(),
        "hubsearch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replay two queries 5 times under relevance and fair_impact, with calls
/// of `seed` or none, and return the JSON's text.
fn eval(dir: &Path, seed: Option<&str>, out: &str) -> String {
    let mut args = vec![
        "eval",
        "--queries",
        "q.tsv",
        "--qrels",
        "qrels.txt",
        "--policy",
        "relevance,fair_impact",
        "--repeat",
        "5",
        "--json",
        out,
    ];
    if let Some(s) = seed {
        args.extend(["--calls", s]);
    }
    run(dir, &args);
    std::fs::read_to_string(dir.join(out)).unwrap()
}

/// A policy's report in the JSON.
fn policy<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == name)
        .unwrap()
}

#[test]
fn calls_are_seeded_and_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(
        d,
        &[
            "generate",
            "--models",
            "600",
            "--seed",
            "3",
            "-o",
            "hub.jsonl",
        ],
    );
    run(d, &["index", "--quiet", "hub.jsonl"]);
    std::fs::write(d.join("q.tsv"), "q1\tspeech recognition\nq2\ttranslation\n").unwrap();
    // Judge nothing: every hit is grade 0 and called with probability 0.05
    // when examined, so calls happen and fall where relevance shows.
    std::fs::write(
        d.join("qrels.txt"),
        "q1 0 nobody/none 1\nq2 0 nobody/none 1\n",
    )
    .unwrap();

    let off = eval(d, None, "off.json");
    let off: Value = serde_json::from_str(&off).unwrap();
    assert!(off.get("calls").is_none());
    for p in off["policies"].as_array().unwrap() {
        let means = p["means"].as_object().unwrap();
        assert!(!means
            .keys()
            .any(|k| k.contains("calls") || k.contains("disparity")));
    }
    // No calls: fair_impact is relevance (equal means, bit for bit).
    assert_eq!(
        policy(&off, "fair_impact")["means"],
        policy(&off, "relevance")["means"]
    );

    let a = eval(d, Some("11"), "a.json");
    let b = eval(d, Some("11"), "b.json");
    assert_eq!(a, b, "the same seed, the same JSON");
    let a: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(a["calls"]["seed"], 11);
    let rel = &policy(&a, "relevance")["means"];
    let fi = &policy(&a, "fair_impact")["means"];
    assert!(rel["sim_calls"].as_f64().unwrap() > 0.0);
    // Relevance ignores the books: its figures are those without calls.
    assert_eq!(rel["ee_l"], policy(&off, "relevance")["means"]["ee_l"]);
    // fair_impact acts on the calls.
    assert_ne!(fi["ee_l"], rel["ee_l"]);
}
