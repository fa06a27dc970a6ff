//! Recording paid calls: idempotency keys, waiting for durability, and
//! calls taken from the cluster log.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::store::Event;
use super::transparency::Receipt;
use super::{CallOutcome, CallRecord, Keyed, Ledger, LedgerError};

/// A call being written, for duplicates of its idempotency key to wait on.
#[derive(Default)]
pub(super) struct Pending {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Pending {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// When dropped: forgets a call's pending key and wakes its duplicates.
struct Release<'a> {
    ledger: &'a Ledger,
    key: Option<&'a str>,
    pending: &'a Pending,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.ledger.pending().remove(k);
        }
        self.pending.finish();
    }
}

/// The answer to a retried call: the original, if it named the same model
/// and amount.
fn duplicate(key: &str, keyed: &Keyed, call: &CallRecord) -> Result<CallOutcome, LedgerError> {
    let other_amount = call.amount_stated && keyed.amount_usd != call.amount_usd;
    if keyed.model != call.model || other_amount {
        return Err(LedgerError::KeyReused {
            key: key.to_string(),
        });
    }
    Ok(CallOutcome {
        seq: keyed.seq,
        recorded: false,
    })
}

impl Ledger {
    /// Cluster mode: apply a paid call taken from the log at `position`,
    /// made at `time_ms` (as the log carries it: every replica writes the
    /// same call log entry).
    /// A call whose idempotency key was applied before (from any replica)
    /// counts nothing; so does a position applied before. Returns whether
    /// it was recorded.
    pub fn apply_logged_call(
        &self,
        call: &CallRecord,
        time_ms: u64,
        position: u64,
    ) -> Result<bool, LedgerError> {
        let Some(mut s) = self.state_past(position) else {
            return Ok(false);
        };
        if let Some(k) = &call.idempotency_key {
            if s.idempotency.contains_key(k) {
                return Ok(false);
            }
        }
        let entry = call.entry(s.next_call);
        s.next_call += 1;
        s.apply_call(&entry);
        s.name(call.model.0, call.model_id.as_str());
        s.name(call.builder.0, &call.builder_name);
        if let Some(k) = &call.idempotency_key {
            s.logged_keys.insert(k.clone(), position);
        }
        drop(s);
        let (ack, _) = mpsc::channel();
        self.send(Event::Call {
            call: entry,
            names: call.names(),
            time_ms,
            ack,
            position,
        })?;
        Ok(true)
    }

    /// Cluster mode: what became of a call sent with idempotency key `key`
    /// that the log took at `position`: `Some(outcome)` once applied here
    /// (recorded if that very event counted, else the original's sequence),
    /// an error if the key was first used for another model or amount.
    pub fn logged_outcome(
        &self,
        key: &str,
        call: &CallRecord,
        position: u64,
    ) -> Result<Option<CallOutcome>, LedgerError> {
        let s = self.state();
        if s.position < position {
            return Ok(None);
        }
        let Some(keyed) = s.idempotency.get(key) else {
            return Ok(None);
        };
        if s.logged_keys.get(key) == Some(&position) {
            return Ok(Some(CallOutcome {
                seq: keyed.seq,
                recorded: true,
            }));
        }
        duplicate(key, keyed, call).map(Some)
    }

    /// Whether `key` was used before, and for what: the duplicate's answer
    /// (or the reused-key error) when it was, `None` when it is new here.
    pub fn known_call(
        &self,
        key: &str,
        call: &CallRecord,
    ) -> Result<Option<CallOutcome>, LedgerError> {
        let s = self.state();
        match s.idempotency.get(key) {
            Some(keyed) => duplicate(key, keyed, call).map(Some),
            None => Ok(None),
        }
    }

    /// Record a paid call and wait until it is durable. A call whose
    /// idempotency key was recorded before records nothing and returns the
    /// original sequence number, once that original is durable (a duplicate
    /// that arrives while the original is being written waits for it). A key
    /// reused for another model or amount is an error.
    pub fn record_call(&self, call: CallRecord) -> Result<CallOutcome, LedgerError> {
        self.record_call_receipt(call).map(|(out, _)| out)
    }

    /// [`Ledger::record_call`], with the receipt of the call's log entry
    /// when this call recorded it (`None` for a duplicate: ask
    /// [`Ledger::receipt`] for the original's).
    pub fn record_call_receipt(
        &self,
        call: CallRecord,
    ) -> Result<(CallOutcome, Option<Receipt>), LedgerError> {
        loop {
            let mut s = self.state();
            if let Some(k) = &call.idempotency_key {
                if let Some(keyed) = s.idempotency.get(k) {
                    return duplicate(k, keyed, &call).map(|out| (out, None));
                }
                let original = self.pending().get(k).cloned();
                if let Some(original) = original {
                    drop(s);
                    original.wait();
                    // The original is durable (or failed): look again.
                    continue;
                }
            }
            let mut entry = call.entry(s.next_call);
            // Booked under the query of the page it names, if that page
            // was served here lately and showed the model.
            entry.query = entry
                .origin
                .and_then(|o| s.queries.query_of_page(o.page))
                .filter(|q| s.queries.shown(*q, call.model.0));
            s.next_call += 1;
            let pending = Arc::new(Pending::default());
            if let Some(k) = &entry.idempotency_key {
                self.pending().insert(k.clone(), pending.clone());
            }
            // Whatever happens next (even a panic), duplicates are released.
            let _release = Release {
                ledger: self,
                key: entry.idempotency_key.as_deref(),
                pending: &pending,
            };
            let (ack, rx) = mpsc::channel();
            let sent = self.send(Event::Call {
                call: entry.clone(),
                names: call.names(),
                time_ms: now_ms(),
                ack,
                position: 0,
            });
            drop(s);
            let durable = sent.and_then(|()| rx.recv().map_err(|_| LedgerError::Stopped));
            // Book the call in memory only once it is on disk.
            let mut s = self.state();
            if durable.is_ok() {
                s.apply_call(&entry);
                s.name(call.model.0, call.model_id.as_str());
                s.name(call.builder.0, &call.builder_name);
            }
            drop(s);
            let receipt = durable?;
            let out = CallOutcome {
                seq: entry.seq,
                recorded: true,
            };
            return Ok((out, Some(receipt)));
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, Arc<Pending>>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since the epoch now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
