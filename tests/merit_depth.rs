//! Merit does not depend on how deep retrieval goes (issue 26, defect 4):
//! serving the same queries with `search.candidates` doubled leaves every
//! model's accumulated merit in search's book unchanged, to float rounding
//! (docs/ranking.md, Merit).

use std::collections::HashMap;
use std::path::Path;

use hubsearch_core::{Config, Group, Impact, PolicyKind, SearchRequest};
use hubsearch_engine::progress::silent;
use hubsearch_engine::Engine;
use hubsearch_tests::generated_hub;

const QUERIES: [&str; 8] = [
    "translation",
    "speech recognition",
    "bert",
    "image classification",
    "text generation",
    "summarization model",
    "sentiment analysis",
    "question answering",
];

/// Every model's (merit, rounds) in search's model book after serving
/// `QUERIES` three times (relevance, pages of 10) at `candidates`.
fn books(dir: &Path, hub: &Path, candidates: usize) -> HashMap<u64, (f64, u64)> {
    let mut config = Config::default();
    config.index.dir = dir.join(format!("index-{candidates}"));
    config.embedding.model = "none".parse().unwrap();
    config.search.candidates = candidates;
    let engine = Engine::open_or_create(config).unwrap();
    engine.import(&[hub.to_path_buf()], &silent).unwrap();
    for _ in 0..3 {
        for q in QUERIES {
            let mut req = SearchRequest::new(q, 10);
            req.policy = Some(PolicyKind::Relevance);
            engine.search(&req).unwrap();
        }
    }
    let keys: Vec<u64> = engine.hub().downloads.keys().copied().collect();
    let book = engine
        .ledger()
        .book_of(Group::Model, Impact::Calls, keys.iter().copied());
    book.iter()
        .map(|(k, a)| (*k, (a.merit, a.rounds)))
        .collect()
}

#[test]
fn doubling_candidates_leaves_every_models_merit_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let hub = generated_hub(dir.path(), 3000, 41);
    let shallow = books(dir.path(), &hub, 200);
    let deep = books(dir.path(), &hub, 400);
    // The doubling matters: more models were candidates at 400.
    let candidates = |b: &HashMap<u64, (f64, u64)>| b.values().filter(|a| a.1 > 0).count();
    assert!(
        candidates(&deep) > candidates(&shallow) + 100,
        "{} vs {} candidates: the queries do not reach 200 cards",
        candidates(&deep),
        candidates(&shallow)
    );
    // Tolerance: 1e-9 of a model's merit (float rounding only).
    let mut total = (0.0, 0.0);
    for k in shallow.keys().chain(deep.keys()) {
        let a = shallow.get(k).map_or(0.0, |a| a.0);
        let b = deep.get(k).map_or(0.0, |a| a.0);
        total.0 += a;
        total.1 += b;
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(1.0),
            "model {k}: merit {a} at 200 candidates, {b} at 400"
        );
    }
    assert!(total.0 > 1.0, "no merit accrued: {total:?}");
}
