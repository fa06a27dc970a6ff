//! Cluster mode (docs/cluster.md): a shared, replicated log is the source
//! of truth. Writes (card changes, served pages, paid calls) are appended to
//! it through a [`Replicator`]; every replica applies the log in order with
//! [`Engine::apply_logged`], so every replica's index and ledger converge to
//! the same state. Each replica keeps the position it has applied: the
//! ledger's is committed with the ledger's own batches, the index's is a
//! small file written after each card change, and a restart resumes after
//! the smaller of the two (an event at or below a part's own position is
//! skipped by that part: every effect counts once).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use hubsearch_core::ModelCard;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ledger::codec::{put_varint, read_varint};
use crate::ledger::{CallOutcome, CallRecord, PageLog, PageRecord};

/// One entry of the cluster log, as JSON: `{"card": {...}}`, `{"page":
/// {...}}`... (externally tagged: pages carry maps keyed by numbers, which
/// an internally tagged enum cannot read back).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    /// A card published or replaced: the final card, as the receiving
    /// replica built it (timestamps and kept counts included).
    Card { card: Box<ModelCard> },
    /// A card deleted.
    Delete { id: String },
    /// API key changes (made or revoked keys, by hash), applied to every
    /// replica's key store.
    Keys {
        changes: Vec<crate::keys::KeyChange>,
    },
    /// A page served to a person by some replica.
    Page {
        /// The page id the replica gave its client.
        page_id: u64,
        /// Hour (since the epoch) and unix second it was served.
        hour: u64,
        time: u64,
        /// Milliseconds since the epoch when it was sent (staleness).
        sent_ms: u64,
        page: PageRecord,
    },
    /// A page served to a person by some replica, as its log (what it adds
    /// is computed from it by every replica alike: `PageRecord::of_log`).
    /// Travels in the cluster log in binary ([`LogEvent::to_payload`]).
    Logged {
        /// The page id the replica gave its client.
        page_id: u64,
        /// Hour (since the epoch) and unix second it was served.
        hour: u64,
        time: u64,
        /// Milliseconds since the epoch when it was sent (staleness).
        sent_ms: u64,
        log: Box<PageLog>,
    },
    /// A served page as a compact page log (event version 3: models by
    /// their ordinal in the ledger's dictionary, names by reference;
    /// docs/ledger.md, Page log), read against the applying replica's
    /// ledger when applied ([`crate::ledger::Ledger::apply_compact_log`]).
    /// Travels in binary ([`LogEvent::to_payload`]).
    Compact {
        /// The page id the replica gave its client.
        page_id: u64,
        /// Hour (since the epoch) and unix second it was served.
        hour: u64,
        time: u64,
        /// Milliseconds since the epoch when it was sent (staleness).
        sent_ms: u64,
        /// The compact page log.
        bytes: Vec<u8>,
    },
    /// A verified paid call, resolved by the replica that took it, at unix
    /// second `time` and millisecond `time_ms` (what every replica writes in
    /// its call log entry; absent in logs written before it: `time` * 1000).
    Call {
        call: CallRecord,
        time: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_ms: Option<u64>,
    },
}

/// The first byte of a binary page event's payload (every other event is
/// JSON, whose first byte is `{`).
pub const PAGE_PAYLOAD: u8 = 0xB1;
/// The first byte of a compact page event's payload.
pub const COMPACT_PAYLOAD: u8 = 0xB3;

impl LogEvent {
    /// The event as a cluster log message's payload: a page's log in
    /// binary (`PAGE_PAYLOAD`, page id, hour, time and sent milliseconds as
    /// little-endian u64, then the encoded log: docs/ledger.md, Page log;
    /// a compact page: `COMPACT_PAYLOAD`, the four numbers as varints, the
    /// compact log), every other event as JSON.
    pub fn to_payload(&self) -> Result<Vec<u8>> {
        match self {
            LogEvent::Compact {
                page_id,
                hour,
                time,
                sent_ms,
                bytes,
            } => {
                let mut out = Vec::with_capacity(24 + bytes.len());
                out.push(COMPACT_PAYLOAD);
                for x in [page_id, hour, time, sent_ms] {
                    put_varint(&mut out, *x);
                }
                out.extend_from_slice(bytes);
                Ok(out)
            }
            LogEvent::Logged {
                page_id,
                hour,
                time,
                sent_ms,
                log,
            } => {
                let encoded = log.encode();
                let mut out = Vec::with_capacity(33 + encoded.len());
                out.push(PAGE_PAYLOAD);
                for x in [page_id, hour, time, sent_ms] {
                    out.extend_from_slice(&x.to_le_bytes());
                }
                out.extend_from_slice(&encoded);
                Ok(out)
            }
            _ => serde_json::to_vec(self).map_err(|e| Error::Cluster(e.to_string())),
        }
    }

    /// Read a cluster log message's payload ([`LogEvent::to_payload`]).
    pub fn from_payload(payload: &[u8]) -> std::result::Result<LogEvent, String> {
        if payload.first() == Some(&COMPACT_PAYLOAD) {
            let mut at = 1;
            let mut n = || read_varint(payload, &mut at).map_err(|e| format!("a page event: {e}"));
            let (page_id, hour, time, sent_ms) = (n()?, n()?, n()?, n()?);
            return Ok(LogEvent::Compact {
                page_id,
                hour,
                time,
                sent_ms,
                bytes: payload[at..].to_vec(),
            });
        }
        if payload.first() != Some(&PAGE_PAYLOAD) {
            return serde_json::from_slice(payload)
                .map_err(|e| format!("the event does not parse: {e}"));
        }
        let word = |i: usize| -> std::result::Result<u64, String> {
            let b = payload
                .get(1 + 8 * i..9 + 8 * i)
                .ok_or("a page event ends early")?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        };
        let (page_id, hour, time, sent_ms) = (word(0)?, word(1)?, word(2)?, word(3)?);
        let log = PageLog::decode(&payload[33..]).map_err(|e| format!("a page event: {e}"))?;
        Ok(LogEvent::Logged {
            page_id,
            hour,
            time,
            sent_ms,
            log: Box::new(log),
        })
    }
}

/// Where writes go in cluster mode (implemented by `hubsearch-cluster`).
/// Calls block the calling thread (the engine is synchronous); they must not
/// be made on an async runtime's worker threads.
pub trait Replicator: Send + Sync {
    /// The log position of card `id`'s last change (0: none), once this
    /// replica has applied it: what a create is conditional on.
    fn card_version(&self, id: &str) -> Result<u64>;
    /// Append a card; returns once the log has acknowledged it (and, within
    /// a bounded wait, this replica has applied it). With `expected`, only
    /// if the card's last change is still at that position, else
    /// `Error::ModelExists` (a concurrent create elsewhere came first).
    fn card(&self, card: &ModelCard, expected: Option<u64>) -> Result<()>;
    /// Append a delete, likewise; with `expected`, only if the card's last
    /// change is still at that position, else `Error::PreconditionFailed`.
    fn delete(&self, id: &str, expected: Option<u64>) -> Result<()>;
    /// Append API key changes; returns once the log has them and (within
    /// the bounded wait) this replica has applied them.
    fn keys(&self, changes: &[crate::keys::KeyChange]) -> Result<()>;
    /// Append a paid call; returns once the log has it and this replica has
    /// applied it, with whether it counted.
    fn call(&self, call: &CallRecord) -> Result<CallOutcome>;
    /// Append a served page's log without waiting for the network; returns
    /// the page id given to the client.
    fn page(&self, log: PageLog, hour: u64, time: u64) -> Result<u64>;
    /// Where this replica stands (for `/readyz`, `/metrics`, `/v1/cluster`).
    fn status(&self) -> ReplicaStatus;
}

/// A replica's standing in the cluster.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReplicaStatus {
    pub replica: String,
    /// Connected to a NATS server now.
    pub connected: bool,
    /// The last log position applied here (index and ledger).
    pub applied: u64,
    /// The log's last position, as last asked (every second).
    pub log_last: u64,
    /// `log_last - applied`: events this replica has not applied yet.
    pub lag: u64,
    /// Served pages the log took.
    pub pages_sent: u64,
    /// Served pages lost to the global books: given up on after the retry
    /// time (`cluster.page_retry_s`), refused at once with too many
    /// waiting, or still waiting at shutdown (docs/cluster.md, Served pages
    /// are retried). An upper bound: a try sent before giving up may still
    /// be stored.
    pub pages_lost: u64,
    /// Deprecated: the earlier name of `pages_lost`, always the same
    /// value; kept for clients written against it (a replicator sets
    /// both).
    #[schema(deprecated)]
    pub pages_failed: u64,
    /// Time from a page being sent (by any replica) to being applied here,
    /// milliseconds, over the last 1,000 pages: the staleness of the global
    /// books the fairness controller reads.
    pub page_delay_p50_ms: f64,
    pub page_delay_p99_ms: f64,
    /// Set when applying the log failed (the replica stops applying).
    pub failing: Option<String>,
    /// Log position of the last snapshot this replica wrote (0: none).
    pub last_snapshot: u64,
    /// How long, in milliseconds, this replica's applier has waited on its
    /// log consumer since its last event while the log had events past
    /// `applied`; 0 unless that has lasted 5 s or more (docs/cluster.md, A
    /// stalled applier). While it is above 0 `/readyz` answers 503: a
    /// write here would wait for the applier.
    pub stalled_ms: u64,
    /// Times this replica made its log consumer again because it had
    /// stalled.
    pub consumer_restarts: u64,
}

/// The index's applied log position, persisted beside it.
pub(crate) struct IndexPosition {
    path: PathBuf,
    value: AtomicU64,
}

impl IndexPosition {
    pub(crate) fn open(path: PathBuf) -> IndexPosition {
        let value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        IndexPosition {
            path,
            value: AtomicU64::new(value),
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Acquire)
    }

    /// Store `p` durably (write a temporary file, fsync, rename).
    fn set(&self, p: u64) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let io = |e| Error::Io {
            path: self.path.clone(),
            source: e,
        };
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(p.to_string().as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        self.value.store(p, Ordering::Release);
        Ok(())
    }
}

impl Engine {
    /// The log position this replica has applied in full (index and
    /// ledger): a restart resumes after it.
    pub fn applied_position(&self) -> u64 {
        self.index_position().get().min(self.ledger().position())
    }

    /// Cluster mode: every log event up to `position` is applied here
    /// (applying paused, as for a snapshot): record it in the index's and
    /// the ledger's positions, which otherwise move only with their own
    /// events (cards; pages and calls).
    pub fn mark_applied(&self, position: u64) -> Result<()> {
        if position > self.index_position().get() {
            self.index_position().set(position)?;
        }
        self.ledger().mark_position(position)?;
        Ok(())
    }

    /// The index's and the ledger's applied positions.
    pub fn positions(&self) -> (u64, u64) {
        (self.index_position().get(), self.ledger().position())
    }

    /// Apply a run of card events (`card` or `delete`, with their
    /// positions, in log order) as one index commit: how a replica applies
    /// an import through the log without a commit per card. Events at or
    /// below the index's position are skipped. Other events are an error.
    pub fn apply_logged_cards(&self, events: Vec<(u64, LogEvent)>) -> Result<()> {
        let done = self.index_position().get();
        let mut last = done;
        let mut changes: Vec<LogEvent> = Vec::new();
        for (p, e) in events {
            if p <= done {
                continue;
            }
            last = last.max(p);
            match e {
                LogEvent::Card { .. } | LogEvent::Delete { .. } => changes.push(e),
                _ => {
                    return Err(Error::Cluster(format!(
                        "log position {p} is not a card change"
                    )))
                }
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        self.commit_changes(&changes)?;
        self.index_position().set(last)
    }

    /// Apply one log event taken at `position` (1-based, increasing). An
    /// event a part has applied before is skipped by that part.
    pub fn apply_logged(&self, event: LogEvent, position: u64) -> Result<()> {
        match event {
            LogEvent::Card { card } => {
                if position > self.index_position().get() {
                    self.publish_local(*card)?;
                    self.index_position().set(position)?;
                }
            }
            LogEvent::Delete { id } => {
                if position > self.index_position().get() {
                    match self.delete_local(&id) {
                        Ok(()) | Err(Error::ModelNotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    self.index_position().set(position)?;
                }
            }
            LogEvent::Page {
                page_id,
                hour,
                time,
                page,
                ..
            } => {
                self.ledger()
                    .apply_logged_page(page, page_id, hour, time, position)?;
            }
            LogEvent::Logged {
                page_id,
                hour,
                time,
                log,
                ..
            } => {
                self.ledger()
                    .apply_logged_log(*log, page_id, hour, time, position)?;
            }
            LogEvent::Compact {
                page_id,
                hour,
                time,
                bytes,
                ..
            } => {
                self.ledger()
                    .apply_compact_log(&bytes, page_id, hour, time, position)?;
            }
            LogEvent::Call {
                call,
                time,
                time_ms,
            } => {
                let time_ms = time_ms.unwrap_or(time.saturating_mul(1000));
                self.ledger().apply_logged_call(&call, time_ms, position)?;
            }
            // Idempotent: applied again after a restart, nothing changes.
            LogEvent::Keys { changes } => self.keys().apply(&changes)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Impression, Ledger};
    use hubsearch_core::{BuilderKey, Group, ModelKey};
    use hubsearch_rank::{Account, PageDelta};

    fn page(m: u64) -> PageRecord {
        let a = Account {
            exposure: 1.0,
            merit: 0.5,
            rounds: 1,
            impact: 0.0,
        };
        PageRecord {
            impressions: vec![Impression {
                model: ModelKey(m),
                builder: BuilderKey(9),
                rank: 1,
                exposure: 1.0,
            }],
            model_delta: PageDelta::from([(m, a)]),
            builder_delta: PageDelta::from([(9, a)]),
            names: vec![(m, "a/m".into()), (9, "a".into())],
            log: None,
            book: Default::default(),
            query: None,
        }
    }

    fn call(key: &str) -> CallRecord {
        crate::ledger::test_call(key, 5, 9)
    }

    #[test]
    fn log_events_read_back_as_written() {
        let e = LogEvent::Page {
            page_id: 7,
            hour: 1,
            time: 2,
            sent_ms: 3,
            page: page(5),
        };
        let back: LogEvent = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        let LogEvent::Page { page, page_id, .. } = back else {
            panic!("not a page")
        };
        assert_eq!(page_id, 7);
        assert_eq!(page.model_delta[&5].merit, 0.5);
        assert_eq!(page.builder_delta[&9].rounds, 1);
        let e = LogEvent::Call {
            call: call("k"),
            time: 4,
            time_ms: Some(4005),
        };
        let back: LogEvent = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert!(
            matches!(back, LogEvent::Call { call, time: 4, time_ms: Some(4005) } if call.idempotency_key.as_deref() == Some("k"))
        );
        // A call logged before time_ms existed still reads.
        let old = r#"{"call": {"call": {"model": 5, "builder": 9, "model_id": "a/m", "builder_name": "a", "amount_usd": 0.5, "amount_stated": true, "idempotency_key": null, "origin": null}, "time": 4}}"#;
        let back: LogEvent = serde_json::from_str(old).unwrap();
        assert!(matches!(
            back,
            LogEvent::Call {
                time: 4,
                time_ms: None,
                ..
            }
        ));
    }

    /// A logged page of `n` candidates, 10 shown from rank 11.
    fn logged(n: usize) -> PageLog {
        let ranked: Vec<crate::ledger::LoggedCandidate> = (0..n as u64)
            .map(|i| crate::ledger::LoggedCandidate {
                model: ModelKey(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                builder: BuilderKey((i % 37).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)),
                relevance: f64::from((i as f32 * 0.37).sin().abs()),
                merit: f64::from((i as f32 * 0.37).sin().abs()),
                calls: (i * i * 1000) as f64,
                quantile: f64::from(i as f32 / n as f32),
            })
            .collect();
        let shown = (0..10)
            .map(|i| crate::ledger::ShownLog {
                model: format!("builder-{}/model-number-{}", (10 + i) % 37, 10 + i).into(),
                builder: format!("builder-{}", (10 + i) % 37),
                rank: 11 + i,
                relevance: ranked[10 + i].relevance,
                score: 1.5,
                ..Default::default()
            })
            .collect();
        PageLog {
            query: "german sentiment".into(),
            mode: "hybrid".into(),
            policy: "relevance".into(),
            group: "model".into(),
            candidates: n,
            shown,
            first_rank: 11,
            attention: Some(hubsearch_rank::Attention::Log),
            ranked,
            ..Default::default()
        }
    }

    #[test]
    fn page_events_are_binary_and_far_smaller_than_json_records() {
        let log = logged(200);
        let e = LogEvent::Logged {
            page_id: 7,
            hour: 1,
            time: 2,
            sent_ms: 3,
            log: Box::new(log.clone()),
        };
        let payload = e.to_payload().unwrap();
        assert_eq!(payload[0], PAGE_PAYLOAD);
        let LogEvent::Logged {
            page_id,
            sent_ms,
            log: back,
            ..
        } = LogEvent::from_payload(&payload).unwrap()
        else {
            panic!("not a page")
        };
        assert_eq!((page_id, sent_ms), (7, 3));
        assert_eq!(*back, log);
        // The event as JSON of the record it replaces.
        let record = PageRecord::of_log(log).unwrap();
        let old = serde_json::to_vec(&LogEvent::Page {
            page_id: 7,
            hour: 1,
            time: 2,
            sent_ms: 3,
            page: record,
        })
        .unwrap();
        eprintln!(
            "page event at 200 candidates: {} bytes binary, {} bytes as the JSON record",
            payload.len(),
            old.len()
        );
        assert!(payload.len() * 4 < old.len());
        // Cut anywhere, it is an error, not a panic.
        for cut in 0..payload.len() {
            assert!(LogEvent::from_payload(&payload[..cut]).is_err());
        }
        // JSON events still read.
        assert!(matches!(
            LogEvent::from_payload(br#"{"delete": {"id": "a/b"}}"#),
            Ok(LogEvent::Delete { .. })
        ));
    }

    #[test]
    fn replicas_applying_a_page_event_book_what_the_serving_ledger_books() {
        let served = Ledger::in_memory().unwrap();
        served.record_log(logged(200)).unwrap();
        let replica = Ledger::in_memory().unwrap();
        let e = LogEvent::Logged {
            page_id: 0,
            hour: 0,
            time: 0,
            sent_ms: 0,
            log: Box::new(logged(200)),
        };
        let LogEvent::Logged { log, .. } =
            LogEvent::from_payload(&e.to_payload().unwrap()).unwrap()
        else {
            panic!("not a page")
        };
        replica.apply_logged_log(*log, 0, 0, 0, 1).unwrap();
        for k in [0u64, 10, 15, 199] {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let (a, b) = (
                served.tally_of(key, Group::Model),
                replica.tally_of(key, Group::Model),
            );
            assert_eq!(a.exposure.to_bits(), b.exposure.to_bits());
            assert_eq!(a.merit.to_bits(), b.merit.to_bits());
        }
        // Shown items (ranks 11..20) were exposed, the rest not.
        let shown = 15u64.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        assert!(replica.tally_of(shown, Group::Model).exposure > 0.0);
        assert_eq!(replica.tally_of(0, Group::Model).exposure, 0.0);
    }

    #[test]
    fn a_position_applied_twice_or_a_key_used_twice_counts_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        {
            let l = Ledger::open(&path).unwrap();
            assert!(l.apply_logged_page(page(5), 11, 0, 0, 1).unwrap());
            // Redelivered at the same position: nothing.
            assert!(!l.apply_logged_page(page(5), 11, 0, 0, 1).unwrap());
            assert!(l.apply_logged_call(&call("k"), 0, 2).unwrap());
            // The same key from another replica, later in the log: nothing.
            assert!(!l.apply_logged_call(&call("k"), 0, 3).unwrap());
            l.flush().unwrap();
            assert_eq!(l.position(), 3);
            assert_eq!(l.tally_of(5, Group::Model).exposure, 1.0);
            assert_eq!(l.earnings_of(5, Group::Model).calls, 1);
        }
        // After a restart the ledger resumes after what it committed (the
        // no-op at 3 was not written) and replays to the same totals.
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.position(), 2);
        assert!(!l.apply_logged_page(page(5), 11, 0, 0, 1).unwrap());
        assert!(!l.apply_logged_call(&call("k"), 0, 3).unwrap());
        assert!(l.apply_logged_page(page(5), 12, 0, 0, 4).unwrap());
        assert_eq!(l.tally_of(5, Group::Model).exposure, 2.0);
        assert_eq!(l.earnings_of(5, Group::Model).calls, 1);
        assert_eq!(l.pages(), 2);
    }
}
