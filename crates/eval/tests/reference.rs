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
        for (i, d) in ranked.iter().enumerate() {
            // Strictly decreasing scores: trec_eval re-sorts by score.
            writeln!(run, "{qid} Q0 {d} {} {} test", i + 1, 1000.0 - i as f64).unwrap();
        }
        ours.insert(
            qid,
            [
                ndcg(&ranked, &judged, 10),
                mrr(&ranked, &judged, 10),
                recall(&ranked, &judged, 100),
            ],
        );
    }
    drop((qrels, run));
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
