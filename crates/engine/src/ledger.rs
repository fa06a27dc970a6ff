//! The exposure ledger: what every served page gave each model and builder,
//! and the paid calls they earned, in a redb database beside the index.
//!
//! Why redb: a pure-Rust embedded store with ACID write transactions and
//! crash-safe commits (copy-on-write B-trees, checksummed pages), no C
//! library to build, and typed tables keyed by the u64 keys the index already
//! carries. SQLite (rusqlite) would also do; we need no SQL, and redb keeps
//! the build pure Rust.
//!
//! Serving never waits on disk: the in-memory books (what the `fair` policy
//! reads) are updated at once, and a writer thread commits queued events in
//! batches (group commit, one fsync per batch). A page is *acknowledged* once
//! [`Ledger::flush`] returns after it; a paid call is acknowledged when
//! [`Ledger::record_call`] returns, which waits for its batch's commit. After
//! a crash, everything acknowledged is on disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hubsearch_rank::{ExposureBook, PageDelta};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;

/// model key -> (exposure, merit, impressions)
const MODELS: TableDefinition<u64, (f64, f64, u64)> = TableDefinition::new("model_exposure");
/// builder key -> (exposure, merit, impressions)
const BUILDERS: TableDefinition<u64, (f64, f64, u64)> = TableDefinition::new("builder_exposure");
/// (hour since epoch, model key) -> exposure in that hour
const HOURLY: TableDefinition<(u64, u64), f64> = TableDefinition::new("model_exposure_hourly");
/// key -> name (model id or builder)
const NAMES: TableDefinition<u64, &str> = TableDefinition::new("names");
/// call sequence number -> (model key, builder key, amount USD, unix seconds)
const CALLS: TableDefinition<u64, (u64, u64, f64, u64)> = TableDefinition::new("calls");
/// idempotency key -> call sequence number
const IDEMPOTENCY: TableDefinition<&str, u64> = TableDefinition::new("call_idempotency");
/// counter name -> value
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// Most events committed in one transaction.
const MAX_BATCH: usize = 16_384;
/// Longest a served page waits for its batch to fill. Pages are aggregated
/// per key before writing, so a longer window means fewer, cheaper commits
/// under load; a paid call or a flush ends the window at once, so their
/// callers never wait for it.
const BATCH_WINDOW: Duration = Duration::from_millis(250);

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database: {0}")]
    Db(String),
    #[error("the ledger writer has stopped")]
    Stopped,
}

fn db_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Db(e.to_string())
}

/// One shown model on a served page.
#[derive(Debug, Clone)]
pub struct Impression {
    pub model: u64,
    pub builder: u64,
    pub rank: usize,
    pub exposure: f64,
}

/// A served page: what was shown, and what every candidate earned in merit.
#[derive(Debug, Clone, Default)]
pub struct PageRecord {
    pub impressions: Vec<Impression>,
    pub model_delta: PageDelta,
    pub builder_delta: PageDelta,
    /// Names of keys not seen before (model ids, builders).
    pub names: Vec<(u64, String)>,
}

/// A paid call to record.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub model: u64,
    pub builder: u64,
    pub model_id: String,
    pub builder_name: String,
    pub amount_usd: f64,
    /// A retried call with the same key is not counted twice.
    pub idempotency_key: Option<String>,
}

/// What recording a call did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallOutcome {
    /// The call's sequence number (the original one for a duplicate).
    pub seq: u64,
    /// False when the idempotency key was seen before (nothing recorded).
    pub recorded: bool,
}

/// Per-key totals of calls and income.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Earnings {
    pub calls: u64,
    pub income_usd: f64,
}

#[derive(Default)]
struct State {
    models: ExposureBook,
    builders: ExposureBook,
    impressions_model: HashMap<u64, u64>,
    impressions_builder: HashMap<u64, u64>,
    hourly: HashMap<(u64, u64), f64>,
    names: HashMap<u64, String>,
    calls_model: HashMap<u64, Earnings>,
    calls_builder: HashMap<u64, Earnings>,
    idempotency: HashMap<String, u64>,
    next_call: u64,
    pages: u64,
}

enum Event {
    Page(PageRecord, u64),
    Call(CallRecord, u64, u64, Sender<()>),
    Flush(Sender<()>),
}

/// The ledger. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    tx: Mutex<Option<Sender<Event>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Events queued but not yet committed (for the `ledger lag` metric).
    lag: std::sync::atomic::AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Ledger {
    /// Open (or create) the ledger at `path`, loading its totals.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(db_err)?;
        }
        let db = Database::create(path).map_err(db_err)?;
        Self::start(db)
    }

    /// A ledger in memory (replays, simulations, tests).
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_err)?;
        Self::start(db)
    }

    fn start(db: Database) -> Result<Ledger, LedgerError> {
        init_tables(&db)?;
        let state = load(&db)?;
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            lag: std::sync::atomic::AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(db, rx, weak))
            .map_err(db_err)?;
        *inner.writer.lock().expect("writer lock") = Some(handle);
        Ok(Ledger { inner })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, e: Event) -> Result<(), LedgerError> {
        let tx = self.inner.tx.lock().unwrap_or_else(|e| e.into_inner());
        let tx = tx.as_ref().ok_or(LedgerError::Stopped)?;
        self.inner
            .lag
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tx.send(e).map_err(|_| LedgerError::Stopped)
    }

    /// A copy of the books of models and builders (what `fair` reads).
    pub fn with_books<R>(&self, f: impl FnOnce(&ExposureBook, &ExposureBook) -> R) -> R {
        let s = self.state();
        f(&s.models, &s.builders)
    }

    /// Record a served page: memory now, disk in the next batch.
    pub fn record_page(&self, page: PageRecord) -> Result<(), LedgerError> {
        let hour = now_secs() / 3600;
        {
            let mut s = self.state();
            s.models.apply(&page.model_delta);
            s.builders.apply(&page.builder_delta);
            for imp in &page.impressions {
                *s.impressions_model.entry(imp.model).or_default() += 1;
                *s.impressions_builder.entry(imp.builder).or_default() += 1;
                *s.hourly.entry((hour, imp.model)).or_default() += imp.exposure;
            }
            for (k, n) in &page.names {
                s.names.entry(*k).or_insert_with(|| n.clone());
            }
            s.pages += 1;
        }
        self.send(Event::Page(page, hour))
    }

    /// Record a paid call and wait until it is durable. A call whose
    /// idempotency key was seen before records nothing and returns the
    /// original sequence number.
    pub fn record_call(&self, call: CallRecord) -> Result<CallOutcome, LedgerError> {
        let (seq, ack) = {
            let mut s = self.state();
            if let Some(k) = &call.idempotency_key {
                if let Some(&seq) = s.idempotency.get(k) {
                    return Ok(CallOutcome {
                        seq,
                        recorded: false,
                    });
                }
            }
            let seq = s.next_call;
            s.next_call += 1;
            if let Some(k) = &call.idempotency_key {
                s.idempotency.insert(k.clone(), seq);
            }
            let m = s.calls_model.entry(call.model).or_default();
            m.calls += 1;
            m.income_usd += call.amount_usd;
            let b = s.calls_builder.entry(call.builder).or_default();
            b.calls += 1;
            b.income_usd += call.amount_usd;
            s.names
                .entry(call.model)
                .or_insert_with(|| call.model_id.clone());
            s.names
                .entry(call.builder)
                .or_insert_with(|| call.builder_name.clone());
            let (tx, rx) = mpsc::channel();
            self.send(Event::Call(call, seq, now_secs(), tx))?;
            (seq, rx)
        };
        ack.recv().map_err(|_| LedgerError::Stopped)?;
        Ok(CallOutcome {
            seq,
            recorded: true,
        })
    }

    /// Wait until everything recorded so far is committed to disk.
    pub fn flush(&self) -> Result<(), LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.send(Event::Flush(tx))?;
        rx.recv().map_err(|_| LedgerError::Stopped)
    }

    /// Events queued but not yet on disk.
    pub fn lag(&self) -> u64 {
        self.inner.lag.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pages served so far.
    pub fn pages(&self) -> u64 {
        self.state().pages
    }

    /// Exposure per model (all time).
    pub fn model_exposure(&self) -> HashMap<u64, f64> {
        self.state()
            .models
            .iter()
            .map(|(k, (e, _))| (*k, *e))
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

    /// Exposure, merit and impressions of one model or builder key.
    pub fn exposure_of(&self, key: u64, builder: bool) -> (f64, f64, u64) {
        let s = self.state();
        let (book, imps) = if builder {
            (&s.builders, &s.impressions_builder)
        } else {
            (&s.models, &s.impressions_model)
        };
        let (e, m) = book.get(key);
        (e, m, imps.get(&key).copied().unwrap_or(0))
    }

    /// Calls and income per model key.
    pub fn model_earnings(&self) -> HashMap<u64, Earnings> {
        self.state().calls_model.clone()
    }

    /// Calls and income per builder key.
    pub fn builder_earnings(&self) -> HashMap<u64, Earnings> {
        self.state().calls_builder.clone()
    }

    /// Paid calls recorded here for each model key (0 if none).
    pub fn calls_of(&self, models: &[u64]) -> Vec<u64> {
        let s = self.state();
        models
            .iter()
            .map(|k| s.calls_model.get(k).map_or(0, |e| e.calls))
            .collect()
    }

    /// Calls and income of one key.
    pub fn earnings_of(&self, key: u64, builder: bool) -> Earnings {
        let s = self.state();
        let m = if builder {
            &s.calls_builder
        } else {
            &s.calls_model
        };
        m.get(&key).copied().unwrap_or_default()
    }

    /// Exposure per builder (all time).
    pub fn builder_exposure(&self) -> HashMap<u64, f64> {
        self.state()
            .builders
            .iter()
            .map(|(k, (e, _))| (*k, *e))
            .collect()
    }

    /// Stop the writer after committing everything queued.
    pub fn close(&self) -> Result<(), LedgerError> {
        let r = self.flush();
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
        r
    }
}

fn init_tables(db: &Database) -> Result<(), LedgerError> {
    let w = db.begin_write().map_err(db_err)?;
    {
        w.open_table(MODELS).map_err(db_err)?;
        w.open_table(BUILDERS).map_err(db_err)?;
        w.open_table(HOURLY).map_err(db_err)?;
        w.open_table(NAMES).map_err(db_err)?;
        w.open_table(CALLS).map_err(db_err)?;
        w.open_table(IDEMPOTENCY).map_err(db_err)?;
        w.open_table(COUNTERS).map_err(db_err)?;
    }
    w.commit().map_err(db_err)
}

fn load(db: &Database) -> Result<State, LedgerError> {
    let r = db.begin_read().map_err(db_err)?;
    let mut s = State::default();
    for row in r
        .open_table(MODELS)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        let (e, m, n) = v.value();
        s.models.set(k.value(), e, m);
        s.impressions_model.insert(k.value(), n);
    }
    for row in r
        .open_table(BUILDERS)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        let (e, m, n) = v.value();
        s.builders.set(k.value(), e, m);
        s.impressions_builder.insert(k.value(), n);
    }
    for row in r
        .open_table(HOURLY)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        s.hourly.insert(k.value(), v.value());
    }
    for row in r
        .open_table(NAMES)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        s.names.insert(k.value(), v.value().to_string());
    }
    for row in r
        .open_table(CALLS)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        let (model, builder, amount, _) = v.value();
        for (map, key) in [(&mut s.calls_model, model), (&mut s.calls_builder, builder)] {
            let e = map.entry(key).or_default();
            e.calls += 1;
            e.income_usd += amount;
        }
        s.next_call = s.next_call.max(k.value() + 1);
    }
    for row in r
        .open_table(IDEMPOTENCY)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        s.idempotency.insert(k.value().to_string(), v.value());
    }
    if let Some(p) = r
        .open_table(COUNTERS)
        .map_err(db_err)?
        .get("pages")
        .map_err(db_err)?
    {
        s.pages = p.value();
    }
    Ok(s)
}

fn writer_loop(db: Database, rx: Receiver<Event>, inner: std::sync::Weak<Inner>) {
    while let Ok(first) = rx.recv() {
        let urgent = |e: &Event| !matches!(e, Event::Page(..));
        let mut done = urgent(&first);
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            // Take whatever is already queued; wait only while nobody waits on us.
            let next = if done {
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok()
            };
            match next {
                Some(e) => {
                    done |= urgent(&e);
                    batch.push(e);
                }
                None => break,
            }
        }
        let n = batch.len() as u64;
        if let Err(e) = commit_batch(&db, &mut batch) {
            tracing::error!("ledger commit failed: {e}");
            // Acks are dropped below: waiting callers see `Stopped`.
            batch.clear();
        }
        for e in batch {
            match e {
                Event::Call(_, _, _, ack) | Event::Flush(ack) => {
                    let _ = ack.send(());
                }
                Event::Page(..) => {}
            }
        }
        if let Some(i) = inner.upgrade() {
            i.lag.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn commit_batch(db: &Database, batch: &mut [Event]) -> Result<(), LedgerError> {
    // Aggregate deltas per key first: one read-modify-write per key per batch.
    let mut models: HashMap<u64, (f64, f64, u64)> = HashMap::new();
    let mut builders: HashMap<u64, (f64, f64, u64)> = HashMap::new();
    let mut hourly: HashMap<(u64, u64), f64> = HashMap::new();
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut pages = 0u64;
    for e in batch.iter() {
        if let Event::Page(p, hour) = e {
            pages += 1;
            for (k, (ex, m)) in &p.model_delta {
                let v = models.entry(*k).or_default();
                v.0 += ex;
                v.1 += m;
            }
            for (k, (ex, m)) in &p.builder_delta {
                let v = builders.entry(*k).or_default();
                v.0 += ex;
                v.1 += m;
            }
            for imp in &p.impressions {
                models.entry(imp.model).or_default().2 += 1;
                builders.entry(imp.builder).or_default().2 += 1;
                *hourly.entry((*hour, imp.model)).or_default() += imp.exposure;
            }
            for (k, n) in &p.names {
                names.entry(*k).or_insert_with(|| n.clone());
            }
        }
    }
    let w = db.begin_write().map_err(db_err)?;
    {
        for (table, deltas) in [(MODELS, &models), (BUILDERS, &builders)] {
            let mut t = w.open_table(table).map_err(db_err)?;
            for (k, (e, m, n)) in deltas {
                let old = t
                    .get(k)
                    .map_err(db_err)?
                    .map(|v| v.value())
                    .unwrap_or((0.0, 0.0, 0));
                t.insert(k, (old.0 + e, old.1 + m, old.2 + n))
                    .map_err(db_err)?;
            }
        }
        let mut t = w.open_table(HOURLY).map_err(db_err)?;
        for (k, e) in &hourly {
            let old = t.get(k).map_err(db_err)?.map_or(0.0, |v| v.value());
            t.insert(k, old + e).map_err(db_err)?;
        }
        let mut t = w.open_table(NAMES).map_err(db_err)?;
        for e in batch.iter() {
            if let Event::Call(c, ..) = e {
                names.entry(c.model).or_insert_with(|| c.model_id.clone());
                names
                    .entry(c.builder)
                    .or_insert_with(|| c.builder_name.clone());
            }
        }
        for (k, n) in &names {
            if t.get(k).map_err(db_err)?.is_none() {
                t.insert(k, n.as_str()).map_err(db_err)?;
            }
        }
        let mut calls = w.open_table(CALLS).map_err(db_err)?;
        let mut idem = w.open_table(IDEMPOTENCY).map_err(db_err)?;
        for e in batch.iter() {
            if let Event::Call(c, seq, time, _) = e {
                calls
                    .insert(seq, (c.model, c.builder, c.amount_usd, *time))
                    .map_err(db_err)?;
                if let Some(k) = &c.idempotency_key {
                    idem.insert(k.as_str(), seq).map_err(db_err)?;
                }
            }
        }
        let mut counters = w.open_table(COUNTERS).map_err(db_err)?;
        let old = counters
            .get("pages")
            .map_err(db_err)?
            .map_or(0, |v| v.value());
        counters.insert("pages", old + pages).map_err(db_err)?;
    }
    w.commit().map_err(db_err)
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it commits what is queued.
        self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self
            .writer
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(model: u64, builder: u64) -> PageRecord {
        PageRecord {
            impressions: vec![Impression {
                model,
                builder,
                rank: 1,
                exposure: 1.0,
            }],
            model_delta: PageDelta::from([(model, (1.0, 0.5))]),
            builder_delta: PageDelta::from([(builder, (1.0, 0.5))]),
            names: vec![(model, "a/x".into()), (builder, "a".into())],
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
            let call = CallRecord {
                model: 1,
                builder: 100,
                model_id: "a/x".into(),
                builder_name: "a".into(),
                amount_usd: 0.5,
                idempotency_key: Some("k1".into()),
            };
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
        assert_eq!(l.exposure_of(1, false), (10.0, 5.0, 10));
        assert_eq!(l.exposure_of(100, true), (10.0, 5.0, 10));
        assert_eq!(
            l.earnings_of(100, true),
            Earnings {
                calls: 2,
                income_usd: 1.0
            }
        );
        assert_eq!(l.pages(), 10);
        assert_eq!(l.model_exposure_recent(24)[&1], 10.0);
        // Idempotency keys survive a restart too.
        let dup = l
            .record_call(CallRecord {
                model: 1,
                builder: 100,
                model_id: "a/x".into(),
                builder_name: "a".into(),
                amount_usd: 0.5,
                idempotency_key: Some("k1".into()),
            })
            .unwrap();
        assert!(!dup.recorded);
    }
}
