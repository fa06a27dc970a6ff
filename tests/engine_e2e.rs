//! The engine end to end on a generated hub: import -> search -> stats.

use hubsearch_core::{Filter, PolicyKind, SearchRequest};
use hubsearch_engine::progress::silent;
use hubsearch_sim::HubGenerator;
use hubsearch_tests::{engine_with, generated_hub};

#[test]
fn generated_hub_is_searchable_by_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub.jsonl");
    let cards: Vec<_> = HubGenerator::new(3000, 5).collect();
    let text: String = cards
        .iter()
        .map(|c| serde_json::to_string(c).unwrap() + "\n")
        .collect();
    std::fs::write(&hub, text).unwrap();
    let engine = engine_with(dir.path(), "hash");
    let report = engine.import(&[hub], &silent).unwrap();
    assert_eq!(report.total_cards, 3000);

    // Every filter returns only matching cards, and facet counts agree with
    // the cards themselves.
    let asr: Vec<_> = cards
        .iter()
        .filter(|c| c.task.as_deref() == Some("automatic-speech-recognition"))
        .collect();
    let mut req = SearchRequest::new("", 100);
    req.filter = Filter {
        task: hubsearch_core::FacetFilter::is("automatic-speech-recognition"),
        ..Default::default()
    };
    req.facets = true;
    let resp = engine.search(&req).unwrap();
    assert_eq!(resp.total, asr.len());
    assert!(resp.hits.iter().all(|h| req.filter.matches(&h.card)));
    let de = asr
        .iter()
        .filter(|c| c.languages.iter().any(|l| l == "de"))
        .count() as u64;
    let facet_de = resp.facets["language"]
        .iter()
        .find(|(l, _)| l == "de")
        .map_or(0, |(_, n)| *n);
    assert_eq!(facet_de, de);

    // A query built from a card's own words finds that kind of card first.
    let resp = engine
        .search(&SearchRequest::new("german speech recognition", 5))
        .unwrap();
    let top = &resp.hits[0].card;
    assert_eq!(top.task.as_deref(), Some("automatic-speech-recognition"));
    assert!(top.languages.iter().any(|l| l == "de"), "{top:?}");

    // Pages are consistent: page 2 continues page 1.
    let mut p1 = SearchRequest::new("translation", 10);
    let all = engine
        .search(&SearchRequest::new("translation", 20))
        .unwrap();
    let first = engine.search(&p1).unwrap();
    p1.offset = 10;
    let second = engine.search(&p1).unwrap();
    let ids = |r: &hubsearch_engine::SearchResponse| {
        r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!([ids(&first), ids(&second)].concat(), ids(&all));
    assert_eq!(second.hits[0].rank, 11);

    let stats = engine.stats().unwrap();
    assert_eq!(stats.models, 3000);
    assert!(stats.downloads.top_1pct_share > 0.3);
}

/// `eval`'s replay gives the same figures, bit for bit, when run twice on the
/// same inputs (no hash-map order in any sum), and FairCo spreads exposure.
#[test]
fn replay_is_bit_reproducible() {
    use hubsearch_eval::trec::{Qrels, Query};
    use hubsearch_eval::{replay, ReplayOptions};
    let dir = tempfile::tempdir().unwrap();
    let hub = generated_hub(dir.path(), 2000, 5);
    let engine = engine_with(dir.path(), "none");
    engine.import(&[hub], &silent).unwrap();
    let texts = [
        "translation",
        "text classification",
        "speech recognition",
        "summarization",
    ];
    let mut queries = Vec::new();
    let mut qrels = Qrels::new();
    for (i, t) in texts.iter().enumerate() {
        let qid = format!("q{i}");
        // Judge every third of the first 30 hits relevant, the rest of the
        // first 12 not: the judgments differ from the ranking.
        let hits = engine.search(&SearchRequest::new(*t, 30)).unwrap().hits;
        let judged = hits
            .iter()
            .enumerate()
            .filter(|(r, _)| r % 3 == 2 || *r < 12)
            .map(|(r, h)| (h.id.clone(), u32::from(r % 3 == 2)))
            .collect();
        qrels.insert(qid.clone(), judged);
        queries.push(Query {
            qid,
            text: t.to_string(),
        });
    }
    let config = engine.config().clone();
    drop(engine);
    let opts = ReplayOptions {
        repeat: 5,
        ..Default::default()
    };
    let run = || -> Vec<String> {
        [
            PolicyKind::Relevance,
            PolicyKind::Fair,
            PolicyKind::Stochastic,
        ]
        .iter()
        .map(|p| {
            let r = replay(&config, *p, &queries, &qrels, &opts).unwrap();
            serde_json::to_string(&(&r.means, &r.per_query)).unwrap()
        })
        .collect()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b, "two replays of the same inputs differ");
    let ee = |i: usize| -> f64 {
        let v: serde_json::Value = serde_json::from_str(&a[i]).unwrap();
        v[0]["ee_l"].as_f64().unwrap()
    };
    assert!(ee(1) < ee(0), "fair EE-L {} vs relevance {}", ee(1), ee(0));
}

/// Names first: a query that is a model's name finds the original first
/// (un-namespaced), then its most downloaded copies, ahead of cards that
/// merely mention the name more often; a copy nobody downloaded keeps its
/// place; filters still hold.
#[test]
fn a_named_model_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub.jsonl");
    let card = |id: &str, downloads: u64, task: &str, desc: &str| {
        serde_json::json!({"id": id, "downloads": downloads, "task": task, "description": desc})
            .to_string()
    };
    let lines = [
        card(
            "bert-base-uncased",
            10,
            "fill-mask",
            "BERT base model, uncased.",
        ),
        card("someone/bert-base-uncased", 500, "fill-mask", "a copy"),
        card("nobody/bert-base-uncased", 0, "fill-mask", "another copy"),
        card(
            "fan/bert-base-uncased-finetuned-squad",
            9000,
            "question-answering",
            "bert base uncased bert base uncased fine-tuned from bert-base-uncased",
        ),
        card(
            "org/fake-news-detection",
            0,
            "text-classification",
            "fake news detection",
        ),
        card(
            "lab/roberta-fake-news",
            700,
            "text-classification",
            "detects fake news",
        ),
    ];
    let mut text: String = HubGenerator::new(500, 3)
        .map(|c| serde_json::to_string(&c).unwrap() + "\n")
        .collect();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    std::fs::write(&hub, text).unwrap();
    let engine = engine_with(dir.path(), "none");
    engine.import(&[hub], &silent).unwrap();
    let ids = |q: &str, f: Filter| -> Vec<String> {
        let mut req = SearchRequest::new(q, 5);
        req.filter = f;
        req.record = false;
        engine
            .search(&req)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    let got = ids("bert base uncased", Filter::default());
    assert_eq!(
        got[..2],
        ["bert-base-uncased", "someone/bert-base-uncased"],
        "{got:?}"
    );
    // With the author, that very model.
    assert_eq!(
        ids("nobody bert-base-uncased", Filter::default())[0],
        "nobody/bert-base-uncased"
    );
    // A name alone does not lift a copy nobody downloaded over the original.
    assert_ne!(got[2], "nobody/bert-base-uncased");
    // Filters hold: the original is fill-mask, not question answering.
    let qa = Filter {
        task: hubsearch_core::FacetFilter::is("question-answering"),
        ..Default::default()
    };
    let filtered = ids("bert base uncased", qa);
    assert_eq!(
        filtered[0], "fan/bert-base-uncased-finetuned-squad",
        "{filtered:?}"
    );
    assert!(!filtered
        .iter()
        .any(|id| id.ends_with("/bert-base-uncased") || id == "bert-base-uncased"));
}

/// A `stochastic` page asked for without a seed is a draw of its own: five
/// such pages are not all alike, each is logged with the seed it was drawn
/// with, and asking again with a logged seed gives that page back.
#[test]
fn seedless_stochastic_pages_are_fresh_draws_replayed_by_their_logged_seed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = generated_hub(dir.path(), 2000, 17);
    let engine = engine_with(dir.path(), "none");
    engine.import(&[hub], &silent).unwrap();
    let ask = |seed: Option<u64>| {
        let mut req = SearchRequest::new("translation", 10);
        req.policy = Some(PolicyKind::Stochastic);
        req.seed = seed;
        let resp = engine.search(&req).unwrap();
        resp.hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
    };
    let pages: Vec<Vec<String>> = (0..5).map(|_| ask(None)).collect();
    assert!(
        pages.iter().any(|p| p != &pages[0]),
        "five seedless draws gave one order: {:?}",
        pages[0]
    );
    let mut logs = Vec::new();
    engine
        .ledger()
        .each_logged(|p| logs.push(p), |_| {})
        .unwrap();
    assert_eq!(logs.len(), 5);
    let seeds: std::collections::HashSet<u64> = logs.iter().map(|l| l.seed).collect();
    assert_eq!(seeds.len(), 5, "each seedless page has a seed of its own");
    for (log, page) in logs.iter().zip(&pages) {
        let shown: Vec<String> = log.shown.iter().map(|s| s.model.to_string()).collect();
        assert_eq!(&shown, page, "the log shows the page served");
        assert_eq!(
            &ask(Some(log.seed)),
            page,
            "the logged seed replays the page"
        );
    }
}

/// One book per purpose (docs/ranking.md): 1,000 fair-listing views leave
/// search's `fair` ordering and scores exactly as they were (listings keep
/// a book of their own), while the listing itself still rotates; the
/// listing book survives a restart.
#[test]
fn fair_listing_views_leave_search_fair_unchanged() {
    use hubsearch_core::ListingSort;
    let dir = tempfile::tempdir().unwrap();
    let hub = generated_hub(dir.path(), 2000, 23);
    let probe = |engine: &hubsearch_engine::Engine, q: &str| {
        let mut req = SearchRequest::new(q, 10);
        req.policy = Some(PolicyKind::Fair);
        req.record = false;
        let resp = engine.search(&req).unwrap();
        resp.hits
            .into_iter()
            .map(|h| (h.id, h.score))
            .collect::<Vec<_>>()
    };
    let listed = |engine: &hubsearch_engine::Engine| {
        let r = engine
            .listing(&Filter::default(), ListingSort::Fair, 0, 10, true)
            .unwrap();
        r.hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
    };
    let queries = [
        "translation",
        "speech recognition",
        "bert",
        "image classification",
    ];
    let (first_listing, last_listing, listing_book) = {
        let engine = engine_with(dir.path(), "none");
        engine.import(&[hub], &silent).unwrap();
        // Search has a history of its own for `fair` to read.
        for q in queries.iter().cycle().take(40) {
            let mut req = SearchRequest::new(*q, 10);
            req.policy = Some(PolicyKind::Fair);
            engine.search(&req).unwrap();
        }
        let before: Vec<_> = queries.iter().map(|q| probe(&engine, q)).collect();
        let first_listing = listed(&engine);
        let mut last_listing = first_listing.clone();
        for _ in 1..1000 {
            last_listing = listed(&engine);
        }
        let after: Vec<_> = queries.iter().map(|q| probe(&engine, q)).collect();
        assert_eq!(
            before, after,
            "fair listing views moved search's fair ranking"
        );
        engine.ledger().flush().unwrap();
        let book = engine.ledger().listing_book_of(std::iter::empty());
        (first_listing, last_listing, book.pages())
    };
    assert_ne!(
        first_listing, last_listing,
        "the fair listing did not rotate"
    );
    assert_eq!(listing_book, 1000);
}

/// Vectors of published cards survive a crash (no clean shutdown, no save):
/// they are journalled before the publish returns and replayed on open, so
/// start-up finds them without the embedding model; a deleted card's vector
/// stays deleted.
#[test]
fn published_vectors_survive_a_crash_without_a_save() {
    use hubsearch_core::ModelCard;
    use hubsearch_core::ModelKey;
    let dir = tempfile::tempdir().unwrap();
    let hub = generated_hub(dir.path(), 300, 29);
    let card = |id: &str, desc: &str| ModelCard {
        id: id.into(),
        name: id.split('/').nth(1).unwrap().into(),
        builder: id.split('/').next().unwrap().into(),
        description: desc.into(),
        ..Default::default()
    };
    let (kept, gone) = ("acme/wombat-detector", "acme/quokka-counter");
    let before = {
        let engine = engine_with(dir.path(), "hash");
        engine.import(&[hub], &silent).unwrap();
        engine
            .create_model(card(kept, "finds wombats in camera-trap photos"))
            .unwrap();
        engine
            .create_model(card(gone, "counts quokkas on a beach"))
            .unwrap();
        engine.delete_model(gone).unwrap();
        let v = engine
            .semantic()
            .unwrap()
            .vectors()
            .vector_of(ModelKey::of(kept))
            .unwrap();
        // A crash: no Drop, no flush, no save.
        std::mem::forget(engine);
        v
    };
    let engine = engine_with(dir.path(), "hash");
    let vectors = engine.semantic().unwrap().vectors();
    assert_eq!(vectors.vector_of(ModelKey::of(kept)), Some(before));
    assert_eq!(vectors.vector_of(ModelKey::of(gone)), None);
    // Nothing left to embed at start-up.
    let report = engine.sync_vectors(&silent).unwrap().unwrap();
    assert_eq!(report.embedded, 0, "{report:?}");
}
