//! Publishing: add, replace and delete single cards on a live engine. Each
//! change is committed and visible to the next search at once (the reader
//! is reloaded after the commit), and the card's vector follows.

use hubsearch_core::card::key_of;
use hubsearch_core::ModelCard;
use hubsearch_index::CardWriter;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Memory budget of the long-lived writer a serving engine keeps.
const WRITER_MB: usize = 64;

impl Engine {
    fn with_writer<R>(&self, f: impl FnOnce(&mut CardWriter) -> Result<R>) -> Result<R> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.text_index().writer(WRITER_MB, 1)?);
        }
        let w = guard.as_mut().expect("writer");
        let out = f(w);
        if out.is_err() {
            let _ = w.rollback();
        }
        out
    }

    /// Apply one change with the writer, commit it, and make it visible to
    /// the next search (reader reload, hub popularity).
    fn commit_change(
        &self,
        change: impl FnOnce(&mut CardWriter) -> hubsearch_index::Result<()>,
    ) -> Result<()> {
        self.with_writer(|w| {
            change(w)?;
            w.commit()?;
            Ok(())
        })?;
        self.text_index().reload()?;
        self.refresh_hub()
    }

    /// Add or replace a card; returns whether it is new. Searchable on
    /// return (in cluster mode: on this replica, within the replicator's
    /// bounded wait; on the others once they apply the log).
    pub fn publish(&self, card: ModelCard) -> Result<bool> {
        if let Some(r) = self.replicator() {
            let existed = self.text_index().get(&card.id)?.is_some();
            r.card(&card)?;
            return Ok(!existed);
        }
        self.publish_local(card)
    }

    /// Add or replace a card in this replica's own index.
    pub(crate) fn publish_local(&self, card: ModelCard) -> Result<bool> {
        let existed = self.text_index().get(&card.id)?.is_some();
        self.commit_change(|w| w.upsert(&card))?;
        if let Some(sem) = self.semantic() {
            sem.upsert_card(&card)?;
        }
        Ok(!existed)
    }

    /// Delete a card (and tombstone its vector).
    pub fn delete_model(&self, id: &str) -> Result<()> {
        if let Some(r) = self.replicator() {
            if self.text_index().get(id)?.is_none() {
                return Err(Error::ModelNotFound { id: id.to_string() });
            }
            return r.delete(id);
        }
        self.delete_local(id)
    }

    /// Record a verified paid call: in the ledger, or through the cluster
    /// log in cluster mode.
    pub fn record_call(
        &self,
        call: crate::ledger::CallRecord,
    ) -> Result<crate::ledger::CallOutcome> {
        match self.replicator() {
            Some(r) => r.call(&call),
            None => Ok(self.ledger().record_call(call)?),
        }
    }

    /// Delete a card from this replica's own index.
    pub(crate) fn delete_local(&self, id: &str) -> Result<()> {
        if self.text_index().get(id)?.is_none() {
            return Err(Error::ModelNotFound { id: id.to_string() });
        }
        self.commit_change(|w| {
            w.delete(id);
            Ok(())
        })?;
        if let Some(sem) = self.semantic() {
            sem.vectors().delete(key_of(id));
            sem.mark_dirty();
        }
        Ok(())
    }

    /// Apply card changes from the cluster log in one commit, then their
    /// vectors (docs/cluster.md).
    pub(crate) fn commit_changes(&self, changes: &[crate::replica::LogEvent]) -> Result<()> {
        use crate::replica::LogEvent;
        self.commit_change(|w| {
            for c in changes {
                match c {
                    LogEvent::Card { card } => w.upsert(card)?,
                    LogEvent::Delete { id } => w.delete(id),
                    _ => {}
                }
            }
            Ok(())
        })?;
        if let Some(sem) = self.semantic() {
            for c in changes {
                match c {
                    LogEvent::Card { card } => sem.upsert_card(card)?,
                    LogEvent::Delete { id } => {
                        sem.vectors().delete(key_of(id));
                        sem.mark_dirty();
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Persist what only lives in memory: queued ledger events, vectors
    /// added since the last save. Called on graceful shutdown.
    pub fn flush(&self) -> Result<()> {
        self.ledger().flush()?;
        if let Some(sem) = self.semantic() {
            sem.save_if_dirty()?;
        }
        Ok(())
    }

    /// Embed cards that have no current vector (after a crash lost unsaved
    /// vectors, or cards imported with embeddings off).
    pub fn sync_vectors(
        &self,
        progress: crate::progress::ProgressFn<'_>,
    ) -> Result<Option<crate::semantic::VectorReport>> {
        match self.semantic() {
            Some(sem) => Ok(Some(sem.sync(self.text_index(), progress)?)),
            None => Ok(None),
        }
    }
}
