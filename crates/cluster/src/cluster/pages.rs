//! Served pages on their way to the log: appended in the background and
//! retried within the deduplication window.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use hubsearch_core::config::ClusterConfig;
use hubsearch_engine::LogEvent;
use hubsearch_ledger::PageLog;

use super::Cluster;
use crate::event::{now_ms, EVENT_VERSION_HEADER};

/// Served pages waiting for the log (sent, or waiting to be sent again)
/// at most; a page served while this many wait is counted as lost at
/// once (under 2 KB each at 200 candidates: ~8 MB).
pub const PAGES_PENDING_MAX: usize = 4096;

/// Served pages on their way to the log.
#[derive(Default)]
pub(super) struct PageCounters {
    /// Taken by the log.
    pub(super) sent: AtomicU64,
    /// Given up on, lost to the global books: not taken within the retry
    /// time, refused at once because [`PAGES_PENDING_MAX`] were waiting,
    /// or still waiting at shutdown. (`hubsearch_cluster_pages_lost` on
    /// `/metrics`, with `hubsearch_cluster_pages_failed` as its alias;
    /// `pages_lost`, with the deprecated alias `pages_failed`, on `/readyz`
    /// and `/v1/cluster`.)
    pub(super) lost: AtomicU64,
    /// Appends tried again after a failure.
    pub(super) retried: AtomicU64,
    /// Pages taken by the log after at least one failed try.
    pub(super) recovered: AtomicU64,
    /// Sent or waiting to be sent again.
    pub(super) pending: AtomicUsize,
}

impl PageCounters {
    fn give_up(&self, why: &str) {
        let n = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
        // Loud, but not once per page through a long outage.
        if n.is_power_of_two() || n.is_multiple_of(1000) {
            tracing::warn!(
                "a served page did not reach the cluster log ({why}); {n} so far, counted in pages_lost"
            );
        }
    }
}

/// How long a served page is tried: `cluster.page_retry_s`, or, when that
/// is 0 (the default), half of JetStream's deduplication window, so that a
/// retry of a page the log did take (only its acknowledgement was lost)
/// still falls within the window and is dropped as a duplicate rather than
/// counted twice (the config refuses a retry time that is not below the
/// window).
fn retry_time(cfg: &ClusterConfig) -> Duration {
    if cfg.page_retry_s > 0 {
        Duration::from_secs(cfg.page_retry_s)
    } else {
        Duration::from_millis(cfg.duplicate_window_s.saturating_mul(500))
    }
}

/// Append one served page; on failure try again (after 100 ms, doubling
/// up to 5 s, with jitter) until the log takes it or `retry` has passed,
/// then count it as lost. The same message id every time: JetStream
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

impl Cluster {
    /// Append a served page in the background (the engine's
    /// `Replicator::page`): its id at once, the page retried until the log
    /// takes it or the retry time is spent.
    pub(super) fn append_page(
        &self,
        log: PageLog,
        hour: u64,
        time: u64,
    ) -> hubsearch_engine::Result<u64> {
        let n = self.pages.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF;
        let page_id = self.page_prefix | n;
        let (event, version) = if self.cfg.event_version >= 3 {
            // Compact: models by their ordinal in this replica's
            // dictionary, which every replica applying the page holds too
            // (it has applied everything this one has).
            let event = LogEvent::Compact {
                page_id,
                hour,
                time,
                sent_ms: now_ms(),
                bytes: self.ledger.encode_compact(&log),
            };
            (event, 3u32)
        } else if self.cfg.event_version >= 2 {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cluster.page_retry_s` sets the retry time; 0 keeps half the
    /// deduplication window.
    #[test]
    fn the_retry_time_is_the_configured_one_else_half_the_window() {
        let mut cfg = ClusterConfig::default();
        assert_eq!(retry_time(&cfg), Duration::from_secs(300));
        cfg.duplicate_window_s = 1;
        assert_eq!(retry_time(&cfg), Duration::from_millis(500));
        cfg.duplicate_window_s = 600;
        cfg.page_retry_s = 42;
        assert_eq!(retry_time(&cfg), Duration::from_secs(42));
    }
}
