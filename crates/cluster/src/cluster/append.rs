//! Writes appended to the log, and the engine's `Replicator`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{message::PublishMessage, stream};
use hubsearch_core::ModelCard;
use hubsearch_engine::replica::ReplicaStatus;
use hubsearch_engine::{LogEvent, Replicator};
use hubsearch_ledger::{CallOutcome, CallRecord, PageLog};

use super::Cluster;
use crate::connection::{error_text, in_process};
use crate::error::{engine_err, nats, not_applied, ClusterError};
use crate::event::{card_subject, now_ms, EVENT_VERSION_HEADER};

impl Cluster {
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
                    Ok(ack) => {
                        // The log has reached this position at least (what
                        // a stalled applier is measured against).
                        self.log_last.fetch_max(ack.sequence, Ordering::Relaxed);
                        Ok((ack.sequence, ack.duplicate))
                    }
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
        self.append_page(log, hour, time)
    }

    fn status(&self) -> ReplicaStatus {
        self.replica_status()
    }
}
