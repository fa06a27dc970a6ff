//! Merit learns from the paid calls a query's own pages gave (issue 26,
//! calibrated merit; docs/ranking.md, Merit: calls by query). Two engines
//! over the same generated hub serve the same pages; in one, the first
//! page's top hit is called from that page. Merit is read from search's
//! book (what each page added to a model's accumulated merit), so the test
//! checks the books `fair` reads, not the formula.

use std::path::Path;

use hubsearch_core::{card::key_of, Config, Group, Impact, PolicyKind, SearchRequest};
use hubsearch_engine::progress::silent;
use hubsearch_engine::{Engine, PaidCall};
use hubsearch_tests::generated_hub;

const ASKED: &str = "translation";

/// A model's accumulated merit in search's model book.
fn merit(engine: &Engine, id: &str) -> f64 {
    let k = key_of(id);
    engine
        .ledger()
        .book_of(Group::Model, Impact::Calls, [k])
        .get(k)
        .merit
}

/// Serve `query` once (relevance, a page of 10, recorded): its page id and
/// hit ids.
fn serve(engine: &Engine, query: &str) -> (u64, Vec<String>) {
    let mut req = SearchRequest::new(query, 10);
    req.policy = Some(PolicyKind::Relevance);
    let resp = engine.search(&req).unwrap();
    let ids = resp.hits.iter().map(|h| h.id.clone()).collect();
    (resp.page_id.expect("a recorded page"), ids)
}

/// The merit one more page of `query` adds to each of `ids`.
fn page_merit(engine: &Engine, query: &str, ids: &[&str]) -> Vec<f64> {
    let before: Vec<f64> = ids.iter().map(|id| merit(engine, id)).collect();
    serve(engine, query);
    ids.iter()
        .zip(before)
        .map(|(id, b)| merit(engine, id) - b)
        .collect()
}

struct Seen {
    /// On `ASKED`, after the calls (or none): what its top hit and its
    /// second hit earn from one more page.
    top: f64,
    second: f64,
    /// On the top hit's own id as the query, never served before.
    elsewhere: f64,
}

/// Serve `ASKED`, then `calls` paid calls of its top hit: naming the page
/// and rank (`named`) or not.
fn run(dir: &Path, hub: &Path, calls: usize, named: bool) -> Seen {
    let mut config = Config::default();
    config.index.dir = dir.join(format!("index-{calls}-{named}"));
    config.embedding.model = "none".parse().unwrap();
    // The model-wide correction off: only the per-query one acts.
    config.ranking.ips_impressions = 0;
    config.ranking.ips_query_impressions = 3;
    let engine = Engine::open_or_create(config).unwrap();
    engine.import(&[hub.to_path_buf()], &silent).unwrap();
    let (page, ids) = serve(&engine, ASKED);
    for _ in 0..calls {
        engine
            .record_paid_call(PaidCall {
                model: ids[0].clone(),
                page_id: named.then_some(page),
                rank: named.then_some(1),
                ..Default::default()
            })
            .unwrap();
    }
    // Shown twice more, called on none of them: 3 impressions.
    serve(&engine, ASKED);
    serve(&engine, ASKED);
    let got = page_merit(&engine, ASKED, &[&ids[0], &ids[1]]);
    let elsewhere = page_merit(&engine, &ids[0], &[&ids[0]])[0];
    Seen {
        top: got[0],
        second: got[1],
        elsewhere,
    }
}

#[test]
fn calls_from_a_querys_pages_move_merit_on_that_query_only() {
    let dir = tempfile::tempdir().unwrap();
    let hub = generated_hub(dir.path(), 2000, 7);
    let quiet = run(dir.path(), &hub, 0, true);
    let called = run(dir.path(), &hub, 3, true);
    let unnamed = run(dir.path(), &hub, 3, false);
    assert!(
        quiet.top > 0.0 && quiet.second > 0.0,
        "no merit: {:?}",
        quiet.top
    );
    // Called on every page it topped, at a rate far above the hub's (all
    // its calls): its merit on this query rises...
    assert!(
        called.top > quiet.top * 1.5,
        "called top hit: {} vs {} without calls",
        called.top,
        quiet.top
    );
    // ...the hit shown beside it and never called falls...
    assert!(
        called.second < quiet.second * 0.75,
        "uncalled second hit: {} vs {} without calls",
        called.second,
        quiet.second
    );
    // ...and on a query whose pages it has no calls or impressions from,
    // its merit is what it was without any calls.
    assert!(
        (called.elsewhere - quiet.elsewhere).abs() <= 1e-9,
        "elsewhere: {} vs {}",
        called.elsewhere,
        quiet.elsewhere
    );
    assert!(quiet.elsewhere > 0.0);
    // Calls that name no page are no query's: they move nobody's merit on
    // this query (they would lower every shown model's if the query's
    // rates were compared with the whole hub's, which counts them).
    for (got, want) in [
        (unnamed.top, quiet.top),
        (unnamed.second, quiet.second),
        (unnamed.elsewhere, quiet.elsewhere),
    ] {
        assert!((got - want).abs() <= 1e-9, "unnamed calls: {got} vs {want}");
    }
}
