//! The replay with simulated paid calls (`hubsearch eval --calls SEED`,
//! docs/metrics.md, Simulated calls): the calls give `fair_impact` impact to
//! act on, a seed reproduces them, and without them nothing is drawn.

use hubsearch_core::{Config, Mode, ModelCard, PolicyKind};
use hubsearch_engine::Engine;
use hubsearch_eval::trec::{Qrels, Query};
use hubsearch_eval::{replay, CallModel, PolicyReport, ReplayOptions};

/// A hub of six speech models, `m0` the best match for the query, and its
/// config (impact_lambda 10: a lag in calls per merit outweighs relevance).
fn hub(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.index.dir = dir.join("idx");
    config.embedding.model = hubsearch_core::EmbeddingModel::None;
    config.ranking.impact_lambda = 10.0;
    let words = [
        "speech recognition speech recognition speech",
        "speech recognition speech",
        "speech recognition for english",
        "a speech model that does recognition of audio",
        "audio model with some speech",
        "speech",
    ];
    let cards: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let card = ModelCard {
                id: format!("b{i}/m{i}"),
                builder: format!("b{i}"),
                description: w.to_string(),
                ..Default::default()
            };
            serde_json::to_string(&card).unwrap() + "\n"
        })
        .collect();
    let path = dir.join("cards.jsonl");
    std::fs::write(&path, cards).unwrap();
    let e = Engine::open_or_create(config.clone()).unwrap();
    e.import(&[path], &hubsearch_engine::progress::silent)
        .unwrap();
    config
}

fn queries() -> (Vec<Query>, Qrels) {
    let q = vec![Query {
        qid: "q".into(),
        text: "speech recognition".into(),
    }];
    // Only the first model is relevant.
    let qrels: Qrels = [("q".to_string(), [("b0/m0".to_string(), 2)].into())].into();
    (q, qrels)
}

fn opts(calls: Option<CallModel>) -> ReplayOptions {
    ReplayOptions {
        mode: Mode::Text,
        repeat: 10,
        page: 3,
        calls,
        ..Default::default()
    }
}

/// The served order of every repetition.
fn orders(r: &PolicyReport) -> Vec<Vec<String>> {
    r.run
        .iter()
        .map(|(_, _, hits)| hits.iter().map(|(id, _)| id.clone()).collect())
        .collect()
}

/// With every call going to one model (only examined grade-2 hits call,
/// and only `m0` is), `fair_impact` moves the others up; without calls it
/// ranks as `relevance`, page for page.
#[test]
fn simulated_calls_make_fair_impact_act() {
    let dir = tempfile::tempdir().unwrap();
    let config = hub(dir.path());
    let (q, qrels) = queries();
    let one_group = CallModel {
        seed: 1,
        probability: [0.0, 0.0, 1.0],
    };
    let rel = replay(&config, PolicyKind::Relevance, &q, &qrels, &opts(None)).unwrap();
    let first = &orders(&rel)[0];
    assert_eq!(first[0], "b0/m0", "the relevant model leads: {first:?}");
    assert!(first.len() >= 4, "{first:?}");
    // Relevance ignores the books: the same order every time, calls or not.
    let rel_calls = replay(
        &config,
        PolicyKind::Relevance,
        &q,
        &qrels,
        &opts(Some(one_group)),
    )
    .unwrap();
    assert_eq!(orders(&rel_calls), orders(&rel));
    // m0 at rank 1 is examined (log attention: 1) and called on every page.
    assert_eq!(rel_calls.means["sim_calls"], 10.0);

    let fi_off = replay(&config, PolicyKind::FairImpact, &q, &qrels, &opts(None)).unwrap();
    assert_eq!(
        orders(&fi_off),
        orders(&rel),
        "no calls: fair_impact is relevance"
    );
    assert!(!fi_off.means.contains_key("sim_calls"));
    assert!(!fi_off.means.contains_key("impact_disparity"));

    let fi = replay(
        &config,
        PolicyKind::FairImpact,
        &q,
        &qrels,
        &opts(Some(one_group)),
    )
    .unwrap();
    let served = orders(&fi);
    // The first page has no calls booked yet; after m0's call it is pushed
    // down by the others' lag in calls per merit.
    assert_eq!(served[0], *first);
    assert_ne!(served, orders(&rel));
    assert!(
        served[1..].iter().any(|o| o[0] != "b0/m0"),
        "fair_impact never moved m0 from the top: {served:?}"
    );
    // Fewer calls reach m0 than under relevance, and the impact disparity
    // it targets is smaller.
    assert!(fi.means["sim_calls"] < rel_calls.means["sim_calls"]);
    assert!(
        fi.means["impact_disparity"] < rel_calls.means["impact_disparity"],
        "{} vs {}",
        fi.means["impact_disparity"],
        rel_calls.means["impact_disparity"]
    );
}

/// The same seed gives the same calls and figures; another seed other
/// calls.
#[test]
fn a_seed_reproduces_the_calls() {
    let dir = tempfile::tempdir().unwrap();
    let config = hub(dir.path());
    let (q, qrels) = queries();
    let run = |seed| {
        replay(
            &config,
            PolicyKind::FairImpact,
            &q,
            &qrels,
            &opts(Some(CallModel::new(seed))),
        )
        .unwrap()
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert!(a.means["sim_calls"] > 0.0);
    assert_eq!(a.means, b.means);
    assert_eq!(a.run, b.run);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert!(
        a.means != c.means || a.run != c.run,
        "seeds 5 and 6 drew the same"
    );
}
