//! `hubsearch groups` end to end: the real executable on a hand-made ledger
//! export whose figures are worked out here by hand, and bad input that
//! must give one error line naming the file and line, never a panic.

use std::path::Path;
use std::process::{Command, Output};

use hubsearch_core::card::key_of;
use serde_json::{json, Value};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubsearch"));
    c.env_remove("HUBSEARCH_INDEX")
        .env_remove("HUBSEARCH_CONFIG");
    c
}

fn run(args: &[&str], cwd: &Path) -> Output {
    bin()
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run hubsearch")
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

fn candidate(id: &str, merit: f64, quantile: f64) -> Value {
    json!({
        "model": key_of(id),
        "builder": key_of(id.split('/').next().unwrap()),
        "relevance": merit,
        "merit": merit,
        "calls": 0.0,
        "quantile": quantile,
    })
}

fn shown(id: &str, rank: usize, exposure: f64) -> Value {
    json!({
        "model": id,
        "builder": id.split('/').next().unwrap(),
        "rank": rank,
        "exposure": exposure,
        "relevance": 0.5,
        "score": 0.5,
    })
}

/// Two pages, written in reverse page order:
/// page 5, query x: candidates p/a (merit 0.6, q 0.2), r/b (0.2, 0.8),
///   r/c (0.2, 0.9); shown p/a (exposure 1), r/b (0.5).
/// page 6, query y: candidates r/c (0.5, 0.9), p/a (0.5, 0.2); shown r/c (1).
/// Calls: p/a on page 5 rank 1; r/c twice on page 6 rank 1.
fn export(dir: &Path) {
    let page = |id: u64, query: &str, ranked: Vec<Value>, shown: Vec<Value>| {
        json!({
            "page": id, "time": 1_700_000_000u64 + id, "query": query, "mode": "text",
            "policy": "relevance", "params": {}, "group": "model", "seed": 0,
            "candidates": ranked.len(), "shown": shown, "first_rank": 1,
            "book": "search", "ranked": ranked,
        })
        .to_string()
    };
    let p6 = page(
        6,
        "y",
        vec![candidate("r/c", 0.5, 0.9), candidate("p/a", 0.5, 0.2)],
        vec![shown("r/c", 1, 1.0)],
    );
    let p5 = page(
        5,
        "x",
        vec![
            candidate("p/a", 0.6, 0.2),
            candidate("r/b", 0.2, 0.8),
            candidate("r/c", 0.2, 0.9),
        ],
        vec![shown("p/a", 1, 1.0), shown("r/b", 2, 0.5)],
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("pages.jsonl"), format!("{p6}\n{p5}\n")).unwrap();
    std::fs::write(
        dir.join("calls.csv"),
        "seq,time,model,builder,amount_usd,page,rank\n\
         0,1700000010,p/a,p,0.5,5,1\n\
         1,1700000011,r/c,r,0.25,6,1\n\
         2,1700000012,r/c,r,0.25,6,1\n",
    )
    .unwrap();
}

fn report(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("groups.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["report"].clone()
}

fn group<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {r}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_hand_made_export_by_builder_tier_and_age() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    export(&dir);
    let out = tmp.path().join("builder");
    let o = run(
        &[
            "groups",
            "--export",
            dir.to_str().unwrap(),
            "--by",
            "builder",
            "--windows",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&out);
    // p: E = 1, M = 0.6 + 0.5 = 1.1, I = 1; r: E = 0.5 + 1 = 1.5,
    // M = 0.2 + 0.2 + 0.5 = 0.9, I = 2. Totals E 2.5, M 2, I 3.
    let (p, q) = (group(&r, "p"), group(&r, "r"));
    close(f(&p["exposure_share"]), 1.0 / 2.5, "p's exposure share");
    close(f(&p["merit_share"]), 1.1 / 2.0, "p's merit share");
    close(f(&p["impact_share"]), 1.0 / 3.0, "p's impact share");
    close(f(&q["exposure_share"]), 1.5 / 2.5, "r's exposure share");
    close(f(&q["impact_share"]), 2.0 / 3.0, "r's impact share");
    close(f(&q["income_usd"]), 0.5, "r's income");
    close(
        f(&q["exposure_vs_merit"]),
        (1.5 / 2.5) / (0.9 / 2.0),
        "r's E/M share",
    );
    assert_eq!(q["candidate_slots"], 3);
    assert_eq!(q["models"], 2);
    // r has more exposure: listed first.
    assert_eq!(r["groups"][0]["group"], "r");
    let last = &r["windows"][1];
    assert_eq!(last["pages"], 2);
    // D_E = 1.5/0.9 - 1/1.1; D_I = 2/0.9 - 1/1.1 (two groups: max-min =
    // the pairwise mean).
    let de = 1.5 / 0.9 - 1.0 / 1.1;
    close(f(&last["exposure"]["max_min"]), de, "D_E");
    close(f(&last["exposure"]["mean_pairwise"]), de, "D_E pairwise");
    close(f(&last["impact"]["max_min"]), 2.0 / 0.9 - 1.0 / 1.1, "D_I");
    // Per query: x: E/M p 1/0.6, r 0.5/0.4; I/M p 1/0.6, r 0.
    // y: E/M r 1/0.5, p 0; I/M r 2/0.5, p 0.
    let qe = ((1.0 / 0.6 - 0.5 / 0.4) + 2.0) / 2.0;
    let qi = (1.0 / 0.6 + 4.0) / 2.0;
    close(
        f(&last["per_query_exposure"]["max_min"]),
        qe,
        "per-query D_E",
    );
    close(f(&last["per_query_impact"]["max_min"]), qi, "per-query D_I");
    assert_eq!(last["per_query_exposure"]["queries"], 2);
    // The first window is page 5 alone (pages are read in page order):
    // E/M p 1/0.6, r 0.5/0.4; one call so far.
    let first = &r["windows"][0];
    close(
        f(&first["exposure"]["max_min"]),
        1.0 / 0.6 - 0.5 / 0.4,
        "window 1 D_E",
    );
    close(f(&first["calls"]), 1.0, "window 1 calls");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("# Group report: by builder"), "{md}");
    for svg in [
        "exposure-pairwise.svg",
        "exposure-max-min.svg",
        "impact-pairwise.svg",
        "impact-max-min.svg",
        "groups-exposure.svg",
        "groups-impact.svg",
    ] {
        let s = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"), "{svg}");
        assert!(md.contains(svg), "report.md links {svg}");
    }

    // Tiers at 0.85 by the logged quantiles: p/a and r/b below, r/c above.
    // Below: E = 1 + 0.5, M = 0.6 + 0.2 + 0.5, I = 1; above: E = 1,
    // M = 0.2 + 0.5, I = 2.
    let out = tmp.path().join("tier");
    let o = run(
        &[
            "groups",
            "--export",
            dir.to_str().unwrap(),
            "--by",
            "tier",
            "--tiers",
            "0.85",
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&out);
    let (lo, hi) = (group(&r, "q < 0.85"), group(&r, "q >= 0.85"));
    close(f(&lo["exposure_share"]), 1.5 / 2.5, "low tier's exposure");
    close(f(&lo["merit_share"]), 1.3 / 2.0, "low tier's merit");
    close(f(&hi["impact_share"]), 2.0 / 3.0, "high tier's impact");
    close(
        f(&r["windows"].as_array().unwrap().last().unwrap()["exposure"]["max_min"]),
        1.0 / 0.7 - 1.5 / 1.3,
        "tiers' D_E",
    );

    // Ages from cards: p/a modified 10 days before the pages, r/b 400 days
    // before, r/c without a date.
    let cards = tmp.path().join("cards.jsonl");
    std::fs::write(
        &cards,
        "{\"id\": \"p/a\", \"author\": \"p\", \"last_modified\": \"2023-11-04T22:13:20Z\"}\n\
         {\"id\": \"r/b\", \"author\": \"r\", \"created_at\": \"2022-10-10T22:13:20Z\", \"last_modified\": \"2023-11-10T00:00:00Z\"}\n\
         {\"id\": \"r/c\", \"author\": \"r\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("age");
    let o = run(
        &[
            "groups",
            "--export",
            dir.to_str().unwrap(),
            "--by",
            "age",
            "--age-days",
            "30,365",
            "--cards",
            cards.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&out);
    let names: Vec<&str> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["age < 30d", "30d <= age < 365d", "age >= 365d", "unknown"]
    );
    // p/a: 2 slots, young; r/b: 1 slot, over a year (created counts, not
    // the later modification); r/c: 2 slots, no date.
    let slots: Vec<u64> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["candidate_slots"].as_u64().unwrap())
        .collect();
    assert_eq!(slots, [2, 0, 1, 2]);
    assert_eq!(r["input"]["unplaced"]["no_date"], 2);
    close(
        f(&group(&r, "unknown")["impact_share"]),
        2.0 / 3.0,
        "r/c's calls",
    );
}

/// Runs `groups` expecting failure; returns stderr.
fn fails(args: &[&str], cwd: &Path) -> String {
    let o = run(args, cwd);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn bad_input_names_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    export(&dir);
    let d = dir.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let base = |by: &'static str| vec!["groups", "--export", d, "--by", by, "--out", o];

    // No such export.
    let e = fails(
        &["groups", "--export", "/nonexistent/x", "--by", "builder"],
        tmp.path(),
    );
    assert!(e.contains("/nonexistent/x"), "{e}");

    // A page log line that is not one.
    let good = std::fs::read_to_string(dir.join("pages.jsonl")).unwrap();
    let first = good.lines().next().unwrap().to_string();
    std::fs::write(
        dir.join("pages.jsonl"),
        format!("{first}\n{{\"page\": 1,\n"),
    )
    .unwrap();
    let e = fails(&base("builder"), tmp.path());
    assert!(e.contains("pages.jsonl line 2"), "{e}");
    // The same page twice.
    std::fs::write(dir.join("pages.jsonl"), format!("{first}\n\n{first}\n")).unwrap();
    let e = fails(&base("builder"), tmp.path());
    assert!(
        e.contains("pages.jsonl line 3") && e.contains("line 1"),
        "{e}"
    );
    std::fs::write(dir.join("pages.jsonl"), &good).unwrap();

    // Calls: a page that is not a number, a missing column, no file.
    std::fs::write(
        dir.join("calls.csv"),
        "seq,time,model,builder,amount_usd,page,rank\n0,1,p/a,p,0.5,5,1\n1,2,p/a,p,0.5,five,1\n",
    )
    .unwrap();
    let e = fails(&base("builder"), tmp.path());
    assert!(
        e.contains("calls.csv line 3") && e.contains("\"five\""),
        "{e}"
    );
    std::fs::write(dir.join("calls.csv"), "seq,time,model\n0,1,p/a\n").unwrap();
    let e = fails(&base("builder"), tmp.path());
    assert!(
        e.contains("calls.csv line 1") && e.contains("builder"),
        "{e}"
    );
    std::fs::remove_file(dir.join("calls.csv")).unwrap();
    let e = fails(&base("builder"), tmp.path());
    assert!(e.contains("calls.csv"), "{e}");
    export(&dir);

    // A card record that is not a card.
    let cards = tmp.path().join("cards.jsonl");
    std::fs::write(
        &cards,
        "{\"id\": \"p/a\", \"author\": \"p\"}\n{\"id\": \"r/b\", \"downloads\": \"many\"}\n",
    )
    .unwrap();
    let mut args = base("age");
    args.extend(["--cards", cards.to_str().unwrap()]);
    let e = fails(&args, tmp.path());
    assert!(e.contains("cards.jsonl:2"), "{e}");
    // Ages without cards or an index.
    let mut args = base("age");
    args.extend(["--index", "/nonexistent/index"]);
    let e = fails(&args, tmp.path());
    assert!(e.contains("--cards"), "{e}");
    // Cut points out of order.
    let mut args = base("tier");
    args.extend(["--tiers", "0.99,0.9"]);
    let e = fails(&args, tmp.path());
    assert!(e.contains("ascending"), "{e}");
}
