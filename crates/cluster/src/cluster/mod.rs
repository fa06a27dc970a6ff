//! [`Cluster`], a replica's link to the log, in parts by job: joining and
//! catching up (`join.rs`), the applier thread (`apply.rs`), appending
//! writes and the engine's `Replicator` (`append.rs`), served pages on
//! their way to the log (`pages.rs`), snapshots and the log's truncation
//! (`snapshots.rs`), and what `/readyz` and `/metrics` report
//! (`status.rs`). Here: the replica's state and its lifecycle.

mod append;
mod apply;
mod join;
mod pages;
mod positions;
mod snapshots;
mod status;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hubsearch_core::config::ClusterConfig;
use hubsearch_engine::Ledger;

use pages::PageCounters;
pub use pages::PAGES_PENDING_MAX;
pub use snapshots::copy_dir;

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
    /// Log consumers made again because the applier had been given
    /// nothing for [`STALL`] while the log had events past it.
    consumer_restarts: AtomicU64,
    /// The positions bucket (`positions.rs`), once opened.
    positions: std::sync::OnceLock<jetstream::kv::Store>,
    /// Whether this replica's last position write succeeded (a failure is
    /// said once per outage).
    position_reported: AtomicBool,
    /// Milliseconds the applier has waited on its log consumers, with the
    /// log ahead of it, since it was last given an event (0 when at the
    /// log's end): how long it has been stalled.
    quiet_ms: AtomicU64,
}

/// How long the applier may be given nothing while the log has events
/// past its position before its consumer is made again (and `/readyz`
/// says writes cannot be taken here: each would wait for the applier).
pub(super) const STALL: Duration = Duration::from_secs(5);

impl Cluster {
    /// Stop applying (the thread ends at its next message).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Stop, after waiting up to `wait` for the served pages still on
    /// their way to the log; those still waiting then are counted as
    /// lost (and said so).
    pub fn shutdown(&self, wait: Duration) {
        self.stop();
        let deadline = Instant::now() + wait;
        while self.sending.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.sending.pending.load(Ordering::SeqCst);
        if left > 0 {
            self.sending.lost.fetch_add(left as u64, Ordering::Relaxed);
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

    /// The log's last position as the servers say now (`None` when they
    /// do not answer).
    async fn log_end(&self) -> Option<u64> {
        let s = self.js.get_stream(&self.cfg.stream).await.ok()?;
        s.get_info().await.ok().map(|i| i.state.last_sequence)
    }

    async fn refresh_log_last_async(&self) -> u64 {
        match self.log_end().await {
            Some(last) => {
                self.log_last.fetch_max(last, Ordering::Relaxed);
                last
            }
            None => self.log_last.load(Ordering::Relaxed),
        }
    }

    fn fail(&self, m: String) {
        tracing::error!("{m}; this replica stops applying the log");
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
        self.stop();
    }

    fn wait_applied(&self, p: u64) -> bool {
        self.applied
            .wait(p, Duration::from_millis(self.cfg.apply_wait_ms))
    }
}
