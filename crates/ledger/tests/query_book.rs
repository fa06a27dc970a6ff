//! Calls by query (docs/ranking.md, Merit): a search page books its shown
//! models' impressions and exposure under its query, a paid call naming
//! the page it came from books a call under that page's query, and the
//! book survives a restart. Every expected figure is counted by hand from
//! the pages and calls the test makes.

use hubsearch_core::{BuilderKey, ModelKey};
use hubsearch_ledger::{
    query_key, test_call, Book, CallOrigin, CallRecord, Impression, Ledger, PageRecord,
};
use hubsearch_rank::{Account, PageDelta};

/// A search page for `query` showing `models` at ranks 1, 2, ... with
/// exposure 1 / rank.
fn page(query: &str, models: &[u64], book: Book) -> PageRecord {
    let a = Account {
        exposure: 1.0,
        merit: 1.0,
        rounds: 1,
        impact: 0.0,
    };
    PageRecord {
        impressions: models
            .iter()
            .enumerate()
            .map(|(i, m)| Impression {
                model: ModelKey(*m),
                builder: BuilderKey(100),
                rank: i + 1,
                exposure: 1.0 / (i + 1) as f64,
            })
            .collect(),
        model_delta: models.iter().map(|m| (*m, a)).collect::<PageDelta>(),
        builder_delta: PageDelta::from([(100, a)]),
        names: vec![(100, "a".into())],
        log: None,
        book,
        query: Some(query_key(query)),
    }
}

fn called(key: &str, model: u64, page: u64, rank: u64) -> CallRecord {
    CallRecord {
        origin: Some(CallOrigin { page, rank }),
        ..test_call(key, model, 100)
    }
}

#[test]
fn calls_are_booked_under_the_query_of_their_page_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let (q, other) = (query_key("Fill  Mask"), query_key("translation"));
    assert_eq!(q, query_key("fill mask"), "case and spacing do not matter");
    assert_ne!(q, other);
    let check = |l: &Ledger| {
        let (e, rate) = l.query_evidence_of(q, &[ModelKey(1), ModelKey(2), ModelKey(3)]);
        // Booked by query: three search pages of exposure 1 + 1/2 each, and
        // the three calls that named a page showing their model.
        assert!((rate - 3.0 / 4.5).abs() < 1e-12, "rate {rate}");
        // Pages 0 and 2 are "fill mask": model 1 at rank 1 twice (exposure
        // 2), model 2 at rank 2 twice (1); the listing page books nothing.
        assert_eq!(
            (e[0].impressions, e[0].exposure, e[0].calls),
            (2, 2.0, 2),
            "model 1: two pages at rank 1, called from pages 0 and 2"
        );
        assert_eq!((e[1].impressions, e[1].exposure, e[1].calls), (2, 1.0, 0));
        assert_eq!(
            (e[2].impressions, e[2].calls),
            (0, 0),
            "model 3 never shown on fill mask: its call from page 0 is no query's"
        );
        // Page 1 is "translation": model 1 at rank 2, called once from it.
        let (t, _) = l.query_evidence_of(other, &[ModelKey(1)]);
        assert_eq!((t[0].impressions, t[0].exposure, t[0].calls), (1, 0.5, 1));
    };
    {
        let l = Ledger::open(&path).unwrap();
        assert_eq!(
            l.record_page(page("fill mask", &[1, 2], Book::Search))
                .unwrap(),
            0
        );
        assert_eq!(
            l.record_page(page("translation", &[3, 1], Book::Search))
                .unwrap(),
            1
        );
        assert_eq!(
            l.record_page(page("Fill mask", &[1, 2], Book::Search))
                .unwrap(),
            2
        );
        // A fair listing's page is no query's.
        l.record_page(page("fill mask", &[1, 2], Book::Listing))
            .unwrap();
        l.record_call(called("a", 1, 0, 1)).unwrap();
        l.record_call(called("b", 1, 2, 1)).unwrap();
        l.record_call(called("c", 1, 1, 2)).unwrap();
        // No origin, a page this ledger never served, or a page that did not
        // show the model: no query's call.
        l.record_call(test_call("d", 2, 100)).unwrap();
        l.record_call(called("e", 2, 99, 1)).unwrap();
        l.record_call(called("f", 3, 0, 1)).unwrap();
        check(&l);
        l.flush().unwrap();
        l.close().unwrap();
    }
    check(&Ledger::open(&path).unwrap());
}
