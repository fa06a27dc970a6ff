//! The exposure ledger: what every served page gave each model and builder,
//! and the paid calls they earned, in a redb database beside the index
//! (docs/ledger.md).
//!
//! Three parts: this module is the API (what a served page adds, paid calls,
//! the figures statistics and ranking read); [`state`] is the accounting in
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

pub mod state;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use hubsearch_core::{Group, Impact};
use hubsearch_rank::{page_delta, Account, Attention, Candidate, ExposureBook};
use serde::Serialize;

use state::{CallEntry, State};
pub use state::{Earnings, Impression, Keyed, PageLog, PageRecord, ShownLog, Tally};
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
}

/// A paid call to record.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CallRecord {
    pub model: u64,
    pub builder: u64,
    pub model_id: String,
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
        }
    }

    /// The names of its model and builder keys.
    fn names(&self) -> [(u64, String); 2] {
        [
            (self.model, self.model_id.clone()),
            (self.builder, self.builder_name.clone()),
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

/// One candidate of a served page, as the ledger accounts for it.
#[derive(Debug, Clone, Copy)]
pub struct ServedCandidate {
    pub model: u64,
    pub builder: u64,
    /// Relevance in [0, 1] (what `cascade` attention reads).
    pub relevance: f64,
    /// The merit its model and builder earn.
    pub merit: f64,
}

/// What the ledger has logged of one model, for its merit estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallEvidence {
    pub calls: u64,
    pub impressions: u64,
    /// Cumulative exposure: the sum of its impressions' position weights.
    pub exposure: f64,
}

/// A page served to a person.
#[derive(Debug, Clone)]
pub struct ServedPage<'a> {
    /// Every candidate the policy ordered (they all earn merit).
    pub candidates: &'a [ServedCandidate],
    /// The shown ones, as indices into `candidates`, in page order.
    pub shown: &'a [usize],
    /// 1-based rank of the first shown item.
    pub first_rank: usize,
    /// (model id, builder) of each shown item.
    pub names: &'a [(&'a str, &'a str)],
    /// How exposure falls with rank.
    pub attention: &'a Attention,
    /// The page's log for off-policy evaluation (its `page`, `shown`
    /// exposures are filled in here).
    pub log: Option<PageLog>,
}

/// A call being written, for duplicates of its idempotency key to wait on.
#[derive(Default)]
struct Pending {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Pending {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// When dropped: forgets a call's pending key and wakes its duplicates.
struct Release<'a> {
    ledger: &'a Ledger,
    key: Option<&'a str>,
    pending: &'a Pending,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.ledger.pending().remove(k);
        }
        self.pending.finish();
    }
}

/// The answer to a retried call: the original, if it named the same model
/// and amount.
fn duplicate(key: &str, keyed: &Keyed, call: &CallRecord) -> Result<CallOutcome, LedgerError> {
    let other_amount = call.amount_stated && keyed.amount_usd != call.amount_usd;
    if keyed.model != call.model || other_amount {
        return Err(LedgerError::KeyReused {
            key: key.to_string(),
        });
    }
    Ok(CallOutcome {
        seq: keyed.seq,
        recorded: false,
    })
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
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Ledger {
    /// Open (or create) the ledger at `path`, loading its totals.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Self::start(store::open_file(path)?)
    }

    /// A ledger in memory (replays, simulations, tests).
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        Self::start(store::open_memory()?)
    }

    fn start(db: redb::Database) -> Result<Ledger, LedgerError> {
        let state = store::load(&db)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            pending: Mutex::new(HashMap::new()),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            lag: AtomicU64::new(0),
            db: db.clone(),
            failing: std::sync::atomic::AtomicBool::new(false),
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
                store::writer_loop(db, rx, committed, failed)
            })
            .map_err(store::db_err)?;
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Ledger { inner })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, e: Event) -> Result<(), LedgerError> {
        let tx = self.inner.tx.lock().unwrap_or_else(|e| e.into_inner());
        let tx = tx.as_ref().ok_or(LedgerError::Stopped)?;
        self.inner.lag.fetch_add(1, Ordering::Relaxed);
        tx.send(e).map_err(|_| LedgerError::Stopped)
    }

    /// A copy of the accounts of `groups` (models' or builders' keys), with
    /// their calls or income as impact: what the `fair` policies read, so
    /// ranking runs without the ledger's lock.
    pub fn book_of(
        &self,
        group: Group,
        impact: Impact,
        groups: impl IntoIterator<Item = u64>,
    ) -> ExposureBook {
        let s = self.state();
        let accounts = s.accounts(group);
        let mut out = ExposureBook::new();
        for g in groups {
            let mut a = accounts.book.get(g);
            if let Some(e) = accounts.earnings.get(&g) {
                a.impact = match impact {
                    Impact::Calls => e.calls as f64,
                    Impact::Income => e.income_usd,
                };
            }
            if a != Account::default() {
                out.set(g, a);
            }
        }
        out.set_pages(s.pages);
        out
    }

    /// Record a page served to a person: every candidate's model and builder
    /// earn its relevance as merit, every shown item's model and builder the
    /// exposure of its position. Memory now, disk in the next batch.
    /// Returns the page's sequence number.
    pub fn record_served(&self, page: &ServedPage<'_>) -> Result<u64, LedgerError> {
        self.record_page(self.page_record(page))
    }

    /// What a served page adds (its deltas, impressions, names and log),
    /// without recording it: cluster mode sends this through the log.
    pub fn page_record(&self, page: &ServedPage<'_>) -> PageRecord {
        let as_group = |group: fn(&ServedCandidate) -> u64| -> Vec<Candidate> {
            page.candidates
                .iter()
                .map(|c| Candidate {
                    relevance: c.relevance,
                    merit: c.merit,
                    calls: 0.0,
                    quantile: 0.0,
                    group: group(c),
                    key: c.model,
                })
                .collect()
        };
        let model_delta = page_delta(
            &as_group(|c| c.model),
            page.shown,
            page.first_rank,
            page.attention,
        );
        let builder_delta = page_delta(
            &as_group(|c| c.builder),
            page.shown,
            page.first_rank,
            page.attention,
        );
        let impressions = page
            .shown
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let c = &page.candidates[c];
                Impression {
                    model: c.model,
                    builder: c.builder,
                    rank: page.first_rank + i,
                    exposure: model_delta.get(&c.model).map_or(0.0, |d| d.exposure),
                }
            })
            .collect();
        let log = page.log.clone().map(|mut log| {
            for (s, imp) in log.shown.iter_mut().zip(&impressions) {
                let imp: &Impression = imp;
                s.exposure = imp.exposure;
            }
            Box::new(log)
        });
        let mut names = Vec::with_capacity(page.names.len() * 2);
        for (&c, (model, builder)) in page.shown.iter().zip(page.names) {
            let c = &page.candidates[c];
            names.push((c.model, model.to_string()));
            names.push((c.builder, builder.to_string()));
        }
        PageRecord {
            impressions,
            model_delta,
            builder_delta,
            names,
            log,
        }
    }

    /// Record a served page whose deltas are already computed.
    /// Returns the page's sequence number (0-based).
    pub fn record_page(&self, mut page: PageRecord) -> Result<u64, LedgerError> {
        let now = now_secs();
        let hour = now / 3600;
        let seq = {
            let mut s = self.state();
            let seq = s.pages;
            if let Some(log) = &mut page.log {
                log.page = seq;
                log.time = now;
            }
            s.apply_page(&page, hour);
            seq
        };
        self.send(Event::Page {
            page,
            hour,
            position: 0,
        })?;
        Ok(seq)
    }

    /// Cluster mode: the last log position applied (docs/cluster.md).
    pub fn position(&self) -> u64 {
        self.state().position
    }

    /// Cluster mode: apply a served page taken from the log at `position`,
    /// as the replica that served it gave it (its page id, hour and time).
    /// Nothing when `position` was applied before. Memory now, disk in the
    /// next batch, with the position (a restart resumes after what is on
    /// disk, so every page counts once).
    pub fn apply_logged_page(
        &self,
        mut page: PageRecord,
        page_id: u64,
        hour: u64,
        time: u64,
        position: u64,
    ) -> Result<bool, LedgerError> {
        let mut s = self.state();
        if position <= s.position {
            return Ok(false);
        }
        s.position = position;
        if let Some(log) = &mut page.log {
            log.page = page_id;
            log.time = time;
        }
        s.apply_page(&page, hour);
        drop(s);
        self.send(Event::Page {
            page,
            hour,
            position,
        })?;
        Ok(true)
    }

    /// Cluster mode: apply a paid call taken from the log at `position`.
    /// A call whose idempotency key was applied before (from any replica)
    /// counts nothing; so does a position applied before. Returns whether
    /// it was recorded.
    pub fn apply_logged_call(
        &self,
        call: &CallRecord,
        time: u64,
        position: u64,
    ) -> Result<bool, LedgerError> {
        let mut s = self.state();
        if position <= s.position {
            return Ok(false);
        }
        s.position = position;
        if let Some(k) = &call.idempotency_key {
            if s.idempotency.contains_key(k) {
                return Ok(false);
            }
        }
        let entry = call.entry(s.next_call);
        s.next_call += 1;
        s.apply_call(&entry);
        s.name(call.model, &call.model_id);
        s.name(call.builder, &call.builder_name);
        if let Some(k) = &call.idempotency_key {
            s.logged_keys.insert(k.clone(), position);
        }
        drop(s);
        let (ack, _) = mpsc::channel();
        self.send(Event::Call {
            call: entry,
            names: call.names(),
            time,
            ack,
            position,
        })?;
        Ok(true)
    }

    /// Cluster mode: what became of a call sent with idempotency key `key`
    /// that the log took at `position`: `Some(outcome)` once applied here
    /// (recorded if that very event counted, else the original's sequence),
    /// an error if the key was first used for another model or amount.
    pub fn logged_outcome(
        &self,
        key: &str,
        call: &CallRecord,
        position: u64,
    ) -> Result<Option<CallOutcome>, LedgerError> {
        let s = self.state();
        if s.position < position {
            return Ok(None);
        }
        let Some(keyed) = s.idempotency.get(key) else {
            return Ok(None);
        };
        if s.logged_keys.get(key) == Some(&position) {
            return Ok(Some(CallOutcome {
                seq: keyed.seq,
                recorded: true,
            }));
        }
        duplicate(key, keyed, call).map(Some)
    }

    /// Whether `key` was used before, and for what: the duplicate's answer
    /// (or the reused-key error) when it was, `None` when it is new here.
    pub fn known_call(
        &self,
        key: &str,
        call: &CallRecord,
    ) -> Result<Option<CallOutcome>, LedgerError> {
        let s = self.state();
        match s.idempotency.get(key) {
            Some(keyed) => duplicate(key, keyed, call).map(Some),
            None => Ok(None),
        }
    }

    /// Every logged page (in page order) and every paid call (in sequence
    /// order) on disk, with the names of keys: what `hubsearch ledger
    /// export` writes.
    pub fn each_logged(
        &self,
        page: impl FnMut(PageLog),
        call: impl FnMut(LoggedCall),
    ) -> Result<(), LedgerError> {
        self.flush()?;
        let names = self.state().names.clone();
        store::each_logged(&self.inner.db, &names, page, call)
    }

    /// Record a paid call and wait until it is durable. A call whose
    /// idempotency key was recorded before records nothing and returns the
    /// original sequence number, once that original is durable (a duplicate
    /// that arrives while the original is being written waits for it). A key
    /// reused for another model or amount is an error.
    pub fn record_call(&self, call: CallRecord) -> Result<CallOutcome, LedgerError> {
        loop {
            let mut s = self.state();
            if let Some(k) = &call.idempotency_key {
                if let Some(keyed) = s.idempotency.get(k) {
                    return duplicate(k, keyed, &call);
                }
                let original = self.pending().get(k).cloned();
                if let Some(original) = original {
                    drop(s);
                    original.wait();
                    // The original is durable (or failed): look again.
                    continue;
                }
            }
            let entry = call.entry(s.next_call);
            s.next_call += 1;
            let pending = Arc::new(Pending::default());
            if let Some(k) = &entry.idempotency_key {
                self.pending().insert(k.clone(), pending.clone());
            }
            // Whatever happens next (even a panic), duplicates are released.
            let _release = Release {
                ledger: self,
                key: entry.idempotency_key.as_deref(),
                pending: &pending,
            };
            let (ack, rx) = mpsc::channel();
            let sent = self.send(Event::Call {
                call: entry.clone(),
                names: call.names(),
                time: now_secs(),
                ack,
                position: 0,
            });
            drop(s);
            let durable = sent.and_then(|()| rx.recv().map_err(|_| LedgerError::Stopped));
            // Book the call in memory only once it is on disk.
            let mut s = self.state();
            if durable.is_ok() {
                s.apply_call(&entry);
                s.name(call.model, &call.model_id);
                s.name(call.builder, &call.builder_name);
            }
            drop(s);
            durable?;
            return Ok(CallOutcome {
                seq: entry.seq,
                recorded: true,
            });
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, Arc<Pending>>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Pages served so far.
    pub fn pages(&self) -> u64 {
        self.state().pages
    }

    /// Exposure per model or per builder (all time).
    pub fn exposure(&self, group: Group) -> HashMap<u64, f64> {
        self.state()
            .accounts(group)
            .book
            .iter()
            .map(|(k, a)| (*k, a.exposure))
            .collect()
    }

    /// Exposure per model within the last `hours` hours.
    pub fn model_exposure_recent(&self, hours: u64) -> HashMap<u64, f64> {
        let from = (now_secs() / 3600).saturating_sub(hours.saturating_sub(1));
        let mut out: HashMap<u64, f64> = HashMap::new();
        for ((h, m), e) in self.state().hourly.iter() {
            if *h >= from {
                *out.entry(*m).or_default() += e;
            }
        }
        out
    }

    /// Exposure, merit and impressions of one model's or builder's key.
    pub fn tally_of(&self, key: u64, group: Group) -> Tally {
        self.state().accounts(group).tally(key)
    }

    /// Every model's or builder's totals, in key order: (key, tally, calls,
    /// income). What replicas compare (`GET /v1/cluster?ledger=true`).
    pub fn rows(&self, group: Group) -> Vec<(u64, Tally, Earnings)> {
        let s = self.state();
        let a = s.accounts(group);
        let mut keys: Vec<u64> = a.tallies().map(|(k, _)| k).collect();
        keys.extend(a.earnings.keys().copied());
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                (
                    k,
                    a.tally(k),
                    a.earnings.get(&k).copied().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Calls and income per model or per builder key.
    pub fn earnings(&self, group: Group) -> HashMap<u64, Earnings> {
        self.state().accounts(group).earnings.clone()
    }

    /// Calls and income of one model's or builder's key.
    pub fn earnings_of(&self, key: u64, group: Group) -> Earnings {
        self.state()
            .accounts(group)
            .earnings
            .get(&key)
            .copied()
            .unwrap_or_default()
    }

    /// Each model's calls, impressions and exposure, and the hub's calls
    /// per unit of exposure over all models (0 before any exposure).
    pub fn evidence_of(&self, models: &[u64]) -> (Vec<CallEvidence>, f64) {
        let s = self.state();
        let evidence = models
            .iter()
            .map(|k| {
                let t = s.models.tally(*k);
                CallEvidence {
                    calls: s.models.earnings.get(k).map_or(0, |e| e.calls),
                    impressions: t.impressions,
                    exposure: t.exposure,
                }
            })
            .collect();
        (evidence, s.call_rate())
    }

    /// Paid calls recorded here for each model key (0 if none).
    pub fn calls_of(&self, models: &[u64]) -> Vec<u64> {
        let s = self.state();
        models
            .iter()
            .map(|k| s.models.earnings.get(k).map_or(0, |e| e.calls))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use hubsearch_rank::PageDelta;

    fn page(model: u64, builder: u64) -> PageRecord {
        PageRecord {
            impressions: vec![Impression {
                model,
                builder,
                rank: 1,
                exposure: 1.0,
            }],
            model_delta: PageDelta::from([(model, account(1.0, 0.5))]),
            builder_delta: PageDelta::from([(builder, account(1.0, 0.5))]),
            names: vec![(model, "a/x".into()), (builder, "a".into())],
            log: None,
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
        CallRecord {
            model: 1,
            builder: 100,
            model_id: "a/x".into(),
            builder_name: "a".into(),
            amount_usd: 0.5,
            amount_stated: true,
            idempotency_key: Some(key.into()),
            origin: None,
        }
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
        assert_eq!(
            l.tally_of(1, Group::Model),
            Tally {
                exposure: 10.0,
                merit: 5.0,
                rounds: 10,
                impressions: 10
            }
        );
        assert_eq!(
            l.tally_of(100, Group::Builder),
            Tally {
                exposure: 10.0,
                merit: 5.0,
                rounds: 10,
                impressions: 10
            }
        );
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
            model: 2,
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
        let l = Ledger::start(db).unwrap();
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
