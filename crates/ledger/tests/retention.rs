//! The page log's retention (docs/ledger.md, Retention): a ledger keeping
//! the newest K page logs holds exactly the last K pages served, in the
//! order they were entered, across a restart; its books equal those of a
//! ledger that kept every log; and a ledger written before logs had an
//! order of entry (its order table removed here with redb directly) gets
//! one, in (time, page) order, on opening; in cluster mode (page ids out
//! of time order) the pages applied last are the ones kept.

use hubsearch_core::{BuilderKey, Group, Impact, ModelKey};
use hubsearch_ledger::{Ledger, LoggedCandidate, PageLog};

mod support;

/// Page `i`: 5 candidates from a pool of 20 models (12 builders), the
/// first 2 shown.
fn page(i: u64) -> PageLog {
    let ranked: Vec<LoggedCandidate> = (0..5u64)
        .map(|j| {
            let model = 1 + (i * 7 + j * 3) % 20;
            LoggedCandidate {
                model: ModelKey(model),
                builder: BuilderKey(1000 + model % 12),
                relevance: 1.0 / (1.0 + j as f64),
                merit: 0.5 / (1.0 + j as f64),
                calls: 0.0,
                quantile: 0.25,
            }
        })
        .collect();
    support::page_log(i, ranked, 2, |_, c| {
        (format!("m/{}", c.model), format!("b{}", c.builder))
    })
}

/// The queries of the page logs stored, in page order.
fn logged(l: &Ledger) -> Vec<String> {
    let mut q = Vec::new();
    l.each_logged(|p| q.push(p.query), |_| {}).unwrap();
    q
}

fn books(l: &Ledger) -> Vec<(u64, u64)> {
    let keys: Vec<u64> = (1..=20).collect();
    let b = l.book_of(Group::Model, Impact::Calls, keys.clone());
    keys.iter()
        .map(|k| {
            let a = b.get(*k);
            (a.exposure.to_bits(), a.merit.to_bits())
        })
        .collect()
}

fn queries(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("query {i}")).collect()
}

#[test]
fn the_newest_logs_are_kept_and_the_books_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let all = Ledger::open(&dir.path().join("all.redb")).unwrap();
    let path = dir.path().join("kept.redb");
    let kept = Ledger::open(&path).unwrap();
    kept.keep_page_logs(25);
    // In several commits, so the retention runs more than once.
    for i in 0..100u64 {
        all.record_log(page(i)).unwrap();
        kept.record_log(page(i)).unwrap();
        if i % 17 == 0 {
            kept.flush().unwrap();
        }
    }
    all.flush().unwrap();
    kept.flush().unwrap();
    assert_eq!(logged(&all), queries(0..100));
    assert_eq!(logged(&kept), queries(75..100));
    assert_eq!(kept.page_log_counts().unwrap(), (25, 75));
    assert_eq!(all.page_log_counts().unwrap(), (100, 0));
    assert_eq!(books(&kept), books(&all));
    assert_eq!(kept.pages(), 100);
    drop(kept);
    // After a restart: the same logs, and the retention goes on from there.
    let again = Ledger::open(&path).unwrap();
    assert_eq!(logged(&again), queries(75..100));
    again.keep_page_logs(10);
    for i in 100..105u64 {
        again.record_log(page(i)).unwrap();
    }
    again.flush().unwrap();
    assert_eq!(logged(&again), queries(95..105));
    assert_eq!(again.page_log_counts().unwrap(), (10, 95));
    // 0 keeps everything from then on.
    again.keep_page_logs(0);
    for i in 105..120u64 {
        again.record_log(page(i)).unwrap();
    }
    again.flush().unwrap();
    assert_eq!(logged(&again), queries(95..120));
}

#[test]
fn logs_written_before_their_order_was_get_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    // Page ids falling as time rises (as a cluster replica's may be), so
    // page-number order is the reverse of time order.
    let apply = |l: &Ledger, i: u64| {
        l.apply_logged_log(page(i), 10_000 - i, 0, 1_700_000_000 + i, i + 1)
            .unwrap();
    };
    {
        let l = Ledger::open(&path).unwrap();
        for i in 0..30u64 {
            apply(&l, i);
        }
        l.flush().unwrap();
    }
    // As a ledger of an earlier version: no order of entry.
    {
        let db = redb::Database::open(&path).unwrap();
        let w = db.begin_write().unwrap();
        let order: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("page_log_order");
        assert!(w.delete_table(order).unwrap(), "the order table exists");
        let counters: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("counters");
        w.open_table(counters)
            .unwrap()
            .remove("page_log_next")
            .unwrap();
        w.commit().unwrap();
    }
    let l = Ledger::open(&path).unwrap();
    l.keep_page_logs(12);
    for i in 30..33u64 {
        apply(&l, i);
    }
    l.flush().unwrap();
    let mut kept = logged(&l);
    kept.sort();
    let mut newest = queries(21..33);
    newest.sort();
    assert_eq!(kept, newest);
    assert_eq!(l.page_log_counts().unwrap(), (12, 21));
}

/// In cluster mode page numbers are page ids, not in time order across
/// replicas: the retention follows the order pages were applied in (the
/// log's), not the ids. Pages from two "replicas" (high and low ids),
/// interleaved as a log would carry them.
#[test]
fn cluster_pages_go_in_log_order_not_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("replica.redb")).unwrap();
    l.keep_page_logs(6);
    let mut applied = Vec::new();
    for i in 0..20u64 {
        // Replica A's ids count down from high, replica B's up from low.
        let id = if i % 2 == 0 { (1 << 40) - i } else { 1000 + i };
        l.apply_logged_log(page(i), id, 0, 1_700_000_000 + i, i + 1)
            .unwrap();
        applied.push(id);
    }
    l.flush().unwrap();
    let mut kept = Vec::new();
    l.each_logged(|p| kept.push(p.page), |_| {}).unwrap();
    kept.sort_unstable();
    let mut newest: Vec<u64> = applied[14..].to_vec();
    newest.sort_unstable();
    assert_eq!(kept, newest);
    assert_eq!(l.page_log_counts().unwrap(), (6, 14));
}
