//! What a replica reports of itself (`/readyz`, `/v1/cluster`, `/metrics`).

use std::sync::atomic::Ordering;

use hubsearch_engine::replica::ReplicaStatus;

use super::{Cluster, STALL};
use crate::event::now_ms;

impl Cluster {
    /// The replica's status (the engine's `Replicator::status`): positions
    /// and lag, served pages sent and given up, page staleness.
    pub(super) fn replica_status(&self) -> ReplicaStatus {
        let applied = self.applied.get();
        let lost = self.sending.lost.load(Ordering::Relaxed);
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
            pages_lost: lost,
            // The same count under the field's earlier (deprecated) name.
            pages_failed: lost,
            page_delay_p50_ms: q(0.5),
            page_delay_p99_ms: q(0.99),
            failing: self.failing(),
            last_snapshot: self.last_snapshot.load(Ordering::Relaxed),
            stalled_ms: self.stalled_ms(applied, log_last),
            consumer_restarts: self.consumer_restarts.load(Ordering::Relaxed),
        }
    }

    /// How long the applier has waited on its log consumers while behind
    /// the log, in milliseconds, when that is [`STALL`] or more; else 0.
    fn stalled_ms(&self, applied: u64, log_last: u64) -> u64 {
        let quiet = self.quiet_ms.load(Ordering::Relaxed);
        if log_last > applied && u128::from(quiet) >= STALL.as_millis() {
            quiet
        } else {
            0
        }
    }

    /// Record how long after it was sent a served page was applied here
    /// (page staleness; the newest 1,000 are kept).
    pub(super) fn record_delay(&self, sent_ms: u64) {
        let mut d = self.delays.lock().unwrap_or_else(|e| e.into_inner());
        if d.len() >= 1000 {
            d.remove(0);
        }
        d.push(now_ms().saturating_sub(sent_ms) as f64);
    }
}
