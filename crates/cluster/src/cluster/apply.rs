//! The applier: the log applied in order on a thread of its own.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, consumer::pull};
use futures_util::{FutureExt, StreamExt};
use hubsearch_engine::{Engine, LogEvent};

use super::{Cluster, STALL};
use crate::error::{nats, ClusterError};
use crate::event::{decode_event, EVENT_VERSION_HEADER};

/// What the consumer gave the applier. (Returned and matched at once,
/// never stored: boxing the message would cost an allocation per event.)
#[allow(clippy::large_enum_variant)]
enum Next {
    Message(jetstream::Message),
    /// Nothing within a second: the log is quiet.
    Quiet,
    /// The consumer ended or broke: make it again.
    Reconnect,
}

impl Cluster {
    /// Apply the log from this replica's position on, forever (or until
    /// stopped or applying fails). Reconnects: a consumer that breaks is
    /// made again from the position applied.
    pub(super) fn apply_loop(&self, engine: &Engine) {
        // When the current consumer was made (a stalled one is made again
        // at most once per `STALL`), and how long the applier has waited on
        // consumers with the log ahead of it since it was last given an
        // event (across consumers: what `/readyz` reports).
        let mut made: Option<Instant> = None;
        let mut quiet = Duration::ZERO;
        while !self.stopped.load(Ordering::Relaxed) {
            if made.is_some_and(|m| m.elapsed() < STALL) {
                // Not at once after a restart (or a broken consumer).
                std::thread::sleep(Duration::from_millis(100));
            }
            made = Some(Instant::now());
            let mut messages = match self.consumer(self.applied.get() + 1) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("cluster log consumer: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            // Waited on this consumer with the log ahead.
            let mut waited = Duration::ZERO;
            let mut carried: Option<jetstream::Message> = None;
            loop {
                if self.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let msg = match carried.take() {
                    Some(m) => m,
                    None => {
                        let t = Instant::now();
                        match self.next_message(&mut messages) {
                            Next::Message(m) => {
                                quiet = Duration::ZERO;
                                self.quiet_ms.store(0, Ordering::Relaxed);
                                m
                            }
                            Next::Quiet => {
                                if self.behind() {
                                    quiet += t.elapsed();
                                    waited += t.elapsed();
                                } else {
                                    quiet = Duration::ZERO;
                                    waited = Duration::ZERO;
                                }
                                self.quiet_ms
                                    .store(quiet.as_millis() as u64, Ordering::Relaxed);
                                if waited >= STALL && self.stalled(quiet) {
                                    break;
                                }
                                self.mark_idle(engine);
                                continue;
                            }
                            Next::Reconnect => break,
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
                if !self.apply_event(engine, &mut messages, &mut carried, position, event) {
                    return;
                }
            }
        }
    }

    /// Whether the log has events past the applied position, as last known
    /// (the log's end asked every second, and every append's
    /// acknowledgement).
    fn behind(&self) -> bool {
        self.log_last.load(Ordering::Relaxed) > self.applied.get()
    }

    /// Whether the current consumer has stalled, after it gave nothing for
    /// [`STALL`] of waiting while the log was ahead (`quiet`: the wait
    /// since the last event, across consumers): the log's end is asked
    /// afresh (it may have moved back: a stream made again), and when the
    /// log is still ahead the consumer is made again from the applied
    /// position (counted in `consumer_restarts`). Seen in a test run:
    /// after a NATS server was killed, a replica's ordered consumer, which
    /// lived there, delivered nothing more while its writes still reached
    /// the log, so each write waited `apply_wait_ms` and failed. While it
    /// is stalled `/readyz` says this replica cannot take writes. Time
    /// spent applying (a long run of cards) or paused by a snapshot is not
    /// waiting: only the consumer's silence counts.
    fn stalled(&self, quiet: Duration) -> bool {
        let applied = self.applied.get();
        let fresh = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), self.log_end()).await });
        if let Ok(Some(last)) = fresh {
            self.log_last.store(last.max(applied), Ordering::Relaxed);
        }
        let last = self.log_last.load(Ordering::Relaxed);
        if last <= applied {
            return false;
        }
        tracing::warn!(
            "cluster log consumer stalled: applied {applied}, the log is at {last}, nothing delivered for {:.1} s; making it again",
            quiet.as_secs_f64()
        );
        self.consumer_restarts.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// An ordered consumer of the log from position `from` on, and its
    /// messages.
    fn consumer(&self, from: u64) -> Result<pull::Ordered, ClusterError> {
        self.rt.block_on(async {
            let s = self.js.get_stream(&self.cfg.stream).await.map_err(nats)?;
            let c = s
                .create_consumer(pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ..Default::default()
                })
                .await
                .map_err(nats)?;
            c.messages().await.map_err(nats)
        })
    }

    /// The consumer's next message, waiting up to a second for it.
    fn next_message(&self, messages: &mut pull::Ordered) -> Next {
        let next = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), messages.next()).await
        });
        match next {
            // Nothing new within a second.
            Err(_) => Next::Quiet,
            Ok(None) => Next::Reconnect,
            Ok(Some(Err(e))) => {
                tracing::warn!("cluster log: {e}; reconnecting the consumer");
                Next::Reconnect
            }
            Ok(Some(Ok(m))) => Next::Message(m),
        }
    }

    /// Apply the event at `position` (the next one), with applying paused
    /// for snapshots meanwhile; a card change is applied with the run of
    /// card changes delivered after it ([`Cluster::card_run`]). Whether
    /// this replica goes on applying (it stops, loudly, when applying
    /// fails).
    fn apply_event(
        &self,
        engine: &Engine,
        messages: &mut pull::Ordered,
        carried: &mut Option<jetstream::Message>,
        position: u64,
        event: LogEvent,
    ) -> bool {
        let sent = match &event {
            LogEvent::Page { sent_ms, .. }
            | LogEvent::Logged { sent_ms, .. }
            | LogEvent::Compact { sent_ms, .. } => Some(*sent_ms),
            _ => None,
        };
        let paused = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        let (result, last) = if matches!(event, LogEvent::Card { .. } | LogEvent::Delete { .. }) {
            let Some(run) = self.card_run(messages, carried, position, event) else {
                return false;
            };
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
            return false;
        }
        if let Some(sent) = sent {
            self.record_delay(sent);
        }
        self.applied.set(last);
        drop(paused);
        self.log_last.fetch_max(last, Ordering::Relaxed);
        true
    }

    /// A run of card changes (an import) is one index commit: the card
    /// change at `position`, then those already delivered after it, up to
    /// 1,024. The first other event ends the run and is `carried` to be
    /// applied next; `None` when a message does not decode (the replica
    /// stops applying).
    fn card_run(
        &self,
        messages: &mut pull::Ordered,
        carried: &mut Option<jetstream::Message>,
        position: u64,
        event: LogEvent,
    ) -> Option<Vec<(u64, LogEvent)>> {
        let mut run = vec![(position, event)];
        while run.len() < 1024 {
            // Polled inside the runtime (the stream uses its timers).
            let ready = self.rt.block_on(async { messages.next().now_or_never() });
            match ready {
                Some(Some(Ok(m))) => match self.decode(&m) {
                    Some((p, e @ (LogEvent::Card { .. } | LogEvent::Delete { .. }))) => {
                        run.push((p, e))
                    }
                    Some(_) => {
                        *carried = Some(m);
                        break;
                    }
                    None => return None,
                },
                _ => break,
            }
        }
        Some(run)
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
    fn decode(&self, msg: &jetstream::Message) -> Option<(u64, LogEvent)> {
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
}
