//! The catalog service: publish (create only), replace, delete single cards
//! on a live engine, with the publishing rules (a valid id, no second card
//! under one id, the hub's counts and dates kept on a builder's replace).
//! Each change is committed and visible to the next search at once (the
//! reader is reloaded after the commit), and the card's vector follows.
//! Bulk imports are `import.rs`.

use hubsearch_core::{ModelCard, ModelKey};
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

/// A card's entity tag (RFC 9110 §8.8.3, strong, quoted): the first 16 hex
/// digits of the BLAKE3 hash of the card's JSON as stored, so it changes
/// whenever the card does (docs/api.md, Conditional writes).
pub fn etag(card: &ModelCard) -> String {
    let json = serde_json::to_vec(card).unwrap_or_default();
    format!("\"{}\"", &blake3::hash(&json).to_hex()[..16])
}

/// A write's `If-Match` (RFC 9110 §13.1.1): any current card, or one of
/// these entity tags (compared strongly: a weak tag `W/"..."` never
/// matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parse an `If-Match` value: `*`, or a comma-separated list of entity
    /// tags (`"..."` or `W/"..."`).
    pub fn parse(value: &str) -> Result<IfMatch> {
        let v = value.trim();
        if v == "*" {
            return Ok(IfMatch::Any);
        }
        let mut tags = Vec::new();
        for t in v.split(',').map(str::trim) {
            let (weak, quoted) = match t.strip_prefix("W/") {
                Some(q) => (true, q),
                None => (false, t),
            };
            let ok = quoted.len() >= 2
                && quoted.starts_with('"')
                && quoted.ends_with('"')
                && !quoted[1..quoted.len() - 1].contains('"');
            if !ok {
                return Err(Error::InvalidPrecondition(format!(
                    "{t:?} is not an entity tag: send `*` or tags as GET gives them in ETag (quoted)"
                )));
            }
            if !weak {
                tags.push(quoted.to_string());
            }
        }
        Ok(IfMatch::Tags(tags))
    }

    /// Whether a card whose tag is `current` (`None`: no card) meets it.
    fn holds(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (IfMatch::Any, Some(_)) => true,
            (IfMatch::Tags(tags), Some(c)) => tags.iter().any(|t| t == c),
        }
    }
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
    pub fn replace_model(&self, card: ModelCard, by: Publisher) -> Result<(ModelCard, bool)> {
        self.replace_model_if(card, by, None)
    }

    /// [`Engine::replace_model`], only if the card is the version `pre`
    /// names (else [`Error::PreconditionFailed`]), decided atomically with
    /// the write: under the index writer's lock on one node, by a write
    /// conditional on the card's last log position in cluster mode.
    pub fn replace_model_if(
        &self,
        mut card: ModelCard,
        by: Publisher,
        pre: Option<&IfMatch>,
    ) -> Result<(ModelCard, bool)> {
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
        let created = self.publish_if(card.clone(), pre)?;
        Ok((card, created))
    }

    /// An error unless the card `id` meets `pre` (nothing to check without).
    fn check_precondition(&self, id: &str, pre: Option<&IfMatch>) -> Result<()> {
        let Some(pre) = pre else {
            return Ok(());
        };
        let current = self.text_index().get(id)?.map(|(_, c)| etag(&c));
        if pre.holds(current.as_deref()) {
            Ok(())
        } else {
            Err(Error::PreconditionFailed { id: id.to_string() })
        }
    }

    /// Apply one change with the writer, commit it, and make it visible to
    /// the next search (reader reload, hub popularity).
    fn commit_change(
        &self,
        change: impl FnOnce(&mut CardWriter) -> hubsearch_index::Result<()>,
    ) -> Result<()> {
        self.commit_change_if(|| Ok(()), change)
    }

    /// [`Engine::commit_change`] after `check` passes, both under the
    /// writer's lock, the reader reloaded before the lock is let go: a
    /// conditional write never reads a card an earlier write has replaced.
    fn commit_change_if(
        &self,
        check: impl FnOnce() -> Result<()>,
        change: impl FnOnce(&mut CardWriter) -> hubsearch_index::Result<()>,
    ) -> Result<()> {
        self.with_writer(|w| {
            check()?;
            change(w)?;
            w.commit()?;
            self.text_index().reload()?;
            Ok(())
        })?;
        self.refresh_hub()
    }

    /// Add or replace a card; returns whether it is new. Searchable on
    /// return (in cluster mode: on this replica, within the replicator's
    /// bounded wait; on the others once they apply the log).
    pub fn publish(&self, card: ModelCard) -> Result<bool> {
        self.publish_if(card, None)
    }

    /// [`Engine::publish`] only if the card meets `pre` (see
    /// [`Engine::replace_model_if`]).
    fn publish_if(&self, card: ModelCard, pre: Option<&IfMatch>) -> Result<bool> {
        if let Some(r) = self.replicator() {
            let existed = self.text_index().get(&card.id)?.is_some();
            match pre {
                None => r.card(&card, None)?,
                Some(_) => {
                    let version = r.card_version(&card.id)?;
                    self.check_precondition(&card.id, pre)?;
                    // Another write to the card came first: no longer the
                    // version the client named.
                    r.card(&card, Some(version)).map_err(|e| match e {
                        Error::ModelExists { id } => Error::PreconditionFailed { id },
                        e => e,
                    })?;
                }
            }
            return Ok(!existed);
        }
        self.publish_local_if(card, pre)
    }

    /// Add or replace a card in this replica's own index.
    /// All or nothing: the card's vector is made before anything is
    /// written, so a card that cannot be embedded (the model missing, say)
    /// is not stored and a retry can succeed.
    pub(crate) fn publish_local(&self, card: ModelCard) -> Result<bool> {
        self.publish_local_if(card, None)
    }

    fn publish_local_if(&self, card: ModelCard, pre: Option<&IfMatch>) -> Result<bool> {
        let existed = self.text_index().get(&card.id)?.is_some();
        let vector = match self.semantic() {
            Some(sem) => Some(sem.embed_card(&card)?),
            None => None,
        };
        self.commit_change_if(
            || self.check_precondition(&card.id, pre),
            |w| w.upsert(&card),
        )?;
        if let (Some(sem), Some(v)) = (self.semantic(), vector) {
            sem.insert_card(v)?;
        }
        Ok(!existed)
    }

    /// Delete a card (and tombstone its vector).
    pub fn delete_model(&self, id: &str) -> Result<()> {
        self.delete_model_if(id, None)
    }

    /// [`Engine::delete_model`] only if the card meets `pre` (see
    /// [`Engine::replace_model_if`]).
    pub fn delete_model_if(&self, id: &str, pre: Option<&IfMatch>) -> Result<()> {
        if let Some(r) = self.replicator() {
            if self.text_index().get(id)?.is_none() {
                return Err(Error::ModelNotFound { id: id.to_string() });
            }
            if pre.is_none() {
                return r.delete(id, None);
            }
            let version = r.card_version(id)?;
            self.check_precondition(id, pre)?;
            return r.delete(id, Some(version));
        }
        self.delete_local_if(id, pre)
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
        self.delete_local_if(id, None)
    }

    fn delete_local_if(&self, id: &str, pre: Option<&IfMatch>) -> Result<()> {
        if self.text_index().get(id)?.is_none() {
            return Err(Error::ModelNotFound { id: id.to_string() });
        }
        self.commit_change_if(
            || self.check_precondition(id, pre),
            |w| {
                w.delete(id);
                Ok(())
            },
        )?;
        if let Some(sem) = self.semantic() {
            sem.delete_card(ModelKey::of(id))?;
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
                    LogEvent::Delete { id } => sem.delete_card(ModelKey::of(id))?,
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
