//! Our nDCG@10, MRR@10 and Recall@100 against an independent implementation:
//! ir_measures (trec_eval's definitions, Python, installed by scripts/setup)
//! on the same seeded random runs and judgements.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use hubsearch_eval::metrics::{mrr, ndcg, recall};
use rand::{Rng, SeedableRng};

#[test]
fn metrics_match_ir_measures() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut qrels = std::fs::File::create(dir.path().join("qrels")).unwrap();
    let mut run = std::fs::File::create(dir.path().join("run")).unwrap();
    let mut ours: HashMap<String, [f64; 3]> = HashMap::new();
    let mut qids = Vec::new();
    let mut judged_of: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for q in 0..40 {
        let qid = format!("q{q}");
        let docs = rng.gen_range(5..300);
        let mut judged = HashMap::new();
        for d in 0..docs {
            if rng.gen_bool(0.3) {
                let g = rng.gen_range(0..3u32);
                writeln!(qrels, "{qid} 0 d{d} {g}").unwrap();
                judged.insert(format!("d{d}"), g);
            }
        }
        if judged.values().all(|g| *g == 0) {
            writeln!(qrels, "{qid} 0 d0 1").unwrap();
            judged.insert("d0".into(), 1);
        }
        let mut ranked: Vec<String> = (0..docs).map(|d| format!("d{d}")).collect();
        // Shuffle, keep up to 120.
        for i in (1..ranked.len()).rev() {
            let j = rng.gen_range(0..=i);
            ranked.swap(i, j);
        }
        ranked.truncate(120);
        // Scores with many ties, rank column unrelated to the order, lines
        // shuffled: trec_eval orders by score, ties by document id
        // (descending); `read_run` must read the same ranking.
        let mut lines: Vec<String> = ranked
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let score = (rng.gen_range(0..20) as f64) / 4.0;
                format!("{qid} Q0 {d} {} {score} test", i % 7 + 1)
            })
            .collect();
        for i in (1..lines.len()).rev() {
            let j = rng.gen_range(0..=i);
            lines.swap(i, j);
        }
        for l in &lines {
            writeln!(run, "{l}").unwrap();
        }
        qids.push(qid.clone());
        judged_of.insert(qid, judged);
    }
    drop((qrels, run));
    let read = hubsearch_eval::trec::read_run(&dir.path().join("run")).unwrap();
    for qid in &qids {
        let ranked = &read[qid];
        let judged = &judged_of[qid];
        ours.insert(
            qid.clone(),
            [
                ndcg(ranked, judged, 10),
                mrr(ranked, judged, 10),
                recall(ranked, judged, 100),
            ],
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ir_measures_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir.path().join("qrels"))
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ir_measures failed (scripts/setup installs it with pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: HashMap<String, HashMap<String, f64>> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (qid, [n, m, r]) in &ours {
        let t = &theirs[qid];
        for (name, mine) in [("ndcg@10", n), ("mrr@10", m), ("recall@100", r)] {
            assert!(
                (t[name] - mine).abs() < 1e-6,
                "{qid} {name}: ours {mine}, ir_measures {}",
                t[name]
            );
        }
    }
}

/// AWRF against TREC Fair Ranking 2021's definition computed with scipy's
/// `jensenshannon` (tests/awrf_check.py) on seeded random rankings, group
/// alignments (none, one or several groups per document) and targets.
#[test]
fn awrf_matches_scipy() {
    use hubsearch_eval::exposure::awrf;
    use std::collections::BTreeMap;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..200 {
        let n_groups = rng.gen_range(2..6);
        let names: Vec<String> = (0..n_groups).map(|g| format!("g{g}")).collect();
        let docs = rng.gen_range(1..40);
        let groups: HashMap<String, Vec<String>> = (0..docs)
            .map(|d| {
                let gs = names
                    .iter()
                    .filter(|_| rng.gen_bool(0.35))
                    .cloned()
                    .collect();
                (format!("d{d}"), gs)
            })
            .collect();
        let target: BTreeMap<String, f64> = names
            .iter()
            .map(|g| {
                let w = if rng.gen_bool(0.2) {
                    0.0
                } else {
                    rng.gen::<f64>()
                };
                (g.clone(), w)
            })
            .collect();
        if target.values().all(|w| *w == 0.0) {
            continue;
        }
        // Some ranked documents have no alignment at all.
        let ranking: Vec<String> = (0..rng.gen_range(1..30))
            .map(|_| format!("d{}", rng.gen_range(0..docs + 5)))
            .collect();
        let k = rng.gen_range(1..25);
        ours.push(awrf(&ranking, &groups, &target, k));
        cases.push(serde_json::json!({
            "ranking": ranking, "groups": groups, "target": target, "k": k,
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/awrf_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scipy failed (scripts/setup installs it with pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!((a - b).abs() < 1e-9, "case {i}: ours {a}, scipy {b}");
    }
}
