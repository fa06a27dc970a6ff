//! The semantic side of the engine: the embedder (loaded on first use), the
//! vector index beside the text index, a query-vector LRU cache, and keeping
//! card vectors in step with the cards.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use hubsearch_core::card::key_of;
use hubsearch_core::config::EmbeddingConfig;
use hubsearch_core::{ModelCard, ModelKey};
use hubsearch_index::TextIndex;
use hubsearch_vectors::embedder::{self, EmbedError, Embedder};
use hubsearch_vectors::journal::Change;
use hubsearch_vectors::{HnswParams, VectorIndex};
use lru::LruCache;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressFn};

/// Batches embedded between two insertions into the vector index.
const GROUP_BATCHES: usize = 512;

/// (card key, text hash, vector).
type Embedded = (ModelKey, u64, Vec<f32>);

/// What syncing vectors did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VectorReport {
    /// Cards embedded now.
    pub embedded: usize,
    /// Cards whose stored vector was still current (nothing to do).
    pub reused: usize,
    pub seconds: f64,
    pub cards_per_second: f64,
    /// Of `seconds`: reading the cards' texts from the store.
    pub read_seconds: f64,
    /// Of `seconds`: running the embedder (wall time of the workers).
    pub embed_seconds: f64,
    /// Of `seconds`: inserting into the HNSW graph and saving vectors + graph.
    pub graph_seconds: f64,
}

/// A card's vector with the keys it is stored under.
#[derive(Debug, Clone)]
pub struct CardVector {
    id_key: ModelKey,
    text_key: u64,
    vector: Vec<f32>,
}

/// Embedder, vectors, cache.
pub struct Semantic {
    config: EmbeddingConfig,
    embedder: OnceLock<std::result::Result<Arc<dyn Embedder>, Arc<EmbedError>>>,
    vectors: VectorIndex,
    cache: Mutex<LruCache<String, Arc<Vec<f32>>>>,
    dirty: std::sync::atomic::AtomicBool,
}

impl Semantic {
    /// Open the vectors in `dir` for the configured model; `None` when the
    /// model is `none`.
    pub fn open(dir: &Path, config: &EmbeddingConfig) -> Result<Option<Semantic>> {
        let Some(name) = embedder::vectors_name(config.model, config.runtime) else {
            return Ok(None);
        };
        let dim = 384;
        let params = HnswParams {
            m: config.hnsw_m,
            ef_construction: config.hnsw_ef_construction,
            ef_search: config.hnsw_ef_search,
            exact_below: config.exact_below,
        };
        let vectors = VectorIndex::open(dir, name, dim, params)?;
        Ok(Some(Semantic {
            config: config.clone(),
            embedder: OnceLock::new(),
            vectors,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(config.query_cache.max(1)).expect("nonzero"),
            )),
            dirty: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The embedder, loaded on first use.
    pub fn embedder(&self) -> Result<Arc<dyn Embedder>> {
        self.embedder
            .get_or_init(|| {
                let c = &self.config;
                embedder::load(c.model, c.runtime, &c.model_dir, &c.onnxruntime_lib)
                    .map_err(Arc::new)
            })
            .clone()
            .map_err(Error::EmbeddingUnavailable)
    }

    /// Note that vectors changed since the last save.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Save the vectors if they changed since the last save.
    pub fn save_if_dirty(&self) -> Result<()> {
        if self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.vectors.save()?;
        }
        Ok(())
    }

    /// The vector index.
    pub fn vectors(&self) -> &VectorIndex {
        &self.vectors
    }

    /// One text's vector, from the model.
    fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let mut vectors = self.embedder()?.embed(&[text])?;
        vectors
            .pop()
            .ok_or_else(|| EmbedError::Model("the embedder returned no vector".into()).into())
    }

    /// Embed one card (a publish) and store its vector (journalled; in
    /// the saved index from the next `save_if_dirty`).
    pub fn upsert_card(&self, card: &ModelCard) -> Result<()> {
        let v = self.embed_card(card)?;
        self.insert_card(v)
    }

    /// A card's vector, not yet stored: a publish embeds first, so that a
    /// card whose vector cannot be made is not written at all.
    pub fn embed_card(&self, card: &ModelCard) -> Result<CardVector> {
        let short = card.short_text();
        let vector = self.embed_one(&short)?;
        Ok(CardVector {
            id_key: ModelKey::of(&card.id),
            text_key: key_of(&short),
            vector,
        })
    }

    /// Store a vector [`Semantic::embed_card`] made.
    /// Journalled (synced to disk) before it returns: the vector survives a
    /// crash before the next save (hubsearch_vectors::journal).
    pub fn insert_card(&self, v: CardVector) -> Result<()> {
        self.vectors.apply_logged(vec![Change::Upsert {
            id_key: v.id_key,
            text_hash: v.text_key,
            vector: v.vector,
        }])?;
        self.mark_dirty();
        Ok(())
    }

    /// Drop a card's vector, journalled like [`Semantic::insert_card`].
    pub fn delete_card(&self, id_key: ModelKey) -> Result<()> {
        self.vectors.apply_logged(vec![Change::Delete { id_key }])?;
        self.mark_dirty();
        Ok(())
    }

    /// The query's vector, from the cache or the model.
    pub fn query_vector(&self, query: &str) -> Result<Arc<Vec<f32>>> {
        let key = query.trim().to_lowercase();
        if let Some(v) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(v.clone());
        }
        let v = Arc::new(self.embed_one(&key)?);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key, v.clone());
        Ok(v)
    }

    /// Embed every card whose short text changed (or that has no vector),
    /// drop vectors of cards that are gone, and save.
    pub fn sync(&self, text: &TextIndex, progress: ProgressFn<'_>) -> Result<VectorReport> {
        let start = Instant::now();
        let searcher = text.searcher();
        let mut todo: Vec<(ModelKey, u64, String)> = Vec::new();
        let mut keep = std::collections::HashSet::new();
        let mut reused = 0;
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            for doc in seg.doc_ids_alive() {
                let card =
                    text.card(&searcher, hubsearch_index::DocAddress::new(ord as u32, doc))?;
                let id_key = ModelKey::of(&card.id);
                let short = card.short_text();
                let hash = key_of(&short);
                keep.insert(id_key);
                if self.vectors.is_current(id_key, hash) {
                    reused += 1;
                } else {
                    todo.push((id_key, hash, short));
                }
            }
        }
        // Cards go into the HNSW graph group by group in an order unrelated
        // to their content (by key, a hash): inserting similar cards one
        // after another builds a worse graph (recall@10 0.958 -> 0.976 at
        // the same parameters, eval/bench/embedders.md). Within a group,
        // similar lengths are embedded together: less padding per batch.
        let group_len = GROUP_BATCHES * self.config.batch_size.max(1);
        todo.sort_by_key(|t| t.0);
        for group in todo.chunks_mut(group_len) {
            group.sort_by_key(|t| t.2.len());
        }
        let read_seconds = start.elapsed().as_secs_f64();
        let (mut embed_seconds, mut graph_seconds) = (0.0, 0.0);
        let embedder = if todo.is_empty() {
            None
        } else {
            Some(self.embedder()?)
        };
        let total = todo.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        // One worker per core, each embedding whole batches on one thread:
        // measured faster on 2 cores than one batch split across both
        // (65 vs 46 cards/s), as small matrices parallelise poorly.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let batches: Vec<&[(ModelKey, u64, String)]> =
            todo.chunks(self.config.batch_size.max(1)).collect();
        for group in batches.chunks(GROUP_BATCHES) {
            let t = Instant::now();
            let results: Vec<Result<Vec<Embedded>>> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..workers)
                    .map(|w| {
                        let embedder = embedder
                            .as_ref()
                            .expect("embedder loaded when there is work");
                        let done = &done;
                        sc.spawn(move || -> Result<Vec<Embedded>> {
                            let mut out = Vec::new();
                            for chunk in group.iter().skip(w).step_by(workers) {
                                let texts: Vec<&str> = chunk.iter().map(|t| t.2.as_str()).collect();
                                let vecs = embedder.embed(&texts)?;
                                out.extend(chunk.iter().zip(vecs).map(|(t, v)| (t.0, t.1, v)));
                                let before = done
                                    .fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                                progress(Progress::Embedded {
                                    done: before + chunk.len(),
                                    total,
                                });
                            }
                            Ok(out)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(Err(Error::WorkerPanicked)))
                    .collect()
            });
            let mut items = Vec::new();
            for r in results {
                items.extend(r?);
            }
            embed_seconds += t.elapsed().as_secs_f64();
            let t = Instant::now();
            self.vectors.upsert(items)?;
            graph_seconds += t.elapsed().as_secs_f64();
        }
        if total > 0 {
            progress(Progress::Done);
        }
        let t = Instant::now();
        self.vectors.retain(&keep);
        self.vectors.save()?;
        graph_seconds += t.elapsed().as_secs_f64();
        let seconds = start.elapsed().as_secs_f64();
        Ok(VectorReport {
            embedded: todo.len(),
            reused,
            seconds,
            cards_per_second: todo.len() as f64 / seconds.max(1e-9),
            read_seconds,
            embed_seconds,
            graph_seconds,
        })
    }
}
