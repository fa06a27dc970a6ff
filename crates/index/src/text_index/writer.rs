//! Writing cards: [`CardWriter`] (upsert by id, delete, atomic commits)
//! and [`TextIndex::writer`], which opens one.

use hubsearch_core::ModelCard;
use tantivy::{IndexWriter, Term};

use super::TextIndex;
use crate::error::{Error, Result};
use crate::schema::Fields;

impl TextIndex {
    /// A writer; only one may exist at a time across processes.
    pub fn writer(&self, memory_mb: usize, threads: usize) -> Result<CardWriter> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let budget = memory_mb.max(16 * threads) << 20;
        let writer = self
            .index
            .writer_with_num_threads(threads, budget)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(_, msg) => Error::Locked {
                    path: self.dir.clone(),
                    message: msg.unwrap_or_default(),
                },
                other => Error::Tantivy(other),
            })?;
        Ok(CardWriter {
            writer,
            fields: self.fields.clone(),
        })
    }
}

/// Writes cards; nothing is visible or durable until [`CardWriter::commit`].
pub struct CardWriter {
    writer: IndexWriter,
    fields: Fields,
}

impl CardWriter {
    /// Insert or replace the card with this id.
    pub fn upsert(&mut self, card: &ModelCard) -> Result<()> {
        self.writer
            .delete_term(Term::from_field_text(self.fields.id, &card.id));
        self.writer.add_document(self.fields.document(card))?;
        Ok(())
    }

    /// Delete the card with this id (if any).
    pub fn delete(&mut self, id: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.id, id));
    }

    /// Make every change so far durable and visible, atomically.
    pub fn commit(&mut self) -> Result<()> {
        self.writer.commit()?;
        Ok(())
    }

    /// Drop uncommitted changes.
    pub fn rollback(&mut self) -> Result<()> {
        self.writer.rollback()?;
        Ok(())
    }

    /// Wait for merges to finish and release the writer.
    pub fn finish(self) -> Result<()> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::text_index::testing::{card, index};

    #[test]
    fn upsert_replaces_and_hashes_track_content() {
        let idx = index(&[card("a/x", None, &[], "one")]);
        let mut w = idx.writer(32, 1).unwrap();
        let newer = card("a/x", None, &[], "two");
        w.upsert(&newer).unwrap();
        w.commit().unwrap();
        idx.reload().unwrap();
        assert_eq!(idx.num_docs(), 1);
        assert_eq!(idx.get("a/x").unwrap().unwrap().1.description, "two");
        assert_eq!(idx.content_hashes().unwrap()["a/x"], newer.content_hash());
        assert!(idx.get("a/y").unwrap().is_none());
    }
}
