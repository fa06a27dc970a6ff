//! # hubsearch-index
//!
//! The on-disk indexes of hubsearch and nothing else: the tantivy full-text
//! index ([`TextIndex`]) with its analyzers ([`analyzer`]) and schema
//! ([`schema`]). Only this crate sees tantivy.
//!
//! Key design decision: the tantivy index is the system of record for cards
//! (each document stores its card as JSON), so there is one thing to commit
//! atomically and one thing to back up; fast fields carry what ranking reads
//! per candidate (popularity, price, dates) without touching the doc store.

pub mod analyzer;
pub mod bm25f;
pub mod error;
pub mod facets;
pub mod maxscore;
pub mod plain;
pub mod schema;
pub mod text_index;
pub mod typos;

pub use error::{Error, Result};
pub use schema::Boosts;
pub use tantivy::query::AllQuery;
pub use tantivy::{DocAddress, Searcher};
pub use text_index::{
    name_key, CandidateFacts, CardWriter, FacetCounts, QueryWords, TextHit, TextIndex, TextResults,
};
