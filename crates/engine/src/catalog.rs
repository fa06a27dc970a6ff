//! The catalog service: publish (create only), replace, delete single cards
//! on a live engine, with the publishing rules (a valid id, no second card
//! under one id, the hub's counts and dates kept on a builder's replace).
//! Each change is committed and visible to the next search at once (the
//! reader is reloaded after the commit), and the card's vector follows.
//! Bulk imports are `import.rs`.

use hubsearch_core::card::key_of;
use hubsearch_core::ModelCard;
use hubsearch_index::CardWriter;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Whether `id` is a publishable model id: `name` or `namespace/name`,
/// each part 1 to 96 of `A-Z a-z 0-9 . _ -`, starting and ending with a
/// letter or digit, no `--` or `..` (the Hub's rule): no look-alike,
/// invisible or path characters.
pub fn is_valid_id(id: &str) -> bool {
    let part_ok = |p: &str| {
        let b = p.as_bytes();
        (1..=96).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && !p.contains("--")
            && !p.contains("..")
    };
    let parts: Vec<&str> = id.split('/').collect();
    parts.len() <= 2 && parts.iter().all(|p| part_ok(p))
}

/// Now as RFC 3339 UTC, to the second: a card's `created_at`/`updated_at`.
fn now() -> String {
    hubsearch_core::card::rfc3339(hubsearch_core::now_unix() as i64)
}

/// Who changes a card: a builder (the hub's counts stay the hub's) or the
/// hub's admin (may set them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    Builder,
    Admin,
}

impl Engine {
    /// Publish a new card: an error if its id is not valid or a card with
    /// it exists. Stamps `created_at` (unless given) and `updated_at`.
    pub fn create_model(&self, mut card: ModelCard) -> Result<ModelCard> {
        if !is_valid_id(&card.id) {
            return Err(Error::InvalidId { id: card.id });
        }
        if self.text_index().get(&card.id)?.is_some() {
            return Err(Error::ModelExists { id: card.id });
        }
        let stamp = now();
        card.created_at.get_or_insert_with(|| stamp.clone());
        card.updated_at = Some(stamp);
        match self.replicator() {
            // Cluster mode: "it does not exist" is checked against the
            // card's whole history in the log, and the append is
            // conditional on it, so of two replicas creating one id at once
            // only one is told 201 (issue 27).
            Some(r) => {
                let version = r.card_version(&card.id)?;
                if self.text_index().get(&card.id)?.is_some() {
                    return Err(Error::ModelExists { id: card.id });
                }
                r.card(&card, Some(version))?;
            }
            None => {
                self.publish_local(card.clone())?;
            }
        }
        Ok(card)
    }

    /// Replace a card (or create it): its `created_at` stays, and for a
    /// builder so do the hub's counts (downloads, likes, paid calls);
    /// `updated_at` is now. Returns the card as stored and whether it is new.
    pub fn replace_model(&self, mut card: ModelCard, by: Publisher) -> Result<(ModelCard, bool)> {
        if !is_valid_id(&card.id) {
            return Err(Error::InvalidId { id: card.id });
        }
        if let Some((_, old)) = self.text_index().get(&card.id)? {
            card.created_at = old.created_at.clone();
            if by == Publisher::Builder {
                card.downloads = old.downloads;
                card.likes = old.likes;
                card.paid_calls = old.paid_calls;
            }
        }
        card.updated_at = Some(now());
        let created = self.publish(card.clone())?;
        Ok((card, created))
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
            r.card(&card, None)?;
            return Ok(!existed);
        }
        self.publish_local(card)
    }

    /// Add or replace a card in this replica's own index.
    /// All or nothing: the card's vector is made before anything is
    /// written, so a card that cannot be embedded (the model missing, say)
    /// is not stored and a retry can succeed.
    pub(crate) fn publish_local(&self, card: ModelCard) -> Result<bool> {
        let existed = self.text_index().get(&card.id)?.is_some();
        let vector = match self.semantic() {
            Some(sem) => Some(sem.embed_card(&card)?),
            None => None,
        };
        self.commit_change(|w| w.upsert(&card))?;
        if let (Some(sem), Some(v)) = (self.semantic(), vector) {
            sem.insert_card(v)?;
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

    /// Record a verified paid call as given: in the ledger, or through the
    /// cluster log in cluster mode (`calls.rs` checks and prices it first).
    pub fn record_call(
        &self,
        call: crate::ledger::CallRecord,
    ) -> Result<crate::ledger::CallOutcome> {
        self.record_call_receipt(call).map(|(out, _)| out)
    }

    /// [`Engine::record_call`], with the call log receipt when the ledger
    /// gave it at once (a new call recorded here).
    pub fn record_call_receipt(
        &self,
        call: crate::ledger::CallRecord,
    ) -> Result<(
        crate::ledger::CallOutcome,
        Option<crate::ledger::transparency::Receipt>,
    )> {
        match self.replicator() {
            Some(r) => Ok((r.call(&call)?, None)),
            None => Ok(self.ledger().record_call_receipt(call)?),
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
            sem.delete_card(key_of(id))?;
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
                    LogEvent::Delete { id } => sem.delete_card(key_of(id))?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use hubsearch_core::{Config, EmbeddingModel};

    /// With the embedding model missing, a publish fails and stores
    /// nothing: the card is not served, and a retry fails the same way
    /// (not `ModelExists`).
    #[test]
    fn a_publish_that_cannot_embed_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.index.dir = dir.path().join("index");
        config.embedding.model = EmbeddingModel::MiniLm;
        config.embedding.model_dir = dir.path().join("no-model-here");
        let e = Engine::open_or_create(config).unwrap();
        let card = ModelCard {
            id: "acme/m".into(),
            builder: "acme".into(),
            ..Default::default()
        };
        for _ in 0..2 {
            let err = e.create_model(card.clone()).unwrap_err();
            assert!(matches!(err, Error::EmbeddingUnavailable(_)), "{err}");
            assert!(!e.has_model("acme/m"));
        }
        assert_eq!(e.num_models(), 0);
    }

    #[test]
    fn ids_follow_the_hub_rule() {
        for ok in ["bert-base-uncased", "acme/m", "a.b_c-d/x1"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "a/b/c", "-a", "a-", "a--b", "a..b", "a b", "ä/x", "/x"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
