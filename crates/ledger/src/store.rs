//! The ledger's store: redb tables beside the index and the writer thread
//! that commits queued events in batches (group commit, one fsync per batch).
//! A batch is first booked into an empty [`State`] (the same accounting the
//! live state uses), then that delta is added to the stored totals.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, Value,
};

use std::collections::HashMap;

use hubsearch_core::{BuilderKey, ModelKey};

use super::state::{
    CallEntry, Keyed, Ordinals, PageLog, PageRecord, QueryTally, Refs, State, Tally,
};
use super::transparency::{self, CallLog, Entered, Receipt};
use super::LedgerError;

/// model key -> (exposure, merit, impressions)
const MODELS: TableDefinition<u64, (f64, f64, u64)> = TableDefinition::new("model_exposure");
/// builder key -> (exposure, merit, impressions)
const BUILDERS: TableDefinition<u64, (f64, f64, u64)> = TableDefinition::new("builder_exposure");
/// model key -> served pages on which the model was a candidate
const MODEL_ROUNDS: TableDefinition<u64, u64> = TableDefinition::new("model_rounds");
/// builder key -> served pages on which one of the builder's models was a candidate
const BUILDER_ROUNDS: TableDefinition<u64, u64> = TableDefinition::new("builder_rounds");
/// (hour since epoch, model key) -> exposure in that hour
const HOURLY: TableDefinition<(u64, u64), f64> = TableDefinition::new("model_exposure_hourly");
/// key -> name (model id or builder)
const NAMES: TableDefinition<u64, &str> = TableDefinition::new("names");
/// call sequence number -> (model key, builder key, amount USD, unix seconds)
const CALLS: TableDefinition<u64, (u64, u64, f64, u64)> = TableDefinition::new("calls");
/// idempotency key -> call sequence number
const IDEMPOTENCY: TableDefinition<&str, u64> = TableDefinition::new("call_idempotency");
/// call sequence number -> (page sequence number, rank) it came from
const CALL_ORIGIN: TableDefinition<u64, (u64, u64)> = TableDefinition::new("call_origin");
/// page sequence number -> the page's log (binary, `codec`; JSON in rows
/// written before it; docs/ledger.md)
const PAGE_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("page_log");
/// order of entry (0, 1, ...) -> the page sequence number whose log it is:
/// the page log's retention removes the oldest first (page numbers are not
/// in time order across a cluster's replicas; the order of entry is the
/// log's, the same on every replica)
const PAGE_ORDER: TableDefinition<u64, u64> = TableDefinition::new("page_log_order");
/// model ordinal -> (model key, builder key): the dictionary compact page
/// logs refer to (`codec`, `Ordinals`), 0, 1, ... without gaps
const ORDINALS: TableDefinition<u32, (u64, u64)> = TableDefinition::new("model_ordinals");
/// counter name -> value
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// (query key, model key) -> (exposure, impressions, paid calls) on that
/// query's search pages (docs/ranking.md, Merit: calls by query).
const QUERY_BOOK: TableDefinition<(u64, u64), (f64, u64, u64)> = TableDefinition::new("query_book");
/// Fair listings' book: model key -> (exposure, merit, rounds).
const LISTING_BOOK: TableDefinition<u64, (f64, f64, u64)> = TableDefinition::new("listing_book");

/// Most page logs the retention removes in one commit.
const MAX_REMOVED: u64 = 20_000;
/// Most events committed in one transaction.
const MAX_BATCH: usize = 16_384;
/// Longest a served page waits for its batch to fill. Pages are aggregated
/// per key before writing, so a longer window means fewer, cheaper commits
/// under load; a paid call or a flush ends the window at once, so their
/// callers never wait for it.
const BATCH_WINDOW: Duration = Duration::from_millis(250);

pub(super) fn db_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Db(e.to_string())
}

/// What the writer thread is asked to do.
pub(super) enum Event {
    /// A served page, served in `hour`; `position`: its cluster log
    /// position (0 outside cluster mode); `row`: its page number and
    /// compact log, encoded against the dictionary as it was after
    /// `ordinals`, the entries this page made (events reach the writer in
    /// the order their entries were made).
    Page {
        page: PageRecord,
        hour: u64,
        position: u64,
        row: Option<(u64, Vec<u8>)>,
        ordinals: Vec<(u32, ModelKey, BuilderKey)>,
    },
    /// A paid call made at `time_ms` (milliseconds since the epoch); `ack`
    /// gets its log entry's receipt once both are durable.
    Call {
        call: CallEntry,
        names: [(u64, String); 2],
        time_ms: u64,
        ack: Sender<Receipt>,
        position: u64,
    },
    /// Fires `ack` once everything queued before it is durable.
    Flush { ack: Sender<()> },
}

impl Event {
    /// Somebody waits on this event: commit without waiting for more.
    fn urgent(&self) -> bool {
        !matches!(self, Event::Page { .. })
    }
}

/// Open (or create) the database file.
pub(super) fn open_file(path: &Path) -> Result<Database, LedgerError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(db_err)?;
    }
    Database::create(path).map_err(db_err)
}

/// A database in memory.
pub(super) fn open_memory() -> Result<Database, LedgerError> {
    redb::Builder::new()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .map_err(db_err)
}

/// Create the tables if missing and read the state back.
pub(super) fn load(db: &Database) -> Result<State, LedgerError> {
    let w = db.begin_write().map_err(db_err)?;
    {
        w.open_table(MODELS).map_err(db_err)?;
        w.open_table(BUILDERS).map_err(db_err)?;
        w.open_table(MODEL_ROUNDS).map_err(db_err)?;
        w.open_table(BUILDER_ROUNDS).map_err(db_err)?;
        w.open_table(HOURLY).map_err(db_err)?;
        w.open_table(NAMES).map_err(db_err)?;
        w.open_table(CALLS).map_err(db_err)?;
        w.open_table(IDEMPOTENCY).map_err(db_err)?;
        w.open_table(COUNTERS).map_err(db_err)?;
        w.open_table(LISTING_BOOK).map_err(db_err)?;
        w.open_table(PAGE_LOG).map_err(db_err)?;
        w.open_table(ORDINALS).map_err(db_err)?;
        w.open_table(CALL_ORIGIN).map_err(db_err)?;
        w.open_table(QUERY_BOOK).map_err(db_err)?;
        w.open_table(transparency::ENTRIES).map_err(db_err)?;
        order_page_logs(&w)?;
    }
    w.commit().map_err(db_err)?;

    let r = db.begin_read().map_err(db_err)?;
    let mut s = State::default();
    for (table, rounds_table, accounts) in [
        (MODELS, MODEL_ROUNDS, &mut s.models),
        (BUILDERS, BUILDER_ROUNDS, &mut s.builders),
    ] {
        let mut rounds = HashMap::new();
        each_row(&r, rounds_table, |key, n| {
            rounds.insert(key, n);
        })?;
        each_row(&r, table, |key, (exposure, merit, impressions)| {
            let t = Tally {
                exposure,
                merit,
                rounds: rounds.get(&key).copied().unwrap_or(0),
                impressions,
            };
            accounts.restore(key, t)
        })?;
    }
    s.total_exposure = s.models.tallies().map(|(_, t)| t.exposure).sum();
    each_row(&r, HOURLY, |k, e| {
        s.hourly.insert(k, e);
    })?;
    each_row(&r, NAMES, |k, n| {
        s.names.insert(k, n.to_string());
    })?;
    s.ordinals = load_ordinals(&r)?;
    each_row(&r, QUERY_BOOK, |k, (exposure, impressions, calls)| {
        let t = QueryTally {
            impressions,
            exposure,
            calls,
        };
        s.queries.exposure += exposure;
        s.queries.calls += calls;
        s.queries.pairs.insert(k, t);
    })?;
    // Calls are replayed one by one; their idempotency keys come after.
    let mut calls = HashMap::new();
    each_row(&r, CALLS, |seq, (model, builder, amount_usd, _)| {
        calls.insert(seq, (model, amount_usd));
        s.apply_call(&CallEntry {
            seq,
            model: ModelKey(model),
            builder: BuilderKey(builder),
            amount_usd,
            idempotency_key: None,
            origin: None,
            query: None,
        })
    })?;
    each_row(&r, IDEMPOTENCY, |k, seq| {
        let (model, amount_usd) = calls.get(&seq).copied().unwrap_or_default();
        let keyed = Keyed {
            seq,
            model: ModelKey(model),
            amount_usd,
        };
        s.idempotency.insert(k.to_string(), keyed);
    })?;
    each_row(&r, LISTING_BOOK, |key, (exposure, merit, rounds)| {
        let a = hubsearch_rank::Account {
            exposure,
            merit,
            rounds,
            impact: 0.0,
        };
        s.listing.set(key, a);
    })?;
    each_row(&r, COUNTERS, |name, n| match name {
        "pages" => s.pages = n,
        "listing_pages" => s.listing.set_pages(n),
        "position" => s.position = n,
        _ => {}
    })?;
    Ok(s)
}

/// The dictionary of models as stored.
fn load_ordinals(r: &ReadTransaction) -> Result<Ordinals, LedgerError> {
    let mut ordinals = Ordinals::default();
    let mut bad = None;
    each_row(r, ORDINALS, |o, (model, builder)| {
        if let Err(e) = ordinals.restore(o, ModelKey(model), BuilderKey(builder)) {
            bad.get_or_insert(e);
        }
    })?;
    match bad {
        Some(e) => Err(LedgerError::Db(format!("the model dictionary: {e}"))),
        None => Ok(ordinals),
    }
}

/// Give the page logs an order of entry when some have none (ledgers of
/// earlier versions, or logs written by one after a downgrade): the order
/// of (time, page number), both from the log itself, so replicas holding
/// the same logs get the same order. Does nothing when every log has one.
fn order_page_logs(w: &redb::WriteTransaction) -> Result<(), LedgerError> {
    let mut order = w.open_table(PAGE_ORDER).map_err(db_err)?;
    let logs = w.open_table(PAGE_LOG).map_err(db_err)?;
    if order.len().map_err(db_err)? == logs.len().map_err(db_err)? {
        return Ok(());
    }
    let mut pages = Vec::new();
    for row in logs.iter().map_err(db_err)? {
        let (page, bytes) = row.map_err(db_err)?;
        // A row that does not read sorts first (removed first); the
        // export reports it.
        let time = PageLog::time_of(bytes.value()).unwrap_or(0);
        pages.push((time, page.value()));
    }
    pages.sort_unstable();
    order.retain(|_, _| false).map_err(db_err)?;
    for (next, (_, page)) in pages.iter().enumerate() {
        order.insert(next as u64, *page).map_err(db_err)?;
    }
    let mut counters = w.open_table(COUNTERS).map_err(db_err)?;
    counters
        .insert("page_log_next", pages.len() as u64)
        .map_err(db_err)?;
    Ok(())
}

/// (page logs kept, page logs removed by the retention so far).
pub(super) fn page_log_counts(db: &Database) -> Result<(u64, u64), LedgerError> {
    let r = db.begin_read().map_err(db_err)?;
    let kept = r
        .open_table(PAGE_LOG)
        .map_err(db_err)?
        .len()
        .map_err(db_err)?;
    let removed = r
        .open_table(COUNTERS)
        .map_err(db_err)?
        .get("page_logs_removed")
        .map_err(db_err)?
        .map_or(0, |v| v.value());
    Ok((kept, removed))
}

/// (page logs stored, their bytes): the rows as stored, whatever their
/// encoding.
pub(super) fn page_log_bytes(db: &Database) -> Result<(u64, u64), LedgerError> {
    let r = db.begin_read().map_err(db_err)?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    each_row(&r, PAGE_LOG, |_, b| {
        rows += 1;
        bytes += b.len() as u64;
    })?;
    Ok((rows, bytes))
}

/// Raise the stored log position to `position` (nothing applied is
/// pending: a snapshot paused applying and flushed).
pub(super) fn store_position(db: &Database, position: u64) -> Result<(), LedgerError> {
    let w = db.begin_write().map_err(db_err)?;
    {
        let mut counters = w.open_table(COUNTERS).map_err(db_err)?;
        add_to(&mut counters, "position", |old| old.max(position))?;
    }
    w.commit().map_err(db_err)
}

/// A paid call as the export writes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoggedCall {
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    pub model: String,
    pub builder: String,
    pub amount_usd: f64,
    /// The logged page and rank the call came from, if the caller said.
    pub page: Option<u64>,
    pub rank: Option<u64>,
}

/// Every stored page log (page order) and paid call (sequence order).
pub(super) fn each_logged(
    db: &Database,
    names: &HashMap<u64, String>,
    mut page: impl FnMut(PageLog),
    mut call: impl FnMut(LoggedCall),
) -> Result<(), LedgerError> {
    let r = db.begin_read().map_err(db_err)?;
    let mut bad = None;
    let ordinals = load_ordinals(&r)?;
    let refs = Refs {
        ordinals: &ordinals,
        names,
    };
    each_row(&r, PAGE_LOG, |seq, bytes| {
        match PageLog::decode_with(bytes, &refs) {
            Ok(log) => page(log),
            Err(e) => bad = bad.take().or(Some(format!("page {seq}: {e}"))),
        }
    })?;
    if let Some(e) = bad {
        return Err(LedgerError::Db(format!("a page log does not read: {e}")));
    }
    let name = |k: u64| {
        names
            .get(&k)
            .cloned()
            .unwrap_or_else(|| format!("{k:016x}"))
    };
    let mut origins = HashMap::new();
    each_row(&r, CALL_ORIGIN, |seq, o| {
        origins.insert(seq, o);
    })?;
    each_row(&r, CALLS, |seq, (model, builder, amount_usd, time)| {
        let o = origins.get(&seq);
        call(LoggedCall {
            seq,
            time,
            model: name(model),
            builder: name(builder),
            amount_usd,
            page: o.map(|o| o.0),
            rank: o.map(|o| o.1),
        })
    })
}

/// Call `f` with every row of `table`.
fn each_row<K: Key + 'static, V: Value + 'static>(
    r: &ReadTransaction,
    table: TableDefinition<K, V>,
    mut f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>),
) -> Result<(), LedgerError> {
    for row in r
        .open_table(table)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        f(k.value(), v.value());
    }
    Ok(())
}

/// Add `delta` to the value stored under `key` (absent: `V::default()`).
fn add_to<'k, K: Key + 'static, V>(
    t: &mut Table<K, V>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
    delta: impl FnOnce(V) -> V,
) -> Result<(), LedgerError>
where
    V: for<'a> Value<SelfType<'a> = V> + Default + 'static,
{
    let old = t
        .get(key.borrow())
        .map_err(db_err)?
        .map(|v| v.value())
        .unwrap_or_default();
    t.insert(key.borrow(), delta(old)).map_err(db_err)?;
    Ok(())
}

/// The writer thread: take what is queued (waiting up to the batch window
/// while nobody waits on us), commit it as one transaction, acknowledge.
/// `committed(n)` is told how many events each batch took off the queue;
/// `failed(pages)` gets the pages of a batch whose commit failed (the
/// memory booked them at once; it must take them back).
pub(super) fn writer_loop(
    db: std::sync::Arc<Database>,
    log: &CallLog,
    rx: Receiver<Event>,
    keep: &std::sync::atomic::AtomicU64,
    committed: impl Fn(u64),
    failed: impl Fn(&[(&PageRecord, u64)]),
) {
    // Once a commit has failed nothing more is committed (redb refuses
    // later writes after an I/O error anyway; this does not rely on it):
    // pages queued after the failed batch may refer to model ordinals the
    // failed batch gave, which are not on disk.
    let mut broken = false;
    while let Ok(first) = rx.recv() {
        let mut done = first.urgent();
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            let next = if done {
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok()
            };
            match next {
                Some(e) => {
                    done |= e.urgent();
                    batch.push(e);
                }
                None => break,
            }
        }
        let n = batch.len() as u64;
        let mut entered = Vec::new();
        let keep = keep.load(std::sync::atomic::Ordering::Relaxed);
        let result = if broken {
            Err(LedgerError::Db(
                "an earlier commit failed: nothing more is stored until a restart".into(),
            ))
        } else {
            commit_batch(&db, &batch, log.size(), keep)
        };
        broken |= result.is_err();
        match result {
            // The entries are durable: the tree (and the heads signed from
            // it) may cover them now, before anybody is acknowledged.
            Ok(e) => {
                log.append(&e);
                entered = e;
            }
            Err(e) => {
                tracing::error!("ledger commit failed: {e}");
                // Acks are dropped below: waiting callers see `Stopped` (calls
                // are booked in memory only once acknowledged). The batch's
                // pages were booked at once: memory takes them back, so it never
                // runs ahead of the store (redb refuses every later write after
                // an I/O error, so later batches are taken back the same way).
                let pages: Vec<(&PageRecord, u64)> = batch
                    .iter()
                    .filter_map(|e| match e {
                        Event::Page { page, hour, .. } => Some((page, *hour)),
                        _ => None,
                    })
                    .collect();
                failed(&pages);
                batch.clear();
            }
        }
        // Calls and entries are in the same order.
        let mut entered = entered.iter();
        for e in batch {
            match e {
                Event::Call { ack, .. } => {
                    if let Some(e) = entered.next() {
                        let _ = ack.send(e.receipt());
                    }
                }
                Event::Flush { ack } => {
                    let _ = ack.send(());
                }
                Event::Page { .. } => {}
            }
        }
        committed(n);
    }
}

/// A batch's page logs and the dictionary entries they made, in the
/// batch's order, and the retention (`index.page_log_keep`) applied.
fn store_page_logs(
    w: &redb::WriteTransaction,
    batch: &[Event],
    keep: u64,
) -> Result<(), LedgerError> {
    let mut logs = w.open_table(PAGE_LOG).map_err(db_err)?;
    let mut order = w.open_table(PAGE_ORDER).map_err(db_err)?;
    let mut counters = w.open_table(COUNTERS).map_err(db_err)?;
    let mut next = counters
        .get("page_log_next")
        .map_err(db_err)?
        .map_or(0, |v| v.value());
    let mut dict = w.open_table(ORDINALS).map_err(db_err)?;
    for e in batch {
        if let Event::Page { row, ordinals, .. } = e {
            for (o, model, builder) in ordinals {
                dict.insert(o, (model.0, builder.0)).map_err(db_err)?;
            }
            let Some((page, bytes)) = row else { continue };
            let new = logs
                .insert(page, bytes.as_slice())
                .map_err(db_err)?
                .is_none();
            if new {
                order.insert(next, *page).map_err(db_err)?;
                next += 1;
            }
        }
    }
    counters.insert("page_log_next", next).map_err(db_err)?;
    // The retention (`index.page_log_keep`): the oldest logs beyond it
    // go, at most `MAX_REMOVED` a commit (a retention set on a large
    // ledger catches up over several commits instead of holding the
    // writer in one long transaction).
    if keep > 0 {
        let stored = order.len().map_err(db_err)?;
        let mut removed = 0u64;
        for _ in keep..stored.min(keep + MAX_REMOVED) {
            let Some(page) = order.pop_first().map_err(db_err)?.map(|(_, p)| p.value()) else {
                break;
            };
            logs.remove(page).map_err(db_err)?;
            removed += 1;
        }
        if removed > 0 {
            add_to(&mut counters, "page_logs_removed", |old| old + removed)?;
        }
    }
    Ok(())
}

/// Add one batch to the stored totals in one write transaction, its calls'
/// log entries from leaf `first_leaf` included; the entries written.
fn commit_batch(
    db: &Database,
    batch: &[Event],
    first_leaf: u64,
    keep: u64,
) -> Result<Vec<Entered>, LedgerError> {
    // Book the batch into an empty state: one read-modify-write per key.
    let mut delta = State::default();
    for e in batch {
        match e {
            Event::Page { page, hour, .. } => delta.apply_page(page, *hour),
            Event::Call { call, names, .. } => {
                delta.apply_call(call);
                for (k, n) in names {
                    delta.name(*k, n);
                }
            }
            Event::Flush { .. } => {}
        }
    }
    let w = db.begin_write().map_err(db_err)?;
    {
        for (table, rounds_table, accounts) in [
            (MODELS, MODEL_ROUNDS, &delta.models),
            (BUILDERS, BUILDER_ROUNDS, &delta.builders),
        ] {
            let mut t = w.open_table(table).map_err(db_err)?;
            let mut r = w.open_table(rounds_table).map_err(db_err)?;
            for (k, d) in accounts.tallies() {
                add_to(&mut t, k, |(e, m, n)| {
                    (e + d.exposure, m + d.merit, n + d.impressions)
                })?;
                if d.rounds > 0 {
                    add_to(&mut r, k, |n| n + d.rounds)?;
                }
            }
        }
        let mut t = w.open_table(HOURLY).map_err(db_err)?;
        for (k, e) in &delta.hourly {
            add_to(&mut t, k, |old| old + e)?;
        }
        let mut t = w.open_table(QUERY_BOOK).map_err(db_err)?;
        for (k, d) in &delta.queries.pairs {
            add_to(&mut t, k, |(e, n, c)| {
                (e + d.exposure, n + d.impressions, c + d.calls)
            })?;
        }
        let mut t = w.open_table(NAMES).map_err(db_err)?;
        for (k, n) in &delta.names {
            if t.get(k).map_err(db_err)?.is_none() {
                t.insert(k, n.as_str()).map_err(db_err)?;
            }
        }
        let mut calls = w.open_table(CALLS).map_err(db_err)?;
        let mut origins = w.open_table(CALL_ORIGIN).map_err(db_err)?;
        for e in batch {
            if let Event::Call { call, time_ms, .. } = e {
                let secs = time_ms / 1000;
                calls
                    .insert(
                        call.seq,
                        (call.model.0, call.builder.0, call.amount_usd, secs),
                    )
                    .map_err(db_err)?;
                if let Some(o) = call.origin {
                    origins.insert(call.seq, (o.page, o.rank)).map_err(db_err)?;
                }
            }
        }
        let mut idem = w.open_table(IDEMPOTENCY).map_err(db_err)?;
        for (k, keyed) in &delta.idempotency {
            idem.insert(k.as_str(), keyed.seq).map_err(db_err)?;
        }
        store_page_logs(&w, batch, keep)?;
        let mut counters = w.open_table(COUNTERS).map_err(db_err)?;
        add_to(&mut counters, "pages", |old| old + delta.pages)?;
        if delta.listing.pages() > 0 {
            add_to(&mut counters, "listing_pages", |old| {
                old + delta.listing.pages()
            })?;
            let mut t = w.open_table(LISTING_BOOK).map_err(db_err)?;
            for (k, a) in delta.listing.iter() {
                add_to(&mut t, *k, |(e, m, r)| {
                    (e + a.exposure, m + a.merit, r + a.rounds)
                })?;
            }
        }
        // Cluster mode: the log position, committed with its effects.
        let position = batch
            .iter()
            .map(|e| match e {
                Event::Page { position, .. } | Event::Call { position, .. } => *position,
                Event::Flush { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        if position > 0 {
            add_to(&mut counters, "position", |old| old.max(position))?;
        }
    }
    // The call log's entries, in ledger order, in the same transaction.
    let calls = batch.iter().filter_map(|e| match e {
        Event::Call {
            call,
            names,
            time_ms,
            ..
        } => Some((call, names, *time_ms)),
        _ => None,
    });
    let entered = transparency::write_entries(&w, first_leaf, calls)?;
    w.commit().map_err(db_err)?;
    Ok(entered)
}

/// The call log's tree, after entering once, in ledger order, the calls
/// stored before the log existed (an older ledger), in one transaction.
pub(super) fn open_log(
    db: &Database,
    names: &HashMap<u64, String>,
) -> Result<transparency::Committed, LedgerError> {
    let (calls, entries) = {
        use redb::ReadableTableMetadata;
        let r = db.begin_read().map_err(db_err)?;
        let calls = r.open_table(CALLS).map_err(db_err)?.len().map_err(db_err)?;
        let entries = r.open_table(transparency::ENTRIES).map_err(db_err)?;
        (calls, entries.len().map_err(db_err)?)
    };
    if entries == 0 && calls > 0 {
        enter_old_calls(db, names)?;
    }
    let r = db.begin_read().map_err(db_err)?;
    let mut seqs = Vec::new();
    each_row(&r, CALLS, |seq, _| seqs.push(seq))?;
    transparency::load_tree(&r, &seqs)
}

/// Enter every stored call into the empty call log, in sequence order, in
/// one transaction (written in chunks: memory stays small).
fn enter_old_calls(db: &Database, names: &HashMap<u64, String>) -> Result<(), LedgerError> {
    const CHUNK: usize = 8192;
    let r = db.begin_read().map_err(db_err)?;
    let mut keys: HashMap<u64, String> = HashMap::new();
    each_row(&r, IDEMPOTENCY, |k, seq| {
        keys.insert(seq, k.to_string());
    })?;
    let name = |k: u64| {
        names
            .get(&k)
            .cloned()
            .unwrap_or_else(|| format!("{k:016x}"))
    };
    let w = db.begin_write().map_err(db_err)?;
    let mut entered = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK);
    let calls = r.open_table(CALLS).map_err(db_err)?;
    let mut rows = calls.iter().map_err(db_err)?.peekable();
    while let Some(row) = rows.next() {
        let (seq, v) = row.map_err(db_err)?;
        let (seq, (model, builder, amount_usd, secs)) = (seq.value(), v.value());
        let call = CallEntry {
            seq,
            model: ModelKey(model),
            builder: BuilderKey(builder),
            amount_usd,
            idempotency_key: keys.remove(&seq),
            origin: None,
            query: None,
        };
        chunk.push((
            call,
            [(model, name(model)), (builder, name(builder))],
            secs * 1000,
        ));
        if chunk.len() == CHUNK || rows.peek().is_none() {
            let calls = chunk.iter().map(|(c, n, t)| (c, n, *t));
            entered += transparency::write_entries(&w, entered, calls)?.len() as u64;
            chunk.clear();
        }
    }
    w.commit().map_err(db_err)?;
    tracing::info!("entered {entered} earlier paid calls in the call log");
    Ok(())
}
