//! [`Engine`]: one hub's indexes and the operations on them.
//!
//! On-disk layout of an index directory:
//! ```text
//! <dir>/text/        tantivy index (the cards themselves, stored as JSON)
//! <dir>/vectors/      card vectors (vectors.bin) and the HNSW graph (graph.flat)
//! <dir>/ledger.redb   exposure ledger: exposure, merit, paid calls (redb)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hubsearch_core::{Config, Mode, ModelCard};
use hubsearch_index::{Boosts, FacetCounts, TextIndex};
use hubsearch_rank::{Attention, Concentration};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::hub::HubPopularity;
use crate::import::{self, ImportOptions, ImportReport};
use crate::ledger::Ledger;
use crate::progress::ProgressFn;
use crate::semantic::Semantic;

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

/// A card and the ledger's books of it.
#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub card: ModelCard,
    pub exposure: crate::ledger::Tally,
    pub calls: crate::ledger::Earnings,
}

/// Memory budget of the long-lived writer a serving engine keeps.
const WRITER_MB: usize = 64;

/// A hub's search engine.
pub struct Engine {
    config: Config,
    dir: PathBuf,
    text: TextIndex,
    ledger: Ledger,
    hub: RwLock<Arc<HubPopularity>>,
    semantic: Option<Semantic>,
    /// The long-lived writer of a serving engine (created on first publish;
    /// used through `with_writer` only).
    writer: std::sync::Mutex<Option<hubsearch_index::CardWriter>>,
    /// Cluster mode: where writes go (docs/cluster.md).
    replicator: std::sync::OnceLock<Arc<dyn crate::replica::Replicator>>,
    /// Cluster mode: the log position the index has applied.
    index_position: crate::replica::IndexPosition,
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
        text.set_boosts(Boosts::from(&config.search));
        let ledger = match ledger {
            LedgerMode::Persistent => {
                let key = &config.index.transparency_key;
                let key = (!key.is_empty()).then(|| Path::new(key.as_str()));
                Ledger::open_with_key(&dir.join("ledger.redb"), key)?
            }
            LedgerMode::Ephemeral => Ledger::in_memory()?,
        };
        ledger.keep_page_logs(config.index.page_log_keep);
        let semantic = Semantic::open(&dir.join("vectors"), &config.embedding)?;
        let engine = Engine {
            config,
            dir: dir.clone(),
            text,
            ledger,
            hub: RwLock::new(Arc::new(HubPopularity::default())),
            semantic,
            writer: std::sync::Mutex::new(None),
            replicator: std::sync::OnceLock::new(),
            index_position: crate::replica::IndexPosition::open(dir.join("cluster-position")),
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
        match self.config.search.default_mode {
            Mode::Text => Mode::Text,
            _ if !has_vectors => Mode::Text,
            m => m,
        }
    }

    /// The exposure ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The configured attention model.
    pub fn attention(&self) -> Attention {
        Attention::new(self.config.ranking.attention, self.config.ranking.gamma)
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

    /// Import card files (see [`crate::source`] for the formats), then
    /// embed the new and changed cards.
    pub fn import(&self, paths: &[PathBuf], progress: ProgressFn<'_>) -> Result<ImportReport> {
        let opts = ImportOptions {
            commit_every: self.config.index.commit_every,
            writer_memory_mb: self.config.index.writer_memory_mb,
            threads: self.config.index.threads,
        };
        let mut report = import::import(&self.text, paths, &opts, progress)?;
        self.refresh_hub()?;
        if let Some(sem) = &self.semantic {
            report.vectors = Some(sem.sync(&self.text, progress)?);
        }
        Ok(report)
    }

    /// Build a fresh index at `config.index.dir` from `paths`: the new index
    /// is built beside the old one, then swapped in with renames, so readers
    /// never see a half-built index. Returns the import's report.
    pub fn rebuild(
        config: Config,
        paths: &[PathBuf],
        progress: ProgressFn<'_>,
    ) -> Result<ImportReport> {
        let target = config.index.dir.clone();
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        std::fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::Input {
                path: target.clone(),
                message: "the index path has no directory name".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let building = parent.join(format!(".{name}.building"));
        let old = parent.join(format!(".{name}.old"));
        let _ = std::fs::remove_dir_all(&building);
        let mut cfg = config;
        cfg.index.dir = building.clone();
        let report = Engine::open_or_create(cfg)?.import(paths, progress)?;
        let _ = std::fs::remove_dir_all(&old);
        if target.exists() {
            std::fs::rename(&target, &old).map_err(Error::io(&target))?;
        }
        std::fs::rename(&building, &target).map_err(Error::io(&target))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(report)
    }

    /// The card with this id.
    pub fn get(&self, id: &str) -> Result<ModelCard> {
        match self.text.get(id)? {
            Some((_, card)) => Ok(card),
            None => Err(Error::ModelNotFound { id: id.to_string() }),
        }
    }

    /// Send writes through `r` from now on (cluster mode). Once only.
    pub fn set_replicator(&self, r: Arc<dyn crate::replica::Replicator>) -> bool {
        self.replicator.set(r).is_ok()
    }

    /// The replicator, in cluster mode.
    pub fn replicator(&self) -> Option<&Arc<dyn crate::replica::Replicator>> {
        self.replicator.get()
    }

    /// Cluster mode: the log position the index has applied.
    pub(crate) fn index_position(&self) -> &crate::replica::IndexPosition {
        &self.index_position
    }

    /// Run `f` with the engine's long-lived card writer (made on first
    /// use), rolling back what it wrote if it fails.
    pub(crate) fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut hubsearch_index::CardWriter) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let w = match &mut *guard {
            Some(w) => w,
            slot @ None => slot.insert(self.text_index().writer(WRITER_MB, 1)?),
        };
        let out = f(w);
        if out.is_err() {
            let _ = w.rollback();
        }
        out
    }

    /// Whether a card with this id is indexed (a read error counts as no).
    pub fn has_model(&self, id: &str) -> bool {
        self.text.get(id).ok().flatten().is_some()
    }

    /// Cards in the index.
    pub fn num_models(&self) -> u64 {
        self.text.num_docs()
    }

    /// A card with what the ledger holds for it: its exposure and its paid
    /// calls.
    pub fn model_record(&self, id: &str) -> Result<ModelRecord> {
        let card = self.get(id)?;
        let key = hubsearch_core::card::key_of(&card.id);
        Ok(ModelRecord {
            exposure: self.ledger.tally_of(key, hubsearch_core::Group::Model),
            calls: self.ledger.earnings_of(key, hubsearch_core::Group::Model),
            card,
        })
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
            index_bytes: hubsearch_core::dir_size(&self.dir),
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

fn tantivy_all() -> hubsearch_index::AllQuery {
    hubsearch_index::AllQuery
}
