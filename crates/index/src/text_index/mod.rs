//! [`TextIndex`]: the tantivy full-text index of cards, on disk.
//!
//! Writes go through [`CardWriter`] (upsert by id, atomic commits); reads
//! through a reader that reloads on commit, so a running server sees what an
//! import in another process committed without restarting.
//!
//! This module holds the index itself (opening, the searcher, small
//! accessors) and the types its answers come in. The work is split by job:
//! `query` builds the scored text query, `filter` turns a filter into
//! clauses, `search` runs a query for hits, counts and facet counts,
//! `lookup` reads cards and their facts by address, id or key, and
//! `writer` writes cards.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hubsearch_core::{BuilderKey, ModelKey};
use tantivy::directory::MmapDirectory;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, Index, IndexReader, ReloadPolicy, Searcher};

use crate::analyzer;
use crate::error::{Error, Result};
use crate::facets::OrdValues;
use crate::schema::{schema, Boosts, Fields};

mod filter;
mod lookup;
mod names;
mod query;
mod search;
#[cfg(test)]
mod testing;
mod writer;

pub use lookup::StoredCard;
pub use names::name_key;
pub use query::QueryWords;
pub use writer::CardWriter;

/// Facet name -> (value, count), most frequent first.
pub type FacetCounts = BTreeMap<String, Vec<(String, u64)>>;

/// One document found by BM25.
#[derive(Debug, Clone, Copy)]
pub struct TextHit {
    pub addr: DocAddress,
    pub score: f32,
}

/// Per-candidate facts ranking needs (see [`TextIndex::candidate_facts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateFacts {
    /// `key_of(id)`: tie-breaks and per-model ledger keys.
    pub id_key: ModelKey,
    /// `key_of(builder)`: per-builder ledger keys.
    pub builder_key: BuilderKey,
    pub downloads: u64,
    pub paid_calls: u64,
}

/// The answer of a text search.
#[derive(Debug, Clone, Default)]
pub struct TextResults {
    /// Best first.
    pub hits: Vec<TextHit>,
    /// Documents matching the query and filters.
    pub total: usize,
    /// Facet counts over the whole match set (when asked for).
    pub facets: FacetCounts,
}

/// Something read once per segment, kept while the segment is searched.
type SegmentCache<T> = std::sync::Mutex<HashMap<tantivy::index::SegmentId, Arc<T>>>;

/// The full-text index.
pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    id_analyzer: TextAnalyzer,
    text_analyzer: TextAnalyzer,
    boosts: Boosts,
    /// Whether top-k text searches skip cards that cannot enter the top k
    /// (exact; `maxscore.rs`).
    pruning: bool,
    /// Segment -> every id by doc id, with the hashes of their first words
    /// (see [`TextIndex::ids_of`], [`TextIndex::each_id`]).
    id_cache: SegmentCache<lookup::SegmentIds>,
    /// Segment -> its (id key, doc id) pairs, sorted, with a directory
    /// (see [`TextIndex::addresses_of`]).
    key_cache: SegmentCache<lookup::KeyTable>,
    /// Segment -> its candidate facts' columns (see
    /// [`TextIndex::candidate_facts`]).
    fact_cache: SegmentCache<lookup::FactColumns>,
    /// Segment -> its name keys, sorted (see [`TextIndex::completions`]).
    name_cache: SegmentCache<names::NameTable>,
    /// Segment -> its builders' name keys, sorted (see
    /// [`TextIndex::builders_starting`]).
    builder_cache: SegmentCache<names::KeyedValues>,
    /// (segment, facet field) -> the values of its facet ordinals.
    facet_cache: std::sync::Mutex<HashMap<(tantivy::index::SegmentId, String), OrdValues>>,
    /// Facet -> its counts over the whole hub, and the segments (with their
    /// deleted counts) they were counted on.
    #[allow(clippy::type_complexity)]
    hub_facets: std::sync::Mutex<
        HashMap<&'static str, (Vec<(tantivy::index::SegmentId, u32)>, Vec<(String, u64)>)>,
    >,
    /// Unknown words' corrections, across searches (`typos.rs`).
    pub(crate) corrections: crate::typos::CorrectionCache,
}

impl TextIndex {
    /// Open the index in `dir`, creating an empty one if there is none.
    pub fn open_or_create(dir: &Path) -> Result<TextIndex> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema();
        let mmap = MmapDirectory::open(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| match e {
            tantivy::TantivyError::SchemaError(_) => Error::OldSchema {
                path: dir.to_path_buf(),
            },
            other => Error::Tantivy(other),
        })?;
        Self::from_index(index, fields, dir)
    }

    /// Open an existing index; [`Error::NotFound`] when `dir` holds none.
    pub fn open(dir: &Path) -> Result<TextIndex> {
        if !dir.join("meta.json").exists() {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
            });
        }
        Self::open_or_create(dir)
    }

    /// An index in memory (tests, benchmarks).
    pub fn in_ram() -> Result<TextIndex> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields, Path::new(":memory:"))
    }

    fn from_index(index: Index, fields: Fields, dir: &Path) -> Result<TextIndex> {
        analyzer::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(TextIndex {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            id_analyzer: analyzer::id_analyzer(),
            text_analyzer: analyzer::text_analyzer(),
            boosts: Boosts::default(),
            pruning: true,
            id_cache: Default::default(),
            key_cache: Default::default(),
            fact_cache: Default::default(),
            name_cache: Default::default(),
            facet_cache: Default::default(),
            builder_cache: Default::default(),
            hub_facets: Default::default(),
            corrections: Default::default(),
        })
    }

    /// Set the field boosts used by later queries.
    pub fn set_boosts(&mut self, boosts: Boosts) {
        self.boosts = boosts;
    }

    /// Turn dynamic pruning of top-k text searches on (the default) or off
    /// (every match is scored; the same hits and scores, slower).
    pub fn set_pruning(&mut self, on: bool) {
        self.pruning = on;
    }

    /// Where the index lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema's fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// Pick up the latest commit now (instead of after the reload delay).
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    /// A consistent view of the last commit.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Number of (live) cards.
    pub fn num_docs(&self) -> u64 {
        self.searcher().num_docs()
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        hubsearch_core::dir_size(&self.dir)
    }
}
