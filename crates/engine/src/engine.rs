//! [`Engine`]: one hub's indexes and the operations on them.
//!
//! On-disk layout of an index directory:
//! ```text
//! <dir>/text/      tantivy index (the cards themselves, stored as JSON)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hubsearch_core::{Config, Hit, ModelCard, ScoreParts, SearchRequest};
use hubsearch_index::{Boosts, FacetCounts, TextIndex};
use hubsearch_rank::Concentration;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::import::{self, ImportOptions, ImportReport};

/// The answer to a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResponse {
    pub query: String,
    /// Cards matching the query and filters.
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Facet counts over the whole match set.
    pub facets: FacetCounts,
    pub took_ms: f64,
}

/// Figures of a whole hub (`hubsearch stats`).
#[derive(Debug, Clone, Serialize)]
pub struct HubStats {
    pub models: u64,
    pub builders: usize,
    pub index_bytes: u64,
    /// Most frequent values of each facet.
    pub facets: FacetCounts,
    /// Concentration of downloads over models.
    pub downloads: Concentration,
    /// Concentration of downloads over builders.
    pub downloads_by_builder: Concentration,
    pub priced_models: usize,
}

/// A hub's search engine.
pub struct Engine {
    config: Config,
    dir: PathBuf,
    text: TextIndex,
}

impl Engine {
    /// Open the index at `config.index.dir`; an error if there is none.
    pub fn open(config: Config) -> Result<Engine> {
        let dir = config.index.dir.clone();
        let mut text = TextIndex::open(&dir.join("text")).map_err(|e| match e {
            hubsearch_index::Error::NotFound { .. } => {
                hubsearch_index::Error::NotFound { path: dir.clone() }
            }
            other => other,
        })?;
        text.set_boosts(boosts(&config));
        Ok(Engine { config, dir, text })
    }

    /// Open the index at `config.index.dir`, creating an empty one if needed.
    pub fn open_or_create(config: Config) -> Result<Engine> {
        let dir = config.index.dir.clone();
        let mut text = TextIndex::open_or_create(&dir.join("text"))?;
        text.set_boosts(boosts(&config));
        Ok(Engine { config, dir, text })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn text_index(&self) -> &TextIndex {
        &self.text
    }

    /// Import card files (see [`crate::source`] for the formats).
    pub fn import(&self, paths: &[PathBuf], progress: bool) -> Result<ImportReport> {
        let opts = ImportOptions {
            commit_every: self.config.index.commit_every,
            writer_memory_mb: self.config.index.writer_memory_mb,
            threads: self.config.index.threads,
            progress,
        };
        import::import(&self.text, paths, &opts)
    }

    /// Check a request against the configured limits.
    pub fn validate(&self, req: &SearchRequest) -> Result<()> {
        let s = &self.config.search;
        if req.query.chars().count() > s.max_query_chars {
            return Err(Error::bad_request(
                "query_too_long",
                format!("the query is longer than {} characters", s.max_query_chars),
            ));
        }
        if req.limit == 0 || req.limit > s.max_limit {
            return Err(Error::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {}", s.max_limit),
            ));
        }
        if req.offset + req.limit > s.candidates {
            return Err(Error::bad_request(
                "page_too_deep",
                format!(
                    "offset + limit must be at most {} (search.candidates)",
                    s.candidates
                ),
            ));
        }
        for (name, p) in [
            ("min_price", req.filter.min_price),
            ("max_price", req.filter.max_price),
        ] {
            if p.is_some_and(|p| !p.is_finite() || p < 0.0) {
                return Err(Error::bad_request(
                    "invalid_filter",
                    format!("{name} must be a number >= 0"),
                ));
            }
        }
        Ok(())
    }

    /// Search: retrieve candidates, normalise relevance, return the page.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        let start = Instant::now();
        self.validate(req)?;
        let searcher = self.text.searcher();
        // Retrieve the full candidate depth (not just the page) so ranking sees
        // the same candidates whatever page is asked for.
        let depth = self.config.search.candidates.max(req.offset + req.limit);
        let results = self
            .text
            .search(&searcher, &req.query, &req.filter, depth, req.facets)?;
        let max = results
            .hits
            .first()
            .map_or(1.0, |h| h.score.max(f32::MIN_POSITIVE));
        // Ties are broken by the id's key, so a page is the same whatever the segment layout.
        let addrs: Vec<_> = results.hits.iter().map(|h| h.addr).collect();
        let facts = self.text.candidate_facts(&searcher, &addrs)?;
        let mut cands: Vec<_> = results.hits.iter().zip(facts).collect();
        cands.sort_by(|a, b| {
            b.0.score
                .total_cmp(&a.0.score)
                .then_with(|| a.1.id_key.cmp(&b.1.id_key))
        });
        let mut hits = Vec::with_capacity(req.limit);
        for (i, (h, _)) in cands.iter().enumerate().skip(req.offset).take(req.limit) {
            let mut card = self.text.card(&searcher, h.addr)?;
            card.card_text.clear();
            let relevance = if req.query.trim().is_empty() {
                1.0
            } else {
                (h.score / max) as f64
            };
            hits.push(Hit {
                rank: i + 1,
                id: card.id.clone(),
                score: relevance,
                parts: ScoreParts {
                    bm25: Some(h.score),
                    bm25_rank: Some(i + 1),
                    relevance,
                    boost: 1.0,
                    final_score: relevance,
                    ..Default::default()
                },
                card,
            });
        }
        Ok(SearchResponse {
            query: req.query.clone(),
            total: results.total,
            hits,
            facets: results.facets,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The card with this id.
    pub fn get(&self, id: &str) -> Result<ModelCard> {
        match self.text.get(id)? {
            Some((_, card)) => Ok(card),
            None => Err(Error::ModelNotFound { id: id.to_string() }),
        }
    }

    /// Whole-hub figures.
    pub fn stats(&self) -> Result<HubStats> {
        let searcher = self.text.searcher();
        let mut facets = self.text.facet_counts(&searcher, &tantivy_all(), 20)?;
        let builders =
            self.text
                .facet_counts(&searcher, &tantivy_all(), searcher.num_docs() as usize + 1)?;
        let n_builders = builders.get("builder").map_or(0, Vec::len);
        let downloads: Vec<f64> = self
            .text
            .all_u64("downloads")?
            .into_iter()
            .map(|d| d as f64)
            .collect();
        let mut per_builder: BTreeMap<String, f64> = BTreeMap::new();
        let mut priced = 0;
        for seg_card in self.all_cards()? {
            *per_builder.entry(seg_card.builder.clone()).or_default() += seg_card.downloads as f64;
            if seg_card.price_usd.is_some_and(|p| p > 0.0) {
                priced += 1;
            }
        }
        facets.retain(|_, v| !v.is_empty());
        Ok(HubStats {
            models: searcher.num_docs(),
            builders: n_builders,
            index_bytes: hubsearch_index::dir_size(&self.dir),
            facets,
            downloads: Concentration::of(&downloads),
            downloads_by_builder: Concentration::of(&per_builder.into_values().collect::<Vec<_>>()),
            priced_models: priced,
        })
    }

    /// Every live card (reads the doc store: for stats and offline work, not
    /// for serving).
    pub fn all_cards(&self) -> Result<Vec<ModelCard>> {
        let searcher = self.text.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            for doc in seg.doc_ids_alive() {
                out.push(
                    self.text
                        .card(&searcher, hubsearch_index::DocAddress::new(ord as u32, doc))?,
                );
            }
        }
        Ok(out)
    }
}

fn boosts(c: &Config) -> Boosts {
    let s = &c.search;
    Boosts {
        id: s.boost_id,
        task: s.boost_task,
        languages: s.boost_languages,
        tags: s.boost_tags,
        datasets: s.boost_datasets,
        architectures: s.boost_architectures,
        description: s.boost_description,
        card_text: s.boost_card_text,
    }
}

fn tantivy_all() -> hubsearch_index::AllQuery {
    hubsearch_index::AllQuery
}
