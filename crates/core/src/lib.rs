//! # hubsearch-core
//!
//! The domain types every other crate speaks: [`ModelCard`] (what a hub
//! publishes), [`SearchRequest`]/[`Filter`] (what a user asks), [`Hit`] and
//! [`ScoreParts`] (what the engine answers, with the parts of every score so a
//! ranking is explainable), the layered [`Config`], and the error type.
//!
//! Key design decision: a card is parsed from *any* of the formats a hub
//! operator has (our JSONL, the 2022 Hugging Face scrape, TF Hub docs, the
//! Hugging Face Hub API's JSON, Markdown cards with YAML front matter) by one
//! tolerant-but-strict reader ([`record`]): unknown fields are ignored, a field
//! of the wrong type rejects the record with the field's name and what was
//! expected, so an importer can report every bad record precisely and never
//! drop a good one.

pub mod card;
pub mod choice;
pub mod config;
pub mod error;
pub mod ids;
pub mod lang;
pub mod query;
pub mod record;

pub use card::ModelCard;
pub use choice::{
    AttentionKind, EmbeddingModel, EmbeddingRuntime, Fusion, Group, Impact, ListingSort, Mode,
    PolicyKind, Rounds, WordScoring,
};
pub use config::Config;
pub use error::{Error, Result};
pub use ids::{BuilderKey, ModelId, ModelKey};
pub use query::{FacetFilter, FacetName, Filter, Hit, Range, ScoreParts, SearchRequest};

/// Seconds since the Unix epoch now (0 on a clock before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Bytes of all files under `dir` (0 if it cannot be read): disk use of an
/// index's parts.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
