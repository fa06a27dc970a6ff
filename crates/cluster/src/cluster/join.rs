//! Joining the log: checking this replica's state against it, catching up,
//! and starting the threads that keep it applied and snapshotted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use hubsearch_core::config::ClusterConfig;
use hubsearch_engine::{Engine, Ledger};

use super::{Applied, Cluster, PageCounters};
use crate::connection::connect;
use crate::error::{nats, ClusterError};
use crate::store;

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
        check_position(&rt, &js, &cfg, start)?;
        let cluster = Arc::new(Cluster::new(cfg, rt, client, js, engine.ledger().clone()));
        cluster.applied.set(start);
        // The position this replica restarts from, before it applies
        // anything: an entry a crashed run left (up to 30 s old) may be
        // ahead of what it kept, and the log must not be truncated past
        // this (positions.rs).
        cluster.rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(5), cluster.report_position()).await;
        });
        let last = cluster.refresh_log_last();
        progress(&format!(
            "cluster: replica {} at log position {start} of {last}; catching up",
            cluster.cfg.replica
        ));
        // The applier thread, then wait for it to reach the log's end as it was.
        cluster.spawn_applier(&engine)?;
        cluster.watch_log_end();
        cluster.catch_up(last, progress)?;
        engine.set_replicator(cluster.clone());
        if !cluster.cfg.snapshot_dir.is_empty() {
            cluster.spawn_snapshots(&engine)?;
        }
        Ok(cluster)
    }

    /// A replica's link, nothing applied yet.
    fn new(
        cfg: ClusterConfig,
        rt: tokio::runtime::Handle,
        client: async_nats::Client,
        js: jetstream::Context,
        ledger: Ledger,
    ) -> Cluster {
        Cluster {
            subjects: cfg.stream.to_ascii_lowercase(),
            page_prefix: page_prefix(&cfg.replica),
            cfg,
            rt,
            client,
            js,
            ledger,
            applied: Applied::default(),
            log_last: AtomicU64::new(0),
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
            consumer_restarts: AtomicU64::new(0),
            positions: std::sync::OnceLock::new(),
            position_reported: AtomicBool::new(true),
            quiet_ms: AtomicU64::new(0),
        }
    }

    /// The applier thread ([`Cluster::apply_loop`]); a panic in it stops
    /// applying, loudly.
    fn spawn_applier(self: &Arc<Self>, engine: &Arc<Engine>) -> Result<(), ClusterError> {
        let c = self.clone();
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
        Ok(())
    }

    /// Read the log's last position every second (for the lag) and write
    /// this replica's applied position to the positions bucket (for the
    /// log's truncation to wait on), until stopped or dropped.
    fn watch_log_end(self: &Arc<Self>) {
        let c = Arc::downgrade(self);
        self.rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(c) = c.upgrade() else { break };
                if c.stopped.load(Ordering::Relaxed) {
                    break;
                }
                c.refresh_log_last_async().await;
                c.report_position().await;
            }
        });
    }

    /// Wait until the applier has reached `last`, saying how far it is
    /// after the first two seconds; an error when it stops applying.
    fn catch_up(&self, last: u64, progress: &dyn Fn(&str)) -> Result<(), ClusterError> {
        let t0 = Instant::now();
        while self.applied.get() < last {
            if let Some(f) = self.failing() {
                return Err(ClusterError::Log(f));
            }
            self.applied
                .wait(last, Duration::from_secs(5).min(Duration::from_millis(500)));
            if t0.elapsed() > Duration::from_secs(2) {
                progress(&format!(
                    "cluster: applied {} of {last}",
                    self.applied.get()
                ));
            }
        }
        Ok(())
    }

    /// The snapshot thread: a round every `snapshot_every_s`
    /// ([`Cluster::snapshot_round`]), until stopped or dropped.
    fn spawn_snapshots(self: &Arc<Self>, engine: &Arc<Engine>) -> Result<(), ClusterError> {
        let c = Arc::downgrade(self);
        let e = engine.clone();
        let every = Duration::from_secs(self.cfg.snapshot_every_s.max(1));
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
        Ok(())
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
}

/// Whether the log can bring a state at log position `start` up to date:
/// an error when the log ends before it (the state belongs to another log)
/// or starts after the event that follows it (truncated past it).
fn check_position(
    rt: &tokio::runtime::Handle,
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    start: u64,
) -> Result<(), ClusterError> {
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
            store::bucket(cfg),
            first - 1
        )));
    }
    Ok(())
}

/// The high bits of this replica's page ids: 6 bits of its name's hash and
/// 15 of this start's, above 32 bits of count. 6 + 15 + 32 = 53 bits: ids
/// stay exact in JavaScript numbers (issue 27; they were 64-bit).
fn page_prefix(replica: &str) -> u64 {
    let replica_bits = u64::from(blake3::hash(replica.as_bytes()).as_bytes()[0]);
    let boot = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        & 0xFF_FFFF)
        ^ u64::from(rand::random::<u16>());
    ((replica_bits & 0x3F) << 47) | ((boot & 0x7FFF) << 32)
}
