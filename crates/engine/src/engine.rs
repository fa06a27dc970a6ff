//! [`Engine`]: one hub's indexes and the operations on them.
//!
//! On-disk layout of an index directory:
//! ```text
//! <dir>/text/        tantivy index (the cards themselves, stored as JSON)
//! <dir>/vectors/      card vectors (vectors.bin) and the HNSW graph (hnsw/)
//! <dir>/ledger.redb   exposure ledger: exposure, merit, paid calls (redb)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::{Arc, RwLock};

use hubsearch_core::{Config, Hit, Mode, ModelCard, SearchRequest};
use hubsearch_index::{Boosts, CandidateFacts, FacetCounts, TextIndex};
use hubsearch_rank::{
    page_delta, rank, Attention, Candidate, Concentration, Policy, Ranked, POLICY_NAMES,
};

use crate::hub::HubPopularity;
use crate::ledger::{Impression, Ledger, PageRecord};
use crate::semantic::Semantic;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::import::{self, ImportOptions, ImportReport};

/// The answer to a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResponse {
    pub query: String,
    /// The retrieval mode used.
    pub mode: Mode,
    /// The policy that ordered the page.
    pub policy: String,
    /// Cards matching the query and filters (exact when `total_exact`; else
    /// the number of candidates retrieved, a lower bound).
    pub total: usize,
    pub total_exact: bool,
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
    ledger: Ledger,
    hub: RwLock<Arc<HubPopularity>>,
    semantic: Option<Semantic>,
    /// The long-lived writer of a serving engine (created on first publish).
    pub(crate) writer: std::sync::Mutex<Option<hubsearch_index::CardWriter>>,
}

/// Where the exposure ledger lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerMode {
    /// `<index dir>/ledger.redb`: what a serving hub uses.
    Persistent,
    /// In memory, starting empty: replays, simulations, one-off CLI searches.
    Ephemeral,
}

impl Engine {
    /// Open the index at `config.index.dir` with its persistent ledger; an
    /// error if there is no index.
    pub fn open(config: Config) -> Result<Engine> {
        Self::open_with(config, LedgerMode::Persistent, false)
    }

    /// Open the index at `config.index.dir`, creating an empty one if needed
    /// (with an in-memory ledger: importing records no exposure).
    pub fn open_or_create(config: Config) -> Result<Engine> {
        Self::open_with(config, LedgerMode::Ephemeral, true)
    }

    /// Open with a chosen ledger; `create` makes an empty index if missing.
    pub fn open_with(config: Config, ledger: LedgerMode, create: bool) -> Result<Engine> {
        let dir = config.index.dir.clone();
        let text_dir = dir.join("text");
        let mut text = if create {
            TextIndex::open_or_create(&text_dir)?
        } else {
            TextIndex::open(&text_dir).map_err(|e| match e {
                hubsearch_index::Error::NotFound { .. } => {
                    hubsearch_index::Error::NotFound { path: dir.clone() }
                }
                other => other,
            })?
        };
        text.set_boosts(boosts(&config));
        let ledger = match ledger {
            LedgerMode::Persistent => Ledger::open(&dir.join("ledger.redb")),
            LedgerMode::Ephemeral => Ledger::in_memory(),
        }
        .map_err(|e| {
            Error::Internal(format!(
                "opening the exposure ledger in {}: {e}",
                dir.display()
            ))
        })?;
        let semantic = Semantic::open(&dir.join("vectors"), &config.embedding)?;
        let engine = Engine {
            config,
            dir,
            text,
            ledger,
            hub: RwLock::new(Arc::new(HubPopularity::default())),
            semantic,
            writer: std::sync::Mutex::new(None),
        };
        engine.refresh_hub()?;
        Ok(engine)
    }

    /// Recompute hub-wide popularity (after an import or a publish).
    pub fn refresh_hub(&self) -> Result<()> {
        let facts = self.text.all_facts()?;
        *self.hub.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(HubPopularity::from_facts(&facts));
        Ok(())
    }

    /// The hub's popularity facts as of the last refresh.
    pub fn hub(&self) -> Arc<HubPopularity> {
        self.hub.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The semantic side (embedder, vectors), unless embeddings are off.
    pub fn semantic(&self) -> Option<&Semantic> {
        self.semantic.as_ref()
    }

    /// The mode for requests that name none: the configured one, or text
    /// when embeddings are off or no card has a vector yet.
    pub fn default_mode(&self) -> Mode {
        let has_vectors = self
            .semantic
            .as_ref()
            .is_some_and(|s| s.vectors().live() > 0);
        match self.config.search.default_mode.parse() {
            Ok(Mode::Text) | Err(_) => Mode::Text,
            Ok(_) if !has_vectors => Mode::Text,
            Ok(m) => m,
        }
    }

    /// The exposure ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The policy a request names, or the configured default.
    pub fn policy(&self, name: Option<&str>) -> Result<Policy> {
        let r = &self.config.ranking;
        let name = name.unwrap_or(&r.policy);
        Policy::from_name(name, r.alpha, r.beta, r.lambda, r.temperature).ok_or_else(|| {
            Error::bad_request(
                "unknown_policy",
                format!(
                    "unknown policy {name:?} (expected one of {})",
                    POLICY_NAMES.join(", ")
                ),
            )
        })
    }

    /// The configured attention model.
    pub fn attention(&self) -> Attention {
        Attention::from_name(&self.config.ranking.attention, self.config.ranking.gamma)
            .unwrap_or(Attention::Log)
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
        let mut report = import::import(&self.text, paths, &opts)?;
        self.refresh_hub()?;
        if let Some(sem) = &self.semantic {
            report.vectors = Some(sem.sync(&self.text, progress)?);
        }
        Ok(report)
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

    /// Search: retrieve candidates, normalise relevance to [0, 1], order them
    /// by the policy, return the page and record its exposure in the ledger.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        let start = Instant::now();
        self.validate(req)?;
        let policy = self.policy(req.policy.as_deref())?;
        let searcher = self.text.searcher();
        // Retrieve the full candidate depth (not just the page) so ranking sees
        // the same candidates whatever page is asked for.
        let depth = self.config.search.candidates.max(req.offset + req.limit);
        let r = self.retrieve(&searcher, req, depth)?;
        let hub = self.hub();
        let keys: Vec<u64> = r.facts.iter().map(|f| f.id_key).collect();
        let paid = self.ledger.calls_of(&keys);
        let by_builder = self.config.ranking.group == "builder";
        let cands: Vec<Candidate> = r
            .facts
            .iter()
            .zip(&r.relevance)
            .zip(&paid)
            .map(|((f, rel), paid)| Candidate {
                relevance: *rel,
                calls: (f.downloads + f.paid_calls + paid) as f64,
                quantile: hub.quantile(f.downloads),
                group: if by_builder { f.builder_key } else { f.id_key },
                key: f.id_key,
            })
            .collect();
        let seed = req.seed.unwrap_or(0);
        let order = self.ledger.with_books(|models, builders| {
            rank(
                &policy,
                &cands,
                if by_builder { builders } else { models },
                seed,
            )
        });
        let page: Vec<&Ranked> = order.iter().skip(req.offset).take(req.limit).collect();
        let mut hits = Vec::with_capacity(page.len());
        for (i, ranked) in page.iter().enumerate() {
            let c = ranked.index;
            let mut card = self.text.card(&searcher, r.addrs[c])?;
            card.card_text.clear();
            let mut parts = ranked.parts.clone();
            parts.bm25 = r.bm25[c].map(|b| b.0);
            parts.bm25_rank = r.bm25[c].map(|b| b.1);
            parts.vector_sim = r.sims.get(c).copied().flatten();
            parts.vector_rank = r.vector[c].map(|v| v.1);
            hits.push(Hit {
                rank: req.offset + i + 1,
                id: card.id.clone(),
                score: parts.final_score,
                parts,
                card,
            });
        }
        if req.record {
            let seen = req.exposed.unwrap_or(page.len()).min(page.len());
            self.record_page(
                &cands,
                &r.facts,
                &page[..seen],
                req.offset + 1,
                &hits[..seen],
            )?;
        }
        Ok(SearchResponse {
            query: req.query.clone(),
            mode: if req.query.trim().is_empty() {
                Mode::Text
            } else {
                req.mode
            },
            policy: policy.name().to_string(),
            total: r.total,
            total_exact: req.facets && req.mode == Mode::Text,
            hits,
            facets: r.facets,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Record a listing page (fair browsing) in the ledger.
    pub(crate) fn record_listing(
        &self,
        cands: &[Candidate],
        facts: &[CandidateFacts],
        shown: &[usize],
        first_rank: usize,
        searcher: &hubsearch_index::Searcher,
        addrs: &[hubsearch_index::DocAddress],
    ) -> Result<()> {
        let ranked: Vec<Ranked> = shown
            .iter()
            .map(|&index| Ranked {
                index,
                parts: Default::default(),
            })
            .collect();
        let page: Vec<&Ranked> = ranked.iter().collect();
        let mut hits = Vec::with_capacity(shown.len());
        for &i in shown {
            let card = self.text.card(searcher, addrs[i])?;
            hits.push(Hit {
                rank: 0,
                id: card.id.clone(),
                score: 0.0,
                parts: Default::default(),
                card,
            });
        }
        self.record_page(cands, facts, &page, first_rank, &hits)
    }

    fn record_page(
        &self,
        cands: &[Candidate],
        facts: &[CandidateFacts],
        page: &[&Ranked],
        first_rank: usize,
        hits: &[Hit],
    ) -> Result<()> {
        let attention = self.attention();
        let shown: Vec<usize> = page.iter().map(|r| r.index).collect();
        let as_models: Vec<Candidate> = cands
            .iter()
            .zip(facts)
            .map(|(c, f)| Candidate {
                group: f.id_key,
                ..*c
            })
            .collect();
        let as_builders: Vec<Candidate> = cands
            .iter()
            .zip(facts)
            .map(|(c, f)| Candidate {
                group: f.builder_key,
                ..*c
            })
            .collect();
        let model_delta = page_delta(&as_models, &shown, first_rank, &attention);
        let builder_delta = page_delta(&as_builders, &shown, first_rank, &attention);
        let impressions = shown
            .iter()
            .enumerate()
            .map(|(i, &c)| Impression {
                model: facts[c].id_key,
                builder: facts[c].builder_key,
                rank: first_rank + i,
                exposure: model_delta.get(&facts[c].id_key).map_or(0.0, |d| d.0),
            })
            .collect();
        let mut names = Vec::with_capacity(hits.len() * 2);
        for (h, &c) in hits.iter().zip(&shown) {
            names.push((facts[c].id_key, h.card.id.clone()));
            names.push((facts[c].builder_key, h.card.builder.clone()));
        }
        self.ledger
            .record_page(PageRecord {
                impressions,
                model_delta,
                builder_delta,
                names,
            })
            .map_err(|e| Error::Internal(e.to_string()))
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
