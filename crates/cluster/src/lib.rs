//! # hubsearch-cluster
//!
//! Cluster mode (docs/cluster.md): identical replicas behind a load
//! balancer share one log, a NATS JetStream stream replicated on the NATS
//! servers (R3: Raft). Every write a replica takes is appended to the log
//! and acknowledged to the client once JetStream has acknowledged it; every
//! replica applies the log in order to its own index and ledger
//! (`Engine::apply_logged`), so the fairness controller of each replica
//! reads the global books (its own pages and everyone else's, as far as it
//! has applied), and a model published on one replica is searchable on all.
//!
//! Exactly-once effects: messages carry ids (JetStream drops a duplicate id
//! within its window: a retried publish is stored once), paid calls are
//! counted once per idempotency key when applied (whatever replica took
//! them, whatever the window), and each replica stores the position it has
//! applied with the effects, so a restart resumes where it stopped.
//!
//! The engine is synchronous: [`Cluster`] implements the engine's
//! `Replicator` by blocking on its own Tokio runtime handle (never from an
//! async worker thread: the server runs engine work on blocking threads),
//! and applies the log on a dedicated thread.
//!
//! A bounded log (docs/cluster.md, Snapshots and truncation): a replica
//! that writes snapshots publishes each to the log's object store bucket
//! ([`store`]), keeps the newest `snapshots_kept` there, and purges the log
//! up to the oldest kept one (never past a live replica's position); a
//! replica the log cannot bring up to date starts from the latest snapshot
//! in the bucket ([`restore_if_needed`]). Served pages are appended in the
//! background and retried until the log takes them or the retry time (half
//! the deduplication window) is spent; then they are counted as failed.

pub mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use futures_util::{FutureExt, StreamExt};
use hubsearch_core::config::ClusterConfig;
use hubsearch_core::ModelCard;
use hubsearch_engine::replica::ReplicaStatus;
use hubsearch_engine::{Engine, Ledger, LogEvent, Replicator};
use hubsearch_ledger::{CallOutcome, CallRecord, PageLog};

/// Errors of cluster mode.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("cluster log: {0}")]
    Log(String),
    /// The write may have landed: its acknowledgement did not come back in
    /// time (docs/cluster.md, Outcomes).
    #[error(
        "the log's acknowledgement did not come back ({0}); the write may or may not be in the log"
    )]
    Unknown(String),
}

fn nats(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(e.to_string())
}

/// Whether JetStream has the stream `name` (an error when it cannot say).
pub(crate) async fn stream_exists(
    js: &jetstream::Context,
    name: &str,
) -> Result<bool, ClusterError> {
    Ok(stream_state(js, name, Duration::from_secs(30))
        .await?
        .is_some())
}

/// Served pages waiting for the log (sent, or waiting to be sent again)
/// at most; a page served while this many wait is counted as failed at
/// once (about 7 KB each at 200 candidates: ~29 MB).
pub const PAGES_PENDING_MAX: usize = 4096;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The newest version of the log's events this build understands
/// (docs/cluster.md, Upgrades). Every message carries its version in the
/// header below; a message without it is version 1 (logs written before
/// it). Version 2 added served pages as compact binary logs
/// (`LogEvent::Logged`); every other event is as in version 1, and is sent
/// as version 1.
pub const EVENT_VERSION: u32 = 2;
/// The header carrying an event's version.
pub const EVENT_VERSION_HEADER: &str = "Hubsearch-Event-Version";

/// Read one log message: its event, or why this replica cannot apply it. A
/// newer version than [`EVENT_VERSION`] is never skipped: skipping would
/// make this replica's state silently differ from the others'.
fn decode_event(version: Option<&str>, payload: &[u8]) -> Result<LogEvent, String> {
    let v = match version {
        None => 1,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("event version {v:?} does not parse"))?,
    };
    if v > EVENT_VERSION {
        return Err(format!(
            "the event is of version {v}, newer than this replica understands ({EVENT_VERSION}): upgrade this replica (docs/cluster.md, Upgrades)"
        ));
    }
    LogEvent::from_payload(payload)
}

/// The position this replica has applied, for writers to wait on.
#[derive(Default)]
struct Applied {
    pos: Mutex<u64>,
    cv: Condvar,
}

impl Applied {
    fn get(&self) -> u64 {
        *self.pos.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, p: u64) {
        let mut g = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        if p > *g {
            *g = p;
        }
        self.cv.notify_all();
    }

    /// Wait until `p` is applied or `timeout` passes; whether it was.
    fn wait(&self, p: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        while *g < p {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// A replica's link to the cluster log.
pub struct Cluster {
    cfg: ClusterConfig,
    rt: tokio::runtime::Handle,
    client: async_nats::Client,
    js: jetstream::Context,
    subjects: String,
    ledger: Ledger,
    applied: Applied,
    log_last: AtomicU64,
    /// High bits of page ids: this replica and this start.
    page_prefix: u64,
    pages: AtomicU64,
    /// Served pages on their way to the log.
    sending: Arc<PageCounters>,
    calls: AtomicU64,
    delays: Mutex<Vec<f64>>,
    failing: Mutex<Option<String>>,
    stopped: AtomicBool,
    /// Held while an event is applied; a snapshot takes it to pause applying.
    pause: Mutex<()>,
    /// The position of the last snapshot written (0: none).
    last_snapshot: AtomicU64,
    /// The position of the last snapshot this replica published to the
    /// object store bucket (0: none).
    published: AtomicU64,
    /// The position of the oldest snapshot kept in the bucket, as of this
    /// replica's last prune: the log may be purged up to it.
    covered: AtomicU64,
    /// The log position this replica last purged up to.
    truncated: AtomicU64,
    /// The applied position last recorded while the log was quiet.
    marked: AtomicU64,
}

/// Served pages on their way to the log.
#[derive(Default)]
struct PageCounters {
    /// Taken by the log.
    sent: AtomicU64,
    /// Given up on: not taken within the retry time, or refused at once
    /// because [`PAGES_PENDING_MAX`] were waiting. (`pages_failed` on
    /// `/readyz`, `/v1/cluster` and `/metrics`.)
    failed: AtomicU64,
    /// Appends tried again after a failure.
    retried: AtomicU64,
    /// Pages taken by the log after at least one failed try.
    recovered: AtomicU64,
    /// Sent or waiting to be sent again.
    pending: AtomicUsize,
}

impl PageCounters {
    fn give_up(&self, why: &str) {
        let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        // Loud, but not once per page through a long outage.
        if n.is_power_of_two() || n.is_multiple_of(1000) {
            tracing::warn!(
                "a served page did not reach the cluster log ({why}); {n} so far, counted in pages_failed"
            );
        }
    }
}

/// A client of the NATS servers (connecting in the background: requests
/// fail until a server answers).
async fn client(cfg: &ClusterConfig) -> Result<async_nats::Client, ClusterError> {
    async_nats::ConnectOptions::new()
        .name(format!("hubsearch-{}", cfg.replica))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(cfg.nats_urls.clone())
        .await
        .map_err(nats)
}

/// The stream `name`'s state, `None` when JetStream has no such stream;
/// retried until the servers answer or `patience` passes.
async fn stream_state(
    js: &jetstream::Context,
    name: &str,
    patience: Duration,
) -> Result<Option<stream::State>, ClusterError> {
    let deadline = Instant::now() + patience;
    loop {
        let e = match js.get_stream(name).await {
            Ok(s) => return Ok(Some(s.cached_info().state.clone())),
            Err(e) => e,
        };
        if let jetstream::context::GetStreamErrorKind::JetStream(j) = e.kind() {
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND {
                return Ok(None);
            }
        }
        if Instant::now() >= deadline {
            return Err(nats(e));
        }
        tracing::warn!("the cluster log does not answer yet ({e}); retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Connect to the NATS servers and make sure the stream exists (created
/// with `cfg.stream_replicas` copies on first use, its first position
/// `first`: a cluster restored from a backup at position P numbers its new
/// log from P + 1). Retries until a server answers or `patience` passes.
async fn connect(
    cfg: &ClusterConfig,
    patience: Duration,
    first: u64,
) -> Result<(async_nats::Client, jetstream::Context), ClusterError> {
    let client = client(cfg).await?;
    let js = jetstream::new(client.clone());
    let config = stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.stream.to_ascii_lowercase())],
        num_replicas: cfg.stream_replicas,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(cfg.duplicate_window_s),
        // Retention (docs/cluster.md): without it the log grew without
        // bound (~29 MB per 1,000 searches per copy; issue 27).
        max_age: Duration::from_secs(cfg.log_max_age_s),
        max_bytes: if cfg.log_max_bytes == 0 {
            -1
        } else {
            i64::try_from(cfg.log_max_bytes).unwrap_or(i64::MAX)
        },
        ..Default::default()
    };
    let deadline = Instant::now() + patience;
    loop {
        // Made, or brought to this configuration's limits if it exists.
        let made = if first > 1 && js.get_stream(&config.name).await.is_err() {
            let mut numbered = config.clone();
            numbered.first_sequence = Some(first);
            js.create_stream(numbered).await.map(|_| ()).map_err(nats)
        } else {
            js.create_or_update_stream(config.clone())
                .await
                .map(|_| ())
                .map_err(nats)
        };
        match made {
            Ok(()) => return Ok((client, js)),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!("the cluster log is not ready yet ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(nats(e)),
        }
    }
}

impl Cluster {
    /// Join the cluster: connect, make sure the log exists, catch up with
    /// it from this replica's applied position, then keep applying it on a
    /// thread of its own; install the cluster as the engine's replicator.
    /// Returns once caught up (the replica is then ready to serve).
    pub fn join(
        engine: Arc<Engine>,
        rt: tokio::runtime::Handle,
        progress: &dyn Fn(&str),
    ) -> Result<Arc<Cluster>, ClusterError> {
        let cfg = engine.config().cluster.clone();
        let start = engine.applied_position();
        let (client, js) = rt.block_on(connect(&cfg, Duration::from_secs(120), start + 1))?;
        let (first, log_end) = rt.block_on(async {
            let mut s = js.get_stream(&cfg.stream).await.map_err(nats)?;
            let state = &s.info().await.map_err(nats)?.state;
            Ok::<(u64, u64), ClusterError>((state.first_sequence, state.last_sequence))
        })?;
        if log_end < start {
            // Applying would skip the log's next events as applied already.
            return Err(ClusterError::Log(format!(
                "this replica's state is at log position {start} but the log ends at {log_end}: it belongs to another log (a backup restores into a new stream numbered from {}; docs/cluster.md, Backup and restore)",
                start + 1
            )));
        }
        if first > start + 1 {
            return Err(ClusterError::Log(format!(
                "the log now starts at position {first} (older events were truncated after a snapshot, or passed cluster.log_max_age_s / log_max_bytes) but this replica's state ends at {start}, and the object store bucket {} holds no snapshot it could start from: start it from a snapshot at position {} or later (cluster.snapshot_dir on a running replica; docs/cluster.md, Retention)",
                store::bucket_name(&cfg.stream),
                first - 1
            )));
        }
        let replica_bits = u64::from(blake3::hash(cfg.replica.as_bytes()).as_bytes()[0]);
        let boot = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            & 0xFF_FFFF)
            ^ u64::from(rand::random::<u16>());
        let cluster = Arc::new(Cluster {
            subjects: cfg.stream.to_ascii_lowercase(),
            cfg,
            rt: rt.clone(),
            client,
            js,
            ledger: engine.ledger().clone(),
            applied: Applied::default(),
            log_last: AtomicU64::new(0),
            // 6 + 15 + 32 = 53 bits: ids stay exact in JavaScript numbers
            // (issue 27; they were 64-bit).
            page_prefix: ((replica_bits & 0x3F) << 47) | ((boot & 0x7FFF) << 32),
            pages: AtomicU64::new(0),
            sending: Arc::new(PageCounters::default()),
            calls: AtomicU64::new(0),
            delays: Mutex::new(Vec::new()),
            failing: Mutex::new(None),
            stopped: AtomicBool::new(false),
            pause: Mutex::new(()),
            last_snapshot: AtomicU64::new(0),
            published: AtomicU64::new(0),
            covered: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            marked: AtomicU64::new(0),
        });
        cluster.applied.set(start);
        let last = cluster.refresh_log_last();
        progress(&format!(
            "cluster: replica {} at log position {start} of {last}; catching up",
            cluster.cfg.replica
        ));
        // The applier thread, then wait for it to reach the log's end as it was.
        {
            let c = cluster.clone();
            let e = engine.clone();
            std::thread::Builder::new()
                .name("cluster-applier".into())
                .spawn(move || {
                    let run = std::panic::AssertUnwindSafe(|| c.apply_loop(&e));
                    if std::panic::catch_unwind(run).is_err() {
                        c.fail("the log applier panicked".into());
                    }
                })
                .map_err(|e| ClusterError::Log(e.to_string()))?;
        }
        {
            let c = Arc::downgrade(&cluster);
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let Some(c) = c.upgrade() else { break };
                    if c.stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    c.refresh_log_last_async().await;
                }
            });
        }
        let t0 = Instant::now();
        while cluster.applied.get() < last {
            if let Some(f) = cluster.failing() {
                return Err(ClusterError::Log(f));
            }
            cluster
                .applied
                .wait(last, Duration::from_secs(5).min(Duration::from_millis(500)));
            if t0.elapsed() > Duration::from_secs(2) {
                progress(&format!(
                    "cluster: applied {} of {last}",
                    cluster.applied.get()
                ));
            }
        }
        engine.set_replicator(cluster.clone());
        if !cluster.cfg.snapshot_dir.is_empty() {
            let c = Arc::downgrade(&cluster);
            let e = engine.clone();
            let every = Duration::from_secs(cluster.cfg.snapshot_every_s.max(1));
            std::thread::Builder::new()
                .name("cluster-snapshots".into())
                .spawn(move || loop {
                    std::thread::sleep(every);
                    let Some(c) = c.upgrade() else { break };
                    if c.stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(err) = c.snapshot_round(&e) {
                        tracing::error!("cluster snapshot failed: {err}");
                    }
                })
                .map_err(|e| ClusterError::Log(e.to_string()))?;
        }
        Ok(cluster)
    }

    /// Write a snapshot of this replica (index, vectors, ledger, positions)
    /// into `cluster.snapshot_dir/snapshot-<position>`: applying pauses, the
    /// ledger and vectors are flushed, the index directory is copied, and
    /// the oldest snapshots beyond `cluster.snapshots_kept` are removed.
    /// Serving goes on meanwhile (in cluster mode only the applier writes).
    /// Returns its directory and log position.
    pub fn snapshot(&self, engine: &Engine) -> Result<(std::path::PathBuf, u64), ClusterError> {
        let root = std::path::PathBuf::from(&self.cfg.snapshot_dir);
        let (target, position) = self.snapshot_to(engine, &root)?;
        let log = |e: std::io::Error| ClusterError::Log(format!("snapshot: {e}"));
        let mut all: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
            .map_err(log)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot-") && !n.ends_with(".tmp"))
            })
            .collect();
        all.sort();
        let keep = self.cfg.snapshots_kept.max(1);
        if all.len() > keep {
            for old in &all[..all.len() - keep] {
                let _ = std::fs::remove_dir_all(old);
            }
        }
        Ok((target, position))
    }

    /// One round of the snapshot thread: a snapshot (unless nothing was
    /// applied since the last one, which is in the bucket), published to
    /// the object store bucket, the bucket pruned to `snapshots_kept`, and
    /// the log truncated up to the oldest snapshot kept there (docs/
    /// cluster.md, Snapshots and truncation).
    fn snapshot_round(&self, engine: &Engine) -> Result<(), ClusterError> {
        let applied = self.applied.get();
        let done = self.last_snapshot.load(Ordering::Relaxed);
        if applied != done || self.published.load(Ordering::Relaxed) != done {
            let (dir, position) = self.snapshot(engine)?;
            tracing::info!(
                "cluster snapshot written: {} (log position {position})",
                dir.display()
            );
            self.publish(&dir, position)?;
        }
        self.truncate()
    }

    /// Publish the snapshot in `dir` (at `position`) to the object store
    /// bucket and keep the newest `snapshots_kept` there.
    fn publish(&self, dir: &std::path::Path, position: u64) -> Result<(), ClusterError> {
        let t0 = Instant::now();
        let bucket = store::bucket_name(&self.cfg.stream);
        self.rt.block_on(async {
            let b = store::open(&self.js, &self.cfg.stream, self.cfg.stream_replicas, true)
                .await?
                .ok_or_else(|| ClusterError::Log(format!("no object store bucket {bucket}")))?;
            let chunk = store::chunk_size(self.client.server_info().max_payload);
            let (name, m, bytes) =
                store::upload(&b, dir, position, &self.cfg.replica, chunk).await?;
            tracing::info!(
                "cluster snapshot {name} published to the object store bucket {bucket}: {} files, {bytes} bytes, {:.1} s",
                m.files.len(),
                t0.elapsed().as_secs_f64()
            );
            let kept = store::prune(&b, self.cfg.snapshots_kept).await?;
            if let Some(oldest) = kept.first() {
                self.covered.fetch_max(oldest.position, Ordering::Relaxed);
            }
            self.published.store(position, Ordering::Relaxed);
            Ok(())
        })
    }

    /// Purge the log up to the oldest snapshot kept in the bucket, but
    /// never past what a live replica has been delivered (the smallest
    /// delivered position of the stream's consumers: every replica applies
    /// the log through one; a replica gone for longer than its consumer's
    /// inactivity threshold, 30 s, is no longer waited for and, when it
    /// comes back behind the log, starts from the bucket's latest snapshot).
    /// Everything purged is in every kept snapshot: cards, pages, calls and
    /// keys alike.
    fn truncate(&self) -> Result<(), ClusterError> {
        let covered = self.covered.load(Ordering::Relaxed);
        if covered == 0 {
            return Ok(());
        }
        self.rt.block_on(async {
            let mut stream = self.js.get_stream(&self.cfg.stream).await.map_err(nats)?;
            let mut upto = covered;
            let mut consumers = stream.consumers();
            while let Some(c) = consumers.next().await {
                upto = upto.min(c.map_err(nats)?.delivered.stream_sequence);
            }
            let first = stream.info().await.map_err(nats)?.state.first_sequence;
            if upto < first {
                return Ok(());
            }
            let purged = stream
                .purge()
                .sequence(upto + 1)
                .await
                .map_err(nats)?
                .purged;
            self.truncated.fetch_max(upto, Ordering::Relaxed);
            tracing::info!(
                "cluster log truncated: positions {first}..={upto} purged ({purged} events; the oldest snapshot kept is at {covered}); the log starts at {}",
                upto + 1
            );
            Ok(())
        })
    }

    /// Write a snapshot of this replica into `root/snapshot-<position>`
    /// (see [`Cluster::snapshot`]), keeping every other snapshot there:
    /// its directory and position.
    pub fn snapshot_to(
        &self,
        engine: &Engine,
        root: &std::path::Path,
    ) -> Result<(std::path::PathBuf, u64), ClusterError> {
        let log = |e: std::io::Error| ClusterError::Log(format!("snapshot: {e}"));
        let _paused = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        engine
            .flush()
            .map_err(|e| ClusterError::Log(format!("snapshot: {e}")))?;
        // Everything up to the applier's position is applied and flushed:
        // the copy resumes after it (the index's and ledger's own positions
        // move only with their own events).
        engine
            .mark_applied(self.applied.get())
            .map_err(|e| ClusterError::Log(format!("snapshot: {e}")))?;
        let position = engine.applied_position();
        std::fs::create_dir_all(root).map_err(log)?;
        let name = format!("snapshot-{position:012}");
        let tmp = root.join(format!("{name}.tmp"));
        // The text index merges segments in the background (applying is
        // paused, merging is not): a file a merge removes while it is being
        // copied is not found, and the copy is taken again from the start.
        let mut attempt = 0;
        loop {
            let _ = std::fs::remove_dir_all(&tmp);
            match copy_dir(engine.dir(), &tmp) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(log(e)),
            }
        }
        let target = root.join(&name);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&tmp, &target).map_err(log)?;
        drop(_paused);
        self.last_snapshot.store(position, Ordering::Relaxed);
        Ok((target, position))
    }

    /// A consistent point-in-time backup of the cluster's state (docs/
    /// cluster.md, Backup and restore): `engine` (opened on a copy of a
    /// seed or snapshot, as a replica of its own) joins the log, catches
    /// up with its end, and writes a snapshot into `out`. Returns the
    /// snapshot's directory and log position.
    pub fn backup(
        engine: Arc<Engine>,
        rt: tokio::runtime::Handle,
        out: &std::path::Path,
        progress: &dyn Fn(&str),
    ) -> Result<(std::path::PathBuf, u64), ClusterError> {
        let cluster = Cluster::join(engine.clone(), rt, progress)?;
        // Caught up with the log's end as it was when joining; the snapshot
        // pauses applying and records wherever the applier then is.
        let snapshot = cluster.snapshot_to(&engine, out);
        cluster.stop();
        snapshot
    }

    /// Stop applying (the thread ends at its next message).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Stop, after waiting up to `wait` for the served pages still on
    /// their way to the log; those still waiting then are counted as
    /// failed (and said so).
    pub fn shutdown(&self, wait: Duration) {
        self.stop();
        let deadline = Instant::now() + wait;
        while self.sending.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.sending.pending.load(Ordering::SeqCst);
        if left > 0 {
            self.sending
                .failed
                .fetch_add(left as u64, Ordering::Relaxed);
            tracing::warn!(
                "{left} served pages had not reached the cluster log when the replica stopped; they are lost"
            );
            eprintln!("cluster: {left} served pages had not reached the log at shutdown (lost)");
        }
    }

    fn failing(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn refresh_log_last(&self) -> u64 {
        self.rt.block_on(self.refresh_log_last_async())
    }

    async fn refresh_log_last_async(&self) -> u64 {
        match self.js.get_stream(&self.cfg.stream).await {
            Ok(s) => match s.get_info().await {
                Ok(info) => {
                    let last = info.state.last_sequence;
                    self.log_last.fetch_max(last, Ordering::Relaxed);
                    last
                }
                Err(_) => self.log_last.load(Ordering::Relaxed),
            },
            Err(_) => self.log_last.load(Ordering::Relaxed),
        }
    }

    /// Apply the log from this replica's position on, forever (or until
    /// stopped or applying fails). Reconnects: a consumer that breaks is
    /// made again from the position applied.
    fn apply_loop(&self, engine: &Engine) {
        while !self.stopped.load(Ordering::Relaxed) {
            let from = self.applied.get() + 1;
            let messages = self.rt.block_on(async {
                let s = self.js.get_stream(&self.cfg.stream).await.map_err(nats)?;
                let c = s
                    .create_consumer(consumer::pull::OrderedConfig {
                        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                            start_sequence: from,
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(nats)?;
                c.messages().await.map_err(nats)
            });
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("cluster log consumer: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            let mut carried: Option<async_nats::jetstream::Message> = None;
            loop {
                if self.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let msg = match carried.take() {
                    Some(m) => m,
                    None => {
                        let next = self.rt.block_on(async {
                            tokio::time::timeout(Duration::from_secs(1), messages.next()).await
                        });
                        match next {
                            Err(_) => {
                                // Nothing new within a second.
                                self.mark_idle(engine);
                                continue;
                            }
                            Ok(None) => break,
                            Ok(Some(Err(e))) => {
                                tracing::warn!("cluster log: {e}; reconnecting the consumer");
                                break;
                            }
                            Ok(Some(Ok(m))) => m,
                        }
                    }
                };
                let Some((position, event)) = self.decode(&msg) else {
                    return;
                };
                if position <= self.applied.get() {
                    continue;
                }
                if position > self.applied.get() + 1 {
                    // The log's positions are contiguous: a gap means it
                    // was trimmed past what this replica applied.
                    self.fail(format!(
                        "the log was trimmed past this replica (next event at position {position}, applied {}): restart it from a snapshot",
                        self.applied.get()
                    ));
                    return;
                }
                let sent = match &event {
                    LogEvent::Page { sent_ms, .. } | LogEvent::Logged { sent_ms, .. } => {
                        Some(*sent_ms)
                    }
                    _ => None,
                };
                let paused = self.pause.lock().unwrap_or_else(|e| e.into_inner());
                let (result, last) =
                    if matches!(event, LogEvent::Card { .. } | LogEvent::Delete { .. }) {
                        // A run of card changes (an import) is one index commit:
                        // take what is already delivered, up to 1,024.
                        let mut run = vec![(position, event)];
                        while run.len() < 1024 {
                            // Polled inside the runtime (the stream uses its timers).
                            let ready = self.rt.block_on(async { messages.next().now_or_never() });
                            match ready {
                                Some(Some(Ok(m))) => match self.decode(&m) {
                                    Some((
                                        p,
                                        e @ (LogEvent::Card { .. } | LogEvent::Delete { .. }),
                                    )) => run.push((p, e)),
                                    Some(_) => {
                                        carried = Some(m);
                                        break;
                                    }
                                    None => return,
                                },
                                _ => break,
                            }
                        }
                        let last = run.last().map_or(position, |(p, _)| *p);
                        (engine.apply_logged_cards(run), last)
                    } else {
                        (engine.apply_logged(event, position), position)
                    };
                if let Err(e) = result {
                    let m = format!("applying log position {position}..{last}: {e}");
                    tracing::error!("{m}; this replica stops applying the log");
                    *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
                    self.stop();
                    return;
                }
                if let Some(sent) = sent {
                    let mut d = self.delays.lock().unwrap_or_else(|e| e.into_inner());
                    if d.len() >= 1000 {
                        d.remove(0);
                    }
                    d.push(now_ms().saturating_sub(sent) as f64);
                }
                self.applied.set(last);
                drop(paused);
                self.log_last.fetch_max(last, Ordering::Relaxed);
            }
        }
    }

    /// While the log is quiet: record the applied position as both the
    /// index's and the ledger's (each otherwise moves only with its own
    /// events), so a restart resumes after it. Without it, a replica whose
    /// last events were card changes restarted at its last page or call,
    /// and, when the log had been truncated after a snapshot since, had to
    /// start from a snapshot for events it had applied.
    fn mark_idle(&self, engine: &Engine) {
        let applied = self.applied.get();
        if applied <= self.marked.load(Ordering::Relaxed)
            || engine.positions() == (applied, applied)
        {
            return;
        }
        let _paused = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        match engine.mark_applied(applied) {
            Ok(()) => self.marked.store(applied, Ordering::Relaxed),
            Err(e) => tracing::warn!("recording the applied log position {applied}: {e}"),
        }
    }

    /// A delivered message's log position and event; `None` (and the
    /// replica stops applying, loudly) when it does not parse: skipping it
    /// would lose a write.
    fn decode(&self, msg: &async_nats::jetstream::Message) -> Option<(u64, LogEvent)> {
        let position = match msg.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => {
                self.fail(format!("a log message has no position: {e}"));
                return None;
            }
        };
        let version = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(EVENT_VERSION_HEADER))
            .map(|v| v.as_str());
        match decode_event(version, &msg.payload) {
            Ok(e) => Some((position, e)),
            Err(e) => {
                self.fail(format!("log position {position}: {e}"));
                None
            }
        }
    }

    fn fail(&self, m: String) {
        tracing::error!("{m}; this replica stops applying the log");
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
        self.stop();
    }

    /// Append `event` with message id `id`; the log's position and whether
    /// it was a duplicate of an earlier message with that id.
    fn append(
        &self,
        kind: &str,
        id: String,
        event: &LogEvent,
    ) -> Result<(u64, bool), ClusterError> {
        let subject = format!("{}.{kind}", self.subjects);
        self.append_at(subject, id, event, None)
            .map_err(|e| e.unwrap_or_else(|| ClusterError::Log("wrong last sequence".into())))
    }

    /// Append `event` to `subject` with message id `id`, if `expected` is
    /// given only when the subject's last message is at that position (0:
    /// none). `Err(None)`: another write came first.
    fn append_at(
        &self,
        subject: String,
        id: String,
        event: &LogEvent,
        expected: Option<u64>,
    ) -> Result<(u64, bool), Option<ClusterError>> {
        let payload = serde_json::to_vec(event).map_err(|e| ClusterError::Log(e.to_string()))?;
        // Cards, deletes, keys and calls are as version 1 wrote them.
        let mut msg = PublishMessage::build()
            .header(EVENT_VERSION_HEADER, "1")
            .payload(payload.into())
            .message_id(id);
        if let Some(seq) = expected {
            msg = msg.expected_last_subject_sequence(seq);
        }
        // A message id another replica is still appending ("duplicate
        // message id is in process") is waited for: once its append ends,
        // the same id is answered as a duplicate with the original's
        // position, so the caller gets the original outcome.
        let deadline = Instant::now() + Duration::from_millis(self.cfg.apply_wait_ms.max(1000));
        self.rt.block_on(async {
            loop {
                let ack = self
                    .js
                    .send_publish(subject.clone(), msg.clone())
                    .await
                    .map_err(nats)?
                    .await;
                return match ack {
                    Ok(ack) => Ok((ack.sequence, ack.duplicate)),
                    // JetStream answers a failed expected-sequence check
                    // with error code 10071 or, in newer servers for some
                    // cases, 10164 ("wrong last sequence"), which the
                    // client reports as another kind.
                    Err(e)
                        if e.kind() == PublishErrorKind::WrongLastSequence
                            || error_text(&e).contains("wrong last sequence") =>
                    {
                        Err(None)
                    }
                    Err(e) if e.kind() == PublishErrorKind::TimedOut => {
                        Err(Some(ClusterError::Unknown(e.to_string())))
                    }
                    Err(e) if in_process(&e) && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(e) if in_process(&e) => Err(Some(ClusterError::Unknown(format!(
                        "another replica is still appending this idempotency key: {e}"
                    )))),
                    Err(e) => Err(Some(nats(e))),
                };
            }
        })
    }

    /// A card's subject: its changes (publishes, deletes) are one history,
    /// so a create can be made conditional on it (issue 27).
    fn card_subject(&self, id: &str) -> String {
        card_subject(&self.subjects, id)
    }

    fn wait_applied(&self, p: u64) -> bool {
        self.applied
            .wait(p, Duration::from_millis(self.cfg.apply_wait_ms))
    }
}

/// Copy a directory tree (files and directories; lock files included,
/// which are harmless copies): a snapshot, or `hubsearch backup`'s start.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// Whether a publish was refused because another publish with its message
/// id is still being stored (JetStream's "duplicate message id is in
/// process").
fn in_process(e: &jetstream::context::PublishError) -> bool {
    error_text(e).contains("in process")
}

/// A publish error's message with its sources'.
fn error_text(e: &jetstream::context::PublishError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn engine_err(e: ClusterError) -> hubsearch_engine::Error {
    match e {
        ClusterError::Unknown(_) => hubsearch_engine::Error::OutcomeUnknown(e.to_string()),
        _ => hubsearch_engine::Error::Cluster(e.to_string()),
    }
}

/// A write that is in the log at `p` but not applied here within the wait:
/// its outcome is not known to this replica yet (read-your-writes).
fn not_applied(what: &str, p: u64, wait_ms: u64) -> hubsearch_engine::Error {
    hubsearch_engine::Error::OutcomeUnknown(format!(
        "the {what} is in the log (position {p}) but this replica has not applied it within {wait_ms} ms; \
         read it back, or retry with the same idempotency key"
    ))
}

/// How long a served page is tried: half of JetStream's deduplication
/// window, so that a retry of a page the log did take (only its
/// acknowledgement was lost) still falls within the window and is dropped
/// as a duplicate rather than counted twice.
fn retry_time(cfg: &ClusterConfig) -> Duration {
    Duration::from_millis(cfg.duplicate_window_s.saturating_mul(500))
}

/// Append one served page; on failure try again (after 100 ms, doubling
/// up to 5 s, with jitter) until the log takes it or `retry` has passed,
/// then count it as failed. The same message id every time: JetStream
/// stores it once.
async fn send_page(
    js: jetstream::Context,
    subject: String,
    msg: PublishMessage,
    retry: Duration,
    c: Arc<PageCounters>,
) {
    let deadline = Instant::now() + retry;
    let mut wait = Duration::from_millis(100);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let attempt = tokio::time::timeout(Duration::from_secs(15), async {
            js.send_publish(subject.clone(), msg.clone())
                .await
                .map_err(async_nats::Error::from)?
                .await
                .map_err(async_nats::Error::from)
        })
        .await;
        let err = match attempt {
            Ok(Ok(_)) => {
                c.sent.fetch_add(1, Ordering::Relaxed);
                if tries > 1 {
                    let n = c.recovered.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() || n.is_multiple_of(1000) {
                        tracing::info!(
                            "a served page reached the cluster log after {tries} tries ({n} pages so far after a retry)"
                        );
                    }
                }
                break;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no acknowledgement within 15 s".to_string(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            c.give_up(&format!("{tries} tries in {} s: {err}", retry.as_secs()));
            break;
        }
        tracing::debug!("a served page's append failed ({err}); trying again");
        c.retried.fetch_add(1, Ordering::Relaxed);
        let jitter = wait.mul_f64(rand::random::<f64>() * 0.25);
        tokio::time::sleep((wait + jitter).min(left)).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    c.pending.fetch_sub(1, Ordering::SeqCst);
}

/// The subject of card `id`'s changes under `prefix` (the stream's
/// subjects, lower case): one per card, keyed by its id's key.
fn card_subject(prefix: &str, id: &str) -> String {
    format!("{prefix}.cards.{:016x}", hubsearch_core::card::key_of(id))
}

impl Replicator for Cluster {
    fn card_version(&self, id: &str) -> hubsearch_engine::Result<u64> {
        let subject = self.card_subject(id);
        let stream = self.cfg.stream.clone();
        let last = self.rt.block_on(async {
            let stream = self.js.get_stream_no_info(stream).await.map_err(nats)?;
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => Ok(m.sequence),
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
                Err(e) => Err(nats(e)),
            }
        });
        let last = last.map_err(engine_err)?;
        if !self.wait_applied(last) {
            return Err(hubsearch_engine::Error::Cluster(format!(
                "this replica has not applied the card's last change (log position {last}) within {} ms",
                self.cfg.apply_wait_ms
            )));
        }
        Ok(last)
    }

    fn card(&self, card: &ModelCard, expected: Option<u64>) -> hubsearch_engine::Result<()> {
        // A fresh message id for every write: every acknowledged write is a
        // message of its own. (An id made from the card's content let
        // JetStream drop a third write A, B, A within its duplicate window
        // as a duplicate of the first, acknowledged and lost; issue 27.)
        let id = format!("card:{}:{:x}", card.id, rand::random::<u64>());
        let event = LogEvent::Card {
            card: Box::new(card.clone()),
        };
        let (p, duplicate) = match self.append_at(self.card_subject(&card.id), id, &event, expected)
        {
            Ok(r) => r,
            // Another replica's write to this card came first.
            Err(None) => {
                return Err(hubsearch_engine::Error::ModelExists {
                    id: card.id.clone(),
                })
            }
            Err(Some(e)) => return Err(engine_err(e)),
        };
        if duplicate {
            return Err(hubsearch_engine::Error::Cluster(
                "the log took a fresh message id for a duplicate".into(),
            ));
        }
        if !self.wait_applied(p) {
            return Err(not_applied("card", p, self.cfg.apply_wait_ms));
        }
        Ok(())
    }

    fn keys(&self, changes: &[hubsearch_engine::keys::KeyChange]) -> hubsearch_engine::Result<()> {
        let msg = format!("keys:{:x}", rand::random::<u64>());
        let event = LogEvent::Keys {
            changes: changes.to_vec(),
        };
        let (p, _) = self.append("keys", msg, &event).map_err(engine_err)?;
        if !self.wait_applied(p) {
            return Err(not_applied("key change", p, self.cfg.apply_wait_ms));
        }
        Ok(())
    }

    fn delete(&self, id: &str, expected: Option<u64>) -> hubsearch_engine::Result<()> {
        let msg = format!("delete:{id}:{:x}", rand::random::<u64>());
        let event = LogEvent::Delete { id: id.to_string() };
        let (p, _) = match self.append_at(self.card_subject(id), msg, &event, expected) {
            Ok(r) => r,
            // Another write to the card came first (If-Match).
            Err(None) => {
                return Err(hubsearch_engine::Error::PreconditionFailed { id: id.to_string() })
            }
            Err(Some(e)) => return Err(engine_err(e)),
        };
        if !self.wait_applied(p) {
            return Err(not_applied("delete", p, self.cfg.apply_wait_ms));
        }
        Ok(())
    }

    fn call(&self, call: &CallRecord) -> hubsearch_engine::Result<CallOutcome> {
        let mut call = call.clone();
        // A call without a key gets one of this replica's own: the log's
        // duplicate detection then covers retries of the publish itself.
        let key = call.idempotency_key.get_or_insert_with(|| {
            format!(
                "~{}-{:x}-{}",
                self.cfg.replica,
                self.page_prefix,
                self.calls.fetch_add(1, Ordering::Relaxed)
            )
        });
        let key = key.clone();
        if let Some(known) = self.ledger.known_call(&key, &call)? {
            return Ok(known);
        }
        let time_ms = now_ms();
        let (p, duplicate) = self
            .append(
                "calls",
                format!("call:{key}"),
                &LogEvent::Call {
                    call: call.clone(),
                    time: time_ms / 1000,
                    time_ms: Some(time_ms),
                },
            )
            .map_err(engine_err)?;
        if !self.wait_applied(p) {
            return Err(not_applied("call", p, self.cfg.apply_wait_ms));
        }
        if duplicate {
            // The log had this key's call already (another replica, or a
            // retry whose answer was lost): the original's outcome.
            if let Some(known) = self.ledger.known_call(&key, &call)? {
                return Ok(known);
            }
        }
        match self.ledger.logged_outcome(&key, &call, p)? {
            Some(o) => Ok(o),
            None => Err(hubsearch_engine::Error::Cluster(format!(
                "the call at log position {p} left no record of key {key:?}"
            ))),
        }
    }

    fn page(&self, log: PageLog, hour: u64, time: u64) -> hubsearch_engine::Result<u64> {
        let n = self.pages.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF;
        let page_id = self.page_prefix | n;
        let (event, version) = if self.cfg.event_version >= 2 {
            // Binary: the page's encoded log (docs/ledger.md, Page log);
            // every replica computes what it adds from it.
            let event = LogEvent::Logged {
                page_id,
                hour,
                time,
                sent_ms: now_ms(),
                log: Box::new(log),
            };
            (event, 2u32)
        } else {
            // During a rolling upgrade from version 1: what it adds, as
            // version 1 replicas read it (computed by the same function).
            let page = hubsearch_ledger::PageRecord::of_log(log)
                .map_err(|e| hubsearch_engine::Error::Cluster(e.to_string()))?;
            let event = LogEvent::Page {
                page_id,
                hour,
                time,
                sent_ms: now_ms(),
                page,
            };
            (event, 1u32)
        };
        let payload = event.to_payload()?;
        let c = self.sending.clone();
        // Searches do not wait on the network: the page is appended in the
        // background, tried again on failure (its message id makes a retry
        // count once), within a bounded number waiting.
        if c.pending.fetch_add(1, Ordering::SeqCst) >= PAGES_PENDING_MAX {
            c.pending.fetch_sub(1, Ordering::SeqCst);
            c.give_up(&format!("{PAGES_PENDING_MAX} pages were already waiting"));
            return Ok(page_id);
        }
        let msg = PublishMessage::build()
            .header(EVENT_VERSION_HEADER, version.to_string().as_str())
            .payload(payload.into())
            .message_id(format!("page:{page_id:x}"));
        self.rt.spawn(send_page(
            self.js.clone(),
            format!("{}.pages", self.subjects),
            msg,
            retry_time(&self.cfg),
            c,
        ));
        Ok(page_id)
    }

    fn status(&self) -> ReplicaStatus {
        let applied = self.applied.get();
        let log_last = self.log_last.load(Ordering::Relaxed).max(applied);
        let mut d = self
            .delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        d.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            if d.is_empty() {
                0.0
            } else {
                d[((d.len() - 1) as f64 * p).round() as usize]
            }
        };
        ReplicaStatus {
            replica: self.cfg.replica.clone(),
            connected: self.client.connection_state() == async_nats::connection::State::Connected,
            applied,
            log_last,
            lag: log_last - applied,
            pages_sent: self.sending.sent.load(Ordering::Relaxed),
            pages_failed: self.sending.failed.load(Ordering::Relaxed),
            page_delay_p50_ms: q(0.5),
            page_delay_p99_ms: q(0.99),
            failing: self.failing(),
            last_snapshot: self.last_snapshot.load(Ordering::Relaxed),
        }
    }
}

/// A replica's start from the object store ([`restore_if_needed`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    /// The snapshot's name in the bucket (`snapshot-<position>-<replica>`).
    pub snapshot: String,
    pub bucket: String,
    /// The log position the snapshot has applied up to.
    pub position: u64,
    /// The replica that wrote it.
    pub replica: String,
    /// The log's first position when restoring.
    pub log_first: u64,
    pub files: usize,
    pub bytes: u64,
}

/// A directory beside `dir` named after it with `suffix`.
fn beside(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let name = dir
        .file_name()
        .map_or("index".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The log position an index directory's state has applied (the smaller
/// of its index's and its ledger's, as [`Engine::applied_position`]).
/// The ledger is opened (and closed) only when the index's position alone
/// does not settle whether `first` is past it.
fn local_position(config: &hubsearch_core::Config, first: u64) -> Result<u64, ClusterError> {
    let dir = &config.index.dir;
    let index = std::fs::read_to_string(dir.join("cluster-position"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let path = dir.join("ledger.redb");
    if index + 1 < first || !path.is_file() {
        return Ok(if path.is_file() { index } else { 0 });
    }
    let key = &config.index.transparency_key;
    let key = (!key.is_empty()).then(|| std::path::Path::new(key.as_str()));
    let ledger = hubsearch_ledger::Ledger::open_with_key(&path, key)
        .map_err(|e| ClusterError::Log(format!("{}: {e}", path.display())))?;
    let position = ledger.position();
    let _ = ledger.close();
    Ok(index.min(position))
}

/// Cluster mode, before the engine opens `config.index.dir`: when the log
/// cannot bring the state there up to date (there is no index there, or
/// what it has applied is older than the log's first position: the log was
/// truncated after a snapshot, or trimmed by its limits), replace the
/// directory by the latest snapshot in the log's object store bucket, and
/// say which. `None` (the directory untouched) when the log does not exist
/// yet, can bring the state up to date, or the bucket holds no snapshot
/// recent enough (the engine or [`Cluster::join`] then refuses to start
/// and says why).
pub fn restore_if_needed(
    config: &hubsearch_core::Config,
    rt: &tokio::runtime::Handle,
    progress: &dyn Fn(&str),
) -> Result<Option<Restored>, ClusterError> {
    let cfg = &config.cluster;
    let dir = config.index.dir.clone();
    let bucket_name = store::bucket_name(&cfg.stream);
    rt.block_on(async {
        let js = jetstream::new(client(cfg).await?);
        let Some(state) = stream_state(&js, &cfg.stream, Duration::from_secs(120)).await? else {
            return Ok(None);
        };
        let first = state.first_sequence;
        let why = if !dir.join("text").join("meta.json").is_file() {
            format!("no index at {}", dir.display())
        } else if first <= 1 {
            return Ok(None);
        } else {
            let at = local_position(config, first)?;
            if at + 1 >= first {
                return Ok(None);
            }
            format!(
                "the state at {} has applied the log up to position {at} but the log starts at {first}",
                dir.display()
            )
        };
        let Some(bucket) = store::open(&js, &cfg.stream, cfg.stream_replicas, false).await? else {
            progress(&format!(
                "cluster: {why}, and there is no object store bucket {bucket_name} to start from"
            ));
            return Ok(None);
        };
        let Some(latest) = store::list(&bucket).await?.pop() else {
            progress(&format!(
                "cluster: {why}, and the object store bucket {bucket_name} holds no snapshot"
            ));
            return Ok(None);
        };
        if latest.position + 1 < first {
            progress(&format!(
                "cluster: {why}, and the latest snapshot in the object store bucket {bucket_name} ({}) is older than the log's start",
                latest.name
            ));
            return Ok(None);
        }
        progress(&format!(
            "cluster: {why}; restoring it from snapshot {} (log position {}) in the object store bucket {bucket_name}",
            latest.name, latest.position
        ));
        let t0 = Instant::now();
        let tmp = beside(&dir, "restoring");
        let _ = std::fs::remove_dir_all(&tmp);
        let (m, bytes) = match store::download(&bucket, &latest.name, &tmp).await {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let io = |e: std::io::Error| ClusterError::Log(format!("restoring {}: {e}", dir.display()));
        let old = beside(&dir, "replaced");
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(io)?;
        }
        std::fs::rename(&tmp, &dir).map_err(io)?;
        let _ = std::fs::remove_dir_all(&old);
        let restored = Restored {
            snapshot: latest.name.clone(),
            bucket: bucket_name.clone(),
            position: m.position,
            replica: m.replica.clone(),
            log_first: first,
            files: m.files.len(),
            bytes,
        };
        progress(&format!(
            "cluster: restored {} from snapshot {} (log position {}, written by replica {}; {} files, {bytes} bytes, {:.1} s); the log starts at {first}",
            dir.display(),
            restored.snapshot,
            restored.position,
            restored.replica,
            restored.files,
            t0.elapsed().as_secs_f64()
        ));
        Ok(Some(restored))
    })
}

/// The log's and its snapshot bucket's figures (for operators and tests).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LogFigures {
    /// The log's first and last positions (first = last + 1 when empty).
    pub first: u64,
    pub last: u64,
    /// Events and bytes in the log (one copy).
    pub messages: u64,
    pub bytes: u64,
    /// Consumers reading it (every live replica has one).
    pub consumers: usize,
    pub bucket: String,
    /// Complete snapshots in the bucket: (position, name), oldest first.
    pub snapshots: Vec<(u64, String)>,
    /// Bytes of the bucket's stream (one copy).
    pub bucket_bytes: u64,
}

/// Read [`LogFigures`] (`None` when the log does not exist).
pub fn log_figures(cfg: &ClusterConfig) -> Result<Option<LogFigures>, ClusterError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Log(e.to_string()))?;
    rt.block_on(async {
        let js = jetstream::new(client(cfg).await?);
        let Some(state) = stream_state(&js, &cfg.stream, Duration::from_secs(30)).await? else {
            return Ok(None);
        };
        let bucket = store::bucket_name(&cfg.stream);
        let mut f = LogFigures {
            first: state.first_sequence,
            last: state.last_sequence,
            messages: state.messages,
            bytes: state.bytes,
            consumers: state.consumer_count,
            bucket: bucket.clone(),
            ..Default::default()
        };
        if let Some(b) =
            stream_state(&js, &format!("OBJ_{bucket}"), Duration::from_secs(30)).await?
        {
            f.bucket_bytes = b.bytes;
        }
        if let Some(b) = store::open(&js, &cfg.stream, cfg.stream_replicas, false).await? {
            f.snapshots = store::list(&b)
                .await?
                .into_iter()
                .map(|p| (p.position, p.name))
                .collect();
        }
        Ok(Some(f))
    })
}

/// What an import through the log did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LogImport {
    pub records: usize,
    /// Cards the log took.
    pub appended: usize,
    /// Cards the log already had, unchanged (same id and content within
    /// JetStream's deduplication window).
    pub duplicates: usize,
    /// Records that are not cards: (file:line, reason).
    pub rejected: Vec<(String, String)>,
}

/// Cluster mode's import: append every card of `paths` to the log (message
/// id: the card's id and content hash, so a re-run within the window adds
/// nothing); every replica applies them, a run of cards per index commit.
/// Bad records are reported with their place and reason, never dropped
/// silently. `progress` is told the records read so far.
pub fn import_to_log(
    cfg: &ClusterConfig,
    paths: &[std::path::PathBuf],
    progress: &dyn Fn(usize),
) -> Result<LogImport, ClusterError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Log(e.to_string()))?;
    let (_client, js) = rt.block_on(connect(cfg, Duration::from_secs(30), 1))?;
    let prefix = cfg.stream.to_ascii_lowercase();
    let mut out = LogImport::default();
    let mut batch: Vec<ModelCard> = Vec::new();
    let mut failed: Option<ClusterError> = None;
    let flush = |batch: &mut Vec<ModelCard>, out: &mut LogImport| -> Result<(), ClusterError> {
        rt.block_on(async {
            let mut acks = Vec::with_capacity(batch.len());
            for card in batch.drain(..) {
                let json = serde_json::to_vec(&card).unwrap_or_default();
                // Content ids here: re-running an import within the window
                // appends nothing twice.
                let id = format!("card:{}:{}", card.id, blake3::hash(&json).to_hex());
                let card_id = card.id.clone();
                let event = LogEvent::Card {
                    card: Box::new(card),
                };
                let payload =
                    serde_json::to_vec(&event).map_err(|e| ClusterError::Log(e.to_string()))?;
                acks.push(
                    js.send_publish(
                        card_subject(&prefix, &card_id),
                        PublishMessage::build()
                            .header(EVENT_VERSION_HEADER, "1")
                            .payload(payload.into())
                            .message_id(id),
                    )
                    .await
                    .map_err(nats)?,
                );
            }
            for ack in acks {
                let ack = ack.await.map_err(nats)?;
                if ack.duplicate {
                    out.duplicates += 1;
                } else {
                    out.appended += 1;
                }
            }
            Ok(())
        })
    };
    let read = hubsearch_engine::source::read_all(paths, &mut |(loc, parsed)| {
        out.records += 1;
        if out.records % 1024 == 0 {
            progress(out.records);
        }
        match parsed {
            Ok(card) => {
                batch.push(card);
                if batch.len() >= 256 && failed.is_none() {
                    if let Err(e) = flush(&mut batch, &mut out) {
                        failed = Some(e);
                    }
                }
            }
            Err(reason) => out.rejected.push((loc.to_string(), reason)),
        }
        Ok(())
    });
    read.map_err(|e| ClusterError::Log(e.to_string()))?;
    if let Some(e) = failed {
        return Err(e);
    }
    flush(&mut batch, &mut out)?;
    progress(out.records);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_events_stop_the_replica_older_ones_apply() {
        let delete = br#"{"delete": {"id": "a/x"}}"#;
        // Version 1, with or without the header (logs from before it).
        for v in [None, Some("1")] {
            let e = decode_event(v, delete).unwrap();
            assert!(matches!(e, LogEvent::Delete { id } if id == "a/x"));
        }
        // This build's newest version reads too.
        assert!(decode_event(Some(&EVENT_VERSION.to_string()), delete).is_ok());
        // A newer version is refused even when its payload would parse.
        let err = decode_event(Some(&(EVENT_VERSION + 1).to_string()), delete).unwrap_err();
        assert!(err.contains("newer than this replica understands"), "{err}");
        assert!(decode_event(Some("x"), delete).is_err());
        // A payload this version cannot read is an error, not a skip.
        let err = decode_event(Some("1"), br#"{"rename": {}}"#).unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
    }
}
