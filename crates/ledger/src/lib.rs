//! The exposure ledger: what every served page gave each model and builder,
//! and the paid calls they earned, in a redb database beside the index
//! (docs/ledger.md). Its own crate: it depends on the domain types and
//! ranking's exposure book only; the engine composes it.
//!
//! The parts: this module is the API's types and the ledger's opening,
//! queue and shutdown; [`pages`] records served pages; [`calls`] records
//! paid calls (idempotency keys, durability); [`figures`] has what
//! statistics, ranking and export read; [`state`] is the accounting in
//! memory (one `apply_page` / `apply_call` for live updates, batch commits
//! and start-up replay); [`store`] holds the redb tables and the writer
//! thread.
//!
//! Why redb: a pure-Rust embedded store with ACID write transactions and
//! crash-safe commits (copy-on-write B-trees, checksummed pages), no C
//! library to build, and typed tables keyed by the u64 keys the index already
//! carries. SQLite (rusqlite) would also do; we need no SQL, and redb keeps
//! the build pure Rust.
//!
//! Serving never waits on disk: the in-memory state (what the `fair` policy
//! reads) is updated at once, and the writer thread commits queued events in
//! batches (group commit, one fsync per batch). A page is *acknowledged* once
//! [`Ledger::flush`] returns after it; a paid call is acknowledged when
//! [`Ledger::record_call`] returns, which waits for its batch's commit. After
//! a crash, everything acknowledged is on disk.

mod calls;
pub mod codec;
mod figures;
mod pages;
pub mod state;
mod store;
pub mod transparency;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use hubsearch_core::{BuilderKey, ModelId, ModelKey};
use serde::Serialize;

use calls::Pending;
pub use codec::CodecError;
pub use state::{
    query_key, Book, Earnings, Impression, Keyed, LoggedCandidate, PageLog, PageRecord, QueryTally,
    ShownLog, Tally,
};
use state::{CallEntry, State};
use store::Event;
pub use store::LoggedCall;

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database: {0}")]
    Db(String),
    #[error("the ledger writer has stopped")]
    Stopped,
    /// An idempotency key sent again with another model or amount.
    #[error("idempotency key {key:?} was used for a different call (another model or amount)")]
    KeyReused { key: String },
    /// A proof, head or range of the call log that cannot be given.
    #[error(transparent)]
    Proof(#[from] transparency::ProofError),
}

/// A paid call to record.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CallRecord {
    pub model: ModelKey,
    pub builder: BuilderKey,
    pub model_id: ModelId,
    pub builder_name: String,
    pub amount_usd: f64,
    /// Whether the caller named the amount (a retry that does not is not
    /// compared on it: the model's price may have changed since).
    pub amount_stated: bool,
    /// A retried call with the same key is not counted twice.
    pub idempotency_key: Option<String>,
    /// The served page and rank the call came from, when the caller knows
    /// (the search response's `page_id` and the hit's rank): what
    /// off-policy estimates join calls to impressions on.
    pub origin: Option<CallOrigin>,
}

impl CallRecord {
    /// The call as the ledger books it, with sequence number `seq`.
    fn entry(&self, seq: u64) -> CallEntry {
        CallEntry {
            seq,
            model: self.model,
            builder: self.builder,
            amount_usd: self.amount_usd,
            idempotency_key: self.idempotency_key.clone(),
            origin: self.origin,
            query: None,
        }
    }

    /// The names of its model and builder keys.
    fn names(&self) -> [(u64, String); 2] {
        [
            (self.model.0, self.model_id.to_string()),
            (self.builder.0, self.builder_name.clone()),
        ]
    }
}

/// Where a paid call came from: a logged page and a rank on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CallOrigin {
    pub page: u64,
    pub rank: u64,
}

/// What recording a call did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallOutcome {
    /// The call's sequence number (the original one for a duplicate).
    pub seq: u64,
    /// False when the idempotency key was seen before (nothing recorded).
    pub recorded: bool,
}

/// What the ledger has logged of one model, for its merit estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallEvidence {
    pub calls: u64,
    pub impressions: u64,
    /// Cumulative exposure: the sum of its impressions' position weights.
    pub exposure: f64,
}

/// The ledger. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// The store (the writer thread writes, exports read).
    db: Arc<redb::Database>,
    /// Idempotency keys of calls being written, for duplicates to wait on.
    pending: Mutex<HashMap<String, Arc<Pending>>>,
    tx: Mutex<Option<Sender<Event>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Events queued but not yet committed (for the `ledger lag` metric).
    lag: AtomicU64,
    /// Set when a commit failed: the store refuses writes until a restart.
    failing: std::sync::atomic::AtomicBool,
    /// The call log's tree of committed entries and its signing key.
    log: Arc<transparency::CallLog>,
    /// Page logs kept (0: all; `Ledger::keep_page_logs`).
    keep: Arc<AtomicU64>,
}

use hubsearch_core::now_unix as now_secs;

impl Ledger {
    /// Open (or create) the ledger at `path`, loading its totals; its call
    /// log's key is `transparency.key` beside it (created on first start).
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Self::open_with_key(path, None)
    }

    /// Open the ledger at `path` with the call log key at `key` (which must
    /// exist: a cluster's shared key), or, for `None`, the one beside it.
    pub fn open_with_key(path: &Path, key: Option<&Path>) -> Result<Ledger, LedgerError> {
        let key = match key {
            Some(k) => transparency::key::load_or_create(k, false)?,
            None => {
                let beside = path.with_file_name("transparency.key");
                transparency::key::load_or_create(&beside, true)?
            }
        };
        Self::start(store::open_file(path)?, key)
    }

    /// A ledger in memory (replays, simulations, tests), with a fresh key.
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        Self::start(store::open_memory()?, transparency::key::generate())
    }

    fn start(db: redb::Database, key: ed25519_dalek::SigningKey) -> Result<Ledger, LedgerError> {
        let state = store::load(&db)?;
        let committed = store::open_log(&db, &state.names)?;
        let log = Arc::new(transparency::CallLog::new(key, committed));
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let keep = Arc::new(AtomicU64::new(0));
        let kept = keep.clone();
        let inner = Arc::new(Inner {
            keep,
            state: Mutex::new(state),
            pending: Mutex::new(HashMap::new()),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            lag: AtomicU64::new(0),
            db: db.clone(),
            failing: std::sync::atomic::AtomicBool::new(false),
            log: log.clone(),
        });
        let weak = Arc::downgrade(&inner);
        let weak2 = weak.clone();
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                let committed = |n| {
                    if let Some(i) = weak.upgrade() {
                        i.lag.fetch_sub(n, Ordering::Relaxed);
                    }
                };
                let failed = |pages: &[(&PageRecord, u64)]| {
                    if let Some(i) = weak2.upgrade() {
                        i.failing.store(true, Ordering::Relaxed);
                        let mut s = i.state.lock().unwrap_or_else(|e| e.into_inner());
                        for (page, hour) in pages {
                            s.unapply_page(page, *hour);
                        }
                    }
                };
                store::writer_loop(db, &log, rx, &kept, committed, failed)
            })
            .map_err(store::db_err)?;
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Ledger { inner })
    }

    /// Keep the newest `n` page logs (0: all), in the order they were
    /// entered (docs/ledger.md, Retention): from the next commit on, older
    /// ones are removed. The books (exposure, merit, calls) are totals and
    /// keep everything; only the per-page logs for off-policy research go.
    pub fn keep_page_logs(&self, n: u64) {
        self.inner.keep.store(n, Ordering::Relaxed);
    }

    /// (page logs stored, page logs removed by the retention so far), as
    /// committed.
    pub fn page_log_counts(&self) -> Result<(u64, u64), LedgerError> {
        store::page_log_counts(&self.inner.db)
    }

    /// (page logs stored, their bytes as stored), as committed.
    pub fn page_log_bytes(&self) -> Result<(u64, u64), LedgerError> {
        store::page_log_bytes(&self.inner.db)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, moved to log `position` when that is past what it has
    /// applied (cluster mode: an event applied before counts nothing).
    fn state_past(&self, position: u64) -> Option<MutexGuard<'_, State>> {
        let mut s = self.state();
        if position <= s.position {
            return None;
        }
        s.position = position;
        Some(s)
    }

    fn send(&self, e: Event) -> Result<(), LedgerError> {
        let tx = self.inner.tx.lock().unwrap_or_else(|e| e.into_inner());
        let tx = tx.as_ref().ok_or(LedgerError::Stopped)?;
        self.inner.lag.fetch_add(1, Ordering::Relaxed);
        tx.send(e).map_err(|_| LedgerError::Stopped)
    }

    /// Wait until everything recorded so far is committed to disk.
    pub fn flush(&self) -> Result<(), LedgerError> {
        let (ack, rx) = mpsc::channel();
        self.send(Event::Flush { ack })?;
        rx.recv().map_err(|_| LedgerError::Stopped)
    }

    /// False once a commit has failed: nothing is stored any more until the
    /// process restarts (what `/readyz` reports).
    pub fn healthy(&self) -> bool {
        !self.inner.failing.load(Ordering::Relaxed)
    }

    /// Events queued but not yet on disk.
    pub fn lag(&self) -> u64 {
        self.inner.lag.load(Ordering::Relaxed)
    }

    /// Stop the writer after committing everything queued.
    pub fn close(&self) -> Result<(), LedgerError> {
        let r = self.flush();
        self.inner.stop_writer();
        r
    }
}

impl Inner {
    /// Close the queue and wait for the writer, which commits what is
    /// queued before it ends.
    fn stop_writer(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

/// A paid call of 0.5 USD to `model` of `builder` under idempotency key
/// `key` (for tests here and in the engine's replica tests).
#[doc(hidden)]
pub fn test_call(key: &str, model: u64, builder: u64) -> CallRecord {
    CallRecord {
        model: ModelKey(model),
        builder: BuilderKey(builder),
        model_id: "a/x".into(),
        builder_name: "a".into(),
        amount_usd: 0.5,
        amount_stated: true,
        idempotency_key: Some(key.into()),
        origin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsearch_core::Group;
    use hubsearch_rank::{Account, PageDelta};

    fn page(model: u64, builder: u64) -> PageRecord {
        PageRecord {
            impressions: vec![Impression {
                model: ModelKey(model),
                builder: BuilderKey(builder),
                rank: 1,
                exposure: 1.0,
            }],
            model_delta: PageDelta::from([(model, account(1.0, 0.5))]),
            builder_delta: PageDelta::from([(builder, account(1.0, 0.5))]),
            names: vec![(model, "a/x".into()), (builder, "a".into())],
            log: None,
            book: Book::Search,
            query: None,
        }
    }

    fn account(exposure: f64, merit: f64) -> Account {
        Account {
            exposure,
            merit,
            rounds: 1,
            impact: 0.0,
        }
    }

    fn call(key: &str) -> CallRecord {
        test_call(key, 1, 100)
    }

    #[test]
    fn totals_survive_reopen_and_calls_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        {
            let l = Ledger::open(&path).unwrap();
            for _ in 0..10 {
                l.record_page(page(1, 100)).unwrap();
            }
            let call = call("k1");
            let first = l.record_call(call.clone()).unwrap();
            let again = l.record_call(call.clone()).unwrap();
            assert!(first.recorded && !again.recorded && first.seq == again.seq);
            l.record_call(CallRecord {
                idempotency_key: None,
                ..call
            })
            .unwrap();
            l.flush().unwrap();
            l.close().unwrap();
        }
        let l = Ledger::open(&path).unwrap();
        for (key, group) in [(1, Group::Model), (100, Group::Builder)] {
            assert_eq!(
                l.tally_of(key, group),
                Tally {
                    exposure: 10.0,
                    merit: 5.0,
                    rounds: 10,
                    impressions: 10
                }
            );
        }
        assert_eq!(
            l.earnings_of(100, Group::Builder),
            Earnings {
                calls: 2,
                income_usd: 1.0
            }
        );
        assert_eq!(l.pages(), 10);
        assert_eq!(l.model_exposure_recent(24)[&1], 10.0);
        // Idempotency keys survive a restart too.
        let dup = l.record_call(call("k1")).unwrap();
        assert!(!dup.recorded);
    }

    #[test]
    fn concurrent_duplicates_count_once_and_reused_keys_are_refused() {
        let l = Ledger::in_memory().unwrap();
        let outcomes: Vec<CallOutcome> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..16)
                .map(|_| sc.spawn(|| l.record_call(call("same")).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| o.recorded).count(), 1);
        assert!(outcomes.iter().all(|o| o.seq == outcomes[0].seq));
        assert_eq!(l.earnings_of(1, Group::Model).calls, 1);
        let other_amount = CallRecord {
            amount_usd: 0.75,
            ..call("same")
        };
        let other_model = CallRecord {
            model: ModelKey(2),
            ..call("same")
        };
        for reused in [other_amount, other_model] {
            assert!(matches!(
                l.record_call(reused),
                Err(LedgerError::KeyReused { .. })
            ));
        }
        // A retry that does not name the amount is not compared on it (the
        // model's price may have changed since).
        let unstated = CallRecord {
            amount_usd: 0.75,
            amount_stated: false,
            ..call("same")
        };
        assert!(!l.record_call(unstated).unwrap().recorded);
        assert_eq!(l.earnings_of(1, Group::Model).calls, 1);
    }

    /// An in-memory store whose fsync fails on demand.
    #[derive(Debug)]
    struct Flaky {
        inner: redb::backends::InMemoryBackend,
        fail: Arc<std::sync::atomic::AtomicBool>,
    }

    #[rustfmt::skip]
    impl redb::StorageBackend for Flaky {
        fn len(&self) -> Result<u64, std::io::Error> { self.inner.len() }
        fn read(&self, at: u64, out: &mut [u8]) -> Result<(), std::io::Error> { self.inner.read(at, out) }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> { self.inner.set_len(len) }
        fn write(&self, at: u64, data: &[u8]) -> Result<(), std::io::Error> { self.inner.write(at, data) }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("disk full (test)"));
            }
            self.inner.sync_data()
        }
    }

    #[test]
    fn a_call_whose_commit_fails_is_neither_acknowledged_nor_counted() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let db = redb::Builder::new()
            .create_with_backend(Flaky {
                inner: redb::backends::InMemoryBackend::new(),
                fail: fail.clone(),
            })
            .unwrap();
        let l = Ledger::start(db, transparency::key::generate()).unwrap();
        assert!(l.healthy());
        assert!(l.record_call(call("ok")).unwrap().recorded);
        l.record_page(page(1, 100)).unwrap();
        l.flush().unwrap();
        fail.store(true, Ordering::SeqCst);
        // A page whose batch fails is taken back from memory.
        l.record_page(page(1, 100)).unwrap();
        assert!(l.flush().is_err());
        assert_eq!(l.pages(), 1);
        assert_eq!(l.tally_of(1, Group::Model).exposure, 1.0);
        assert!(!l.healthy());
        assert!(l.record_call(call("lost")).is_err());
        // Memory did not run ahead of the store: one call, and the failed
        // key is not taken (a retry is not answered "already counted").
        assert_eq!(l.earnings_of(1, Group::Model).calls, 1);
        assert!(!l.state().idempotency.contains_key("lost"));
    }
}
