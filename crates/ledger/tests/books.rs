//! One book per purpose (docs/ranking.md): fair listings' pages go to a book
//! of their own, apart from the book search's `fair` policies read, and
//! both survive a restart.

use hubsearch_core::{BuilderKey, Group, Impact, ModelKey};
use hubsearch_ledger::{Book, Impression, Ledger, PageRecord};
use hubsearch_rank::{Account, PageDelta};

fn page(model: u64, exposure: f64, book: Book) -> PageRecord {
    let a = Account {
        exposure,
        merit: 1.0,
        rounds: 1,
        impact: 0.0,
    };
    PageRecord {
        impressions: vec![Impression {
            model: ModelKey(model),
            builder: BuilderKey(100),
            rank: 1,
            exposure,
        }],
        model_delta: PageDelta::from([(model, a)]),
        builder_delta: PageDelta::from([(100, a)]),
        names: vec![(model, "a/x".into()), (100, "a".into())],
        log: None,
        book,
        query: None,
    }
}

#[test]
fn listing_pages_keep_their_own_book_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let check = |l: &Ledger| {
        let search = l.book_of(Group::Model, Impact::Calls, [1, 2]);
        let listing = l.listing_book_of([1, 2]);
        // Search: 3 pages of model 1 (exposure 0.5 each); listings: 7 of model 2.
        assert_eq!(search.pages(), 3);
        assert!((search.get(1).exposure - 1.5).abs() < 1e-12);
        assert_eq!(search.get(2), Account::default());
        assert_eq!(listing.pages(), 7);
        assert!((listing.get(2).exposure - 7.0).abs() < 1e-12);
        assert_eq!(listing.get(2).rounds, 7);
        assert_eq!(listing.get(1), Account::default());
        // Builders' book holds search pages only.
        let builders = l.book_of(Group::Builder, Impact::Calls, [100]);
        assert!((builders.get(100).exposure - 1.5).abs() < 1e-12);
        assert_eq!(l.pages(), 10);
    };
    {
        let l = Ledger::open(&path).unwrap();
        for i in 0..10 {
            if i % 3 == 0 && i < 9 {
                l.record_page(page(1, 0.5, Book::Search)).unwrap();
            } else {
                l.record_page(page(2, 1.0, Book::Listing)).unwrap();
            }
        }
        l.flush().unwrap();
        check(&l);
    }
    check(&Ledger::open(&path).unwrap());
}
