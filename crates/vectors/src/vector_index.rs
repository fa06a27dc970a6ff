//! [`VectorIndex`]: card vectors and an HNSW graph over them (built by
//! `build.rs`, searched by `flat.rs`; dot product on unit vectors =
//! cosine), persisted beside the text index. hnsw_rs is kept to read the
//! graph of an index saved before `build.rs` (its dump in `hnsw/`).
//!
//! Rows are append-only: a changed card gets a new row and its old row a
//! tombstone; deletes are tombstones too, filtered out at query time. Each
//! row keeps the hash of the text it was embedded from, so re-indexing an
//! unchanged card costs nothing.
//!
//! Parameters and their trade-offs ([`HnswParams`]):
//! - `m` (neighbours per node, 16): recall and memory grow with it
//!   (~`2 * m * 4` bytes of graph per vector on layer 0), build time too.
//! - `ef_construction` (200): candidates explored while inserting; higher =
//!   a better graph, slower builds (docs/embeddings.md has recall against
//!   build time).
//! - `ef_search` (200): candidates explored per query; the recall/latency
//!   knob at query time.
//! - `exact_below` (5,000): below this many live rows (or allowed rows under
//!   a filter) an exact scan is both faster and exact.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use hnsw_rs::prelude::{Distance, Hnsw, HnswIo};
use hubsearch_core::ModelKey;

use crate::embedder::dots;
use crate::huge::HugeVec;
use crate::simd::fast_dot;

const MAGIC: &[u8; 4] = b"HSV1";

/// HNSW and exact-search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
    pub exact_below: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 200,
            exact_below: 5_000,
        }
    }
}

/// Errors of the vector index.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("vectors in {path} were made by {found:?}, not {want:?}; rebuild the index")]
    WrongEmbedder {
        path: PathBuf,
        found: String,
        want: String,
    },
    #[error("vector of dimension {got}, expected {expected}")]
    DimensionMismatch { expected: usize, got: usize },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> VectorError {
    VectorError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The card keys a filtered search may return (`None`: any).
pub type Allowed<'a> = Option<&'a std::collections::HashSet<ModelKey>>;

/// One vector per row, in insertion order, `dim` floats each in one array:
/// the one copy of the vectors a serving index holds (the flat graph holds
/// rows, not vectors; a graph being built by hnsw_rs has its own copy).
#[derive(Default)]
struct Rows {
    /// Every row's vector, `dim` each, on huge pages where the OS gives
    /// them (huge.rs).
    vecs: HugeVec<f32>,
    id_keys: Vec<ModelKey>,
    text_hashes: Vec<u64>,
    alive: Vec<bool>,
    by_id: HashMap<ModelKey, usize>,
}

impl Rows {
    fn len(&self) -> usize {
        self.id_keys.len()
    }

    fn vector(&self, row: usize, dim: usize) -> &[f32] {
        &self.vecs[row * dim..(row + 1) * dim]
    }

    /// These rows as hits, each with its exact cosine to `query`.
    /// (An exact scan passes every row: they go in chunks, so the slices
    /// handed to `dots` stay few.)
    fn hits(&self, query: &[f32], rows: &[usize], dim: usize) -> Vec<VectorHit> {
        let mut out = Vec::with_capacity(rows.len());
        let mut vectors: Vec<&[f32]> = Vec::with_capacity(rows.len().min(HIT_CHUNK));
        for chunk in rows.chunks(HIT_CHUNK) {
            vectors.clear();
            vectors.extend(chunk.iter().map(|&row| self.vector(row, dim)));
            out.extend(
                chunk
                    .iter()
                    .zip(dots(query, &vectors))
                    .map(|(&row, similarity)| VectorHit {
                        id_key: self.id_keys[row],
                        similarity,
                    }),
            );
        }
        out
    }
}

/// Rows whose exact cosines [`Rows::hits`] computes at a time.
const HIT_CHUNK: usize = 256;

/// What a row of `vectors.bin` holds besides its vector.
#[derive(Default)]
struct RowMeta {
    id_keys: Vec<ModelKey>,
    text_hashes: Vec<u64>,
    alive: Vec<bool>,
}

/// The graph over rows `0..covered()`; the rows after it (the tail) are
/// searched exactly until the graph is extended.
#[derive(Default)]
struct GraphState {
    /// The graph being built or extended (build.rs), present from the
    /// first extension on, and the rows it holds (rows are inserted in
    /// order).
    builder: Option<(GraphBuilder, usize)>,
    /// The graph searches read (see flat.rs).
    flat: Option<FlatGraph>,
}

impl GraphState {
    fn flat_rows(&self) -> usize {
        self.flat.as_ref().map_or(0, FlatGraph::rows)
    }

    fn builder_rows(&self) -> usize {
        self.builder.as_ref().map_or(0, |(_, n)| *n)
    }

    /// The rows searches find through the graph (the flat copy); rows
    /// after them are searched exactly.
    fn covered(&self) -> usize {
        self.flat_rows()
    }
}

/// `1 - a.b` on unit vectors (cosine distance), clamped at 0: rounding can
/// make the dot product of a vector with itself exceed 1, and hnsw_rs's own
/// `DistDot` asserts on that.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    /// By the SIMD dot product (`simd.rs`): building and walking the graph
    /// is mostly this.
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - fast_dot(a, b)).max(0.0)
    }
}

type Graph = Hnsw<'static, f32, UnitDot>;

/// The thread pool graph insertion runs on: one thread per core.
fn insert_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("hnsw-insert-{i}"))
            .build()
            .expect("a thread pool for HNSW insertion")
    })
}

/// Card vectors with an HNSW graph.
pub struct VectorIndex {
    pub(crate) dir: PathBuf,
    dim: usize,
    embedder: String,
    params: HnswParams,
    rows: RwLock<Rows>,
    graph: RwLock<GraphState>,
    /// Held while the graph is extended, copied flat or saved: one at a
    /// time (lock order: journal, extending, rows, graph).
    extending: std::sync::Mutex<()>,
    /// Published vectors since the last save (crate::journal); held while
    /// saving so no change slips between a save and the journal's reset.
    pub(crate) journal: std::sync::Mutex<Option<crate::journal::Journal>>,
}

/// One vector hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    /// The model's key (`key_of(id)`).
    pub id_key: ModelKey,
    pub similarity: f32,
}

/// Published rows searched exactly before the graph is extended by them
/// (a scan of this many vectors costs about what a graph search does).
const TAIL_MAX: usize = 1024;

impl VectorIndex {
    /// Open the vectors in `dir` (or start empty), made by `embedder` with
    /// vectors of `dim` dimensions; reload the saved graph if it is current
    /// (the flat copy, else hnsw_rs's dump of an index saved before flat
    /// graphs, copied flat and written beside it).
    pub fn open(
        dir: &Path,
        embedder: &str,
        dim: usize,
        params: HnswParams,
    ) -> Result<VectorIndex, VectorError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let idx = VectorIndex {
            dir: dir.to_path_buf(),
            dim,
            embedder: embedder.to_string(),
            params,
            rows: RwLock::new(Rows::default()),
            graph: RwLock::new(GraphState::default()),
            extending: std::sync::Mutex::new(()),
            journal: std::sync::Mutex::new(None),
        };
        let (rows, graph_rows) = idx.read_vectors_file()?.unwrap_or_default();
        let mut state = GraphState::default();
        if graph_rows > 0 && graph_rows <= rows.len() {
            match FlatGraph::read(&idx.flat_path()) {
                Ok(flat) if flat.rows() == graph_rows => state.flat = Some(flat),
                Ok(_) => {}
                Err(e) if idx.flat_path().exists() => {
                    tracing::warn!("cannot read the flat graph: {e}; trying hnsw_rs's")
                }
                Err(_) => {}
            }
            if state.flat.is_none() {
                if let Some(g) = idx.load_graph(graph_rows) {
                    match FlatGraph::of_hnsw(&g, |r| rows.vector(r, dim)) {
                        Ok(flat) => {
                            if let Err(e) = flat.write(&idx.flat_path()) {
                                tracing::warn!("cannot write the flat graph: {e}");
                            }
                            state.flat = Some(flat);
                        }
                        Err(e) => tracing::warn!(
                            "cannot copy the HNSW graph flat: {e}; it is built again at the next extension"
                        ),
                    }
                }
            }
        }
        *idx.rows.write().expect("rows") = rows;
        *idx.graph.write().expect("graph") = state;
        idx.settle_tail();
        idx.replay_journal()?;
        Ok(idx)
    }

    fn flat_path(&self) -> PathBuf {
        self.dir.join("graph.flat")
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live vectors.
    pub fn live(&self) -> usize {
        self.rows
            .read()
            .expect("rows")
            .alive
            .iter()
            .filter(|a| **a)
            .count()
    }

    /// All rows (live and tombstoned).
    pub fn rows(&self) -> usize {
        self.rows.read().expect("rows").len()
    }

    /// Whether `id_key` has a live vector made from text with `text_hash`.
    pub fn is_current(&self, id_key: ModelKey, text_hash: u64) -> bool {
        let r = self.rows.read().expect("rows");
        r.by_id
            .get(&id_key)
            .is_some_and(|&row| r.alive[row] && r.text_hashes[row] == text_hash)
    }

    /// The live vector of a card.
    pub fn vector_of(&self, id_key: ModelKey) -> Option<Vec<f32>> {
        let r = self.rows.read().expect("rows");
        let &row = r.by_id.get(&id_key)?;
        r.alive[row].then(|| r.vector(row, self.dim).to_vec())
    }

    /// Add or replace vectors (`(id_key, text_hash, vector)`), then extend the
    /// graph with the new rows (a bulk load: the graph takes them now). The
    /// copy searches read is renewed once the rows past it are as many as
    /// it holds (and at least [`TAIL_MAX`]): a load of many groups copies
    /// the graph a logarithmic number of times, not once a group (at 1M
    /// cards in groups of 4,096 that was 244 copies); searches meanwhile
    /// scan the rows past it exactly, and a save copies it whole.
    /// (Publishes go through the journal: `apply_logged`.)
    pub fn upsert(&self, items: Vec<(ModelKey, u64, Vec<f32>)>) -> Result<(), VectorError> {
        self.add_rows(items)?;
        self.extend_graph(1);
        let flat_rows = self.graph.read().expect("graph").flat_rows();
        self.flatten(TAIL_MAX.max(flat_rows));
        Ok(())
    }

    /// Let the graph take the tail (rows added by [`Self::add_rows`],
    /// searched exactly meanwhile) once [`TAIL_MAX`] have gathered.
    pub(crate) fn settle_tail(&self) {
        if self.extend_graph(TAIL_MAX) {
            self.flatten(1);
        }
    }

    /// Add or replace vectors as rows, not yet in the graph.
    pub(crate) fn add_rows(
        &self,
        items: Vec<(ModelKey, u64, Vec<f32>)>,
    ) -> Result<(), VectorError> {
        let mut r = self.rows.write().expect("rows");
        for (id_key, text_hash, v) in items {
            if v.len() != self.dim {
                return Err(VectorError::DimensionMismatch {
                    expected: self.dim,
                    got: v.len(),
                });
            }
            if let Some(&old) = r.by_id.get(&id_key) {
                r.alive[old] = false;
            }
            let row = r.len();
            r.vecs.extend_from_slice(&v);
            r.id_keys.push(id_key);
            r.text_hashes.push(text_hash);
            r.alive.push(true);
            r.by_id.insert(id_key, row);
        }
        Ok(())
    }

    /// Tombstone a card's vector.
    pub fn delete(&self, id_key: ModelKey) {
        let mut r = self.rows.write().expect("rows");
        if let Some(row) = r.by_id.remove(&id_key) {
            r.alive[row] = false;
        }
    }

    /// Tombstone every vector whose card is not in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<ModelKey>) {
        let mut r = self.rows.write().expect("rows");
        let gone: Vec<ModelKey> = r
            .by_id
            .keys()
            .filter(|k| !keep.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(row) = r.by_id.remove(&k) {
                r.alive[row] = false;
            }
        }
    }

    /// Insert the rows the graph lacks when there are at least `min_tail`
    /// of them (or no graph at all), continuing the flat graph (its lists
    /// taken up by a builder the first time this process extends it).
    /// Whether it grew. Searches go on meanwhile (on the flat graph, the
    /// rows being inserted in the exact tail); rows cannot be added until
    /// it is done.
    fn extend_graph(&self, min_tail: usize) -> bool {
        let _one = self.extending.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.rows.read().expect("rows");
        let n = r.len();
        let vector = |row: usize| r.vector(row, self.dim);
        let need_builder = {
            let g = self.graph.read().expect("graph");
            let done = g.builder_rows().max(g.flat_rows());
            if n == done || (n - done < min_tail.max(1) && done > 0) {
                return false;
            }
            g.builder.is_none() || g.builder_rows() < g.flat_rows()
        };
        if need_builder {
            // Taken up without holding the graph: searches go on.
            let taken = self.graph.read().expect("graph").flat.as_ref().map(|flat| {
                let b = GraphBuilder::of_flat(
                    flat,
                    self.params.m,
                    self.params.ef_construction,
                    &vector,
                );
                (b, flat.rows())
            });
            let fresh = || {
                (
                    GraphBuilder::new(self.params.m, self.params.ef_construction),
                    0,
                )
            };
            self.graph.write().expect("graph").builder = Some(taken.unwrap_or_else(fresh));
        }
        let done = {
            let mut g = self.graph.write().expect("graph");
            let (b, done) = g.builder.as_mut().expect("a builder");
            b.grow(n, &vector);
            *done
        };
        {
            use rayon::prelude::*;
            let g = self.graph.read().expect("graph");
            let (b, _) = g.builder.as_ref().expect("a builder");
            // The binary sets the global pool to one thread (candle's inner
            // parallelism only hurts the embedder), so the graph gets a
            // pool of its own, one thread per core.
            insert_pool().install(|| (done..n).into_par_iter().for_each(|row| b.insert(row)));
        }
        if let Some((_, done)) = self.graph.write().expect("graph").builder.as_mut() {
            *done = n;
        }
        true
    }

    /// Copy the builder's graph flat when it holds at least `min_new` rows
    /// more than the flat one (the copy is made with the graph shared;
    /// searches go on).
    fn flatten(&self, min_new: usize) {
        let _one = self.extending.lock().unwrap_or_else(|e| e.into_inner());
        let copy = {
            let g = self.graph.read().expect("graph");
            let Some((b, rows)) = g
                .builder
                .as_ref()
                .filter(|(_, n)| *n >= g.flat_rows() + min_new.max(1))
            else {
                return;
            };
            (b.to_flat(*rows), *rows)
        };
        match copy {
            (Ok(flat), rows) if flat.rows() == rows => {
                self.graph.write().expect("graph").flat = Some(flat)
            }
            // Searches go on through the older flat graph and the tail.
            (Ok(flat), rows) => tracing::warn!(
                "the HNSW graph copied flat holds {} rows, not {rows}",
                flat.rows()
            ),
            (Err(e), _) => tracing::warn!("cannot copy the HNSW graph flat: {e}"),
        }
    }

    /// The `k` most similar live vectors to `query`. `allowed`, when given,
    /// restricts the search to these card keys (filters): the result never
    /// holds a card outside it.
    pub fn search(&self, query: &[f32], k: usize, allowed: Allowed<'_>) -> Vec<VectorHit> {
        let r = self.rows.read().expect("rows");
        let live = r.by_id.len();
        let small_filter = allowed.is_some_and(|a| a.len() < self.params.exact_below);
        if live < self.params.exact_below || small_filter {
            return self.exact_locked(&r, query, k, allowed);
        }
        let g = self.graph.read().expect("graph");
        let covered = g.covered();
        if covered == 0 {
            return self.exact_locked(&r, query, k, allowed);
        }
        let ok = |row: usize| -> bool {
            r.alive[row] && allowed.is_none_or(|a| a.contains(&r.id_keys[row]))
        };
        let ef = self.params.ef_search.max(k);
        // hnsw_rs's filtered search keeps a second candidate list; without
        // tombstones or an allowed set there is nothing to filter.
        let unfiltered = allowed.is_none() && live == r.len();
        let filter: Option<&dyn Fn(usize) -> bool> = (!unfiltered).then_some(&ok);
        let found: Vec<usize> = match &g.flat {
            Some(flat) => flat
                .search(&|row| r.vector(row, self.dim), query, k, ef, filter)
                .into_iter()
                .map(|(row, _)| row)
                .collect(),
            None => Vec::new(),
        };
        // The graph's distances are SIMD dot products; a hit carries the
        // exact cosine (as `similarities` and exact scans give it), and
        // the hits are in its order. Rows past the graph (published since
        // it was extended) are scanned exactly and merged.
        let rows: Vec<usize> = found
            .into_iter()
            .chain(covered..r.len())
            .filter(|&row| ok(row))
            .collect();
        let mut hits = r.hits(query, &rows, self.dim);
        hits.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.id_key.cmp(&b.id_key))
        });
        hits.truncate(k);
        hits
    }

    /// The cosine similarity of `query` to each of these cards' vectors
    /// (`None` where a card has no live vector): exact, one dot product each.
    pub fn similarities(&self, query: &[f32], id_keys: &[ModelKey]) -> Vec<Option<f32>> {
        let r = self.rows.read().expect("rows");
        let rows: Vec<Option<usize>> = id_keys
            .iter()
            .map(|k| r.by_id.get(k).copied().filter(|&row| r.alive[row]))
            .collect();
        let vectors: Vec<&[f32]> = rows
            .iter()
            .flatten()
            .map(|&row| r.vector(row, self.dim))
            .collect();
        let mut sims = dots(query, &vectors).into_iter();
        rows.iter()
            .map(|row| row.and_then(|_| sims.next()))
            .collect()
    }

    /// Exact top-k by a full scan (the reference for recall).
    pub fn exact(&self, query: &[f32], k: usize, allowed: Allowed<'_>) -> Vec<VectorHit> {
        let r = self.rows.read().expect("rows");
        self.exact_locked(&r, query, k, allowed)
    }

    fn exact_locked(
        &self,
        r: &Rows,
        query: &[f32],
        k: usize,
        allowed: Allowed<'_>,
    ) -> Vec<VectorHit> {
        let rows: Vec<usize> = match allowed {
            Some(a) => a
                .iter()
                .filter_map(|key| r.by_id.get(key).copied())
                .collect(),
            None => r.by_id.values().copied().collect(),
        };
        let rows: Vec<usize> = rows.into_iter().filter(|&row| r.alive[row]).collect();
        let mut hits = r.hits(query, &rows, self.dim);
        let k = k.min(hits.len());
        if k == 0 {
            return Vec::new();
        }
        hits.select_nth_unstable_by(k - 1, |a, b| b.similarity.total_cmp(&a.similarity));
        hits.truncate(k);
        hits.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.id_key.cmp(&b.id_key))
        });
        hits
    }

    /// Write vectors and graph to disk (atomically: temp files, then
    /// renames): the flat graph (what an extension continues), then
    /// `vectors.bin`, which names the rows it holds. The builder's graph is
    /// copied flat first, then let go: a serving index holds the flat one
    /// only. hnsw_rs's dump, which indexes saved before this builder also
    /// hold, is removed once the flat graph is written.
    pub fn save(&self) -> Result<(), VectorError> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        self.flatten(1);
        let _one = self.extending.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.rows.read().expect("rows");
        let g = self.graph.read().expect("graph");
        // Not copied flat (an error was logged): the rows past the flat
        // graph are saved as rows, and the next extension inserts them.
        let flat_current = g.flat_rows() >= g.builder_rows();
        let graph_rows = g.covered();
        match g.flat.as_ref() {
            Some(flat) => flat
                .write(&self.flat_path())
                .map_err(|e| io_err(&self.flat_path(), e))?,
            None => {
                let _ = std::fs::remove_file(self.flat_path());
            }
        }
        drop(g);
        let path = self.dir.join("vectors.bin");
        let tmp = self.dir.join("vectors.bin.tmp");
        let mut w =
            BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(|e| io_err(&tmp, e))?);
        let mut put = |b: &[u8]| w.write_all(b).map_err(|e| io_err(&tmp, e));
        put(MAGIC)?;
        put(&(self.dim as u32).to_le_bytes())?;
        put(&(self.embedder.len() as u32).to_le_bytes())?;
        put(self.embedder.as_bytes())?;
        put(&(r.len() as u64).to_le_bytes())?;
        put(&(graph_rows as u64).to_le_bytes())?;
        let mut bytes = Vec::with_capacity(self.dim * 4);
        for row in 0..r.len() {
            put(&r.id_keys[row].0.to_le_bytes())?;
            put(&r.text_hashes[row].to_le_bytes())?;
            put(&[r.alive[row] as u8])?;
            bytes.clear();
            for x in r.vector(row, self.dim) {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            put(&bytes)?;
        }
        let file = w.into_inner().map_err(|e| io_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        // The flat graph and the rows it holds are saved: an older
        // index's hnsw_rs dump is not needed any more (removed only now, so
        // a save stopped before `vectors.bin` still has it to fall back on).
        if graph_rows > 0 {
            for d in ["hnsw", "hnsw.old"] {
                let _ = std::fs::remove_dir_all(self.dir.join(d));
            }
        }
        // Copied flat: a later extension takes the flat graph's lists up.
        if flat_current {
            self.graph.write().expect("graph").builder = None;
        }
        drop(r);
        if let Some(j) = journal.as_mut() {
            j.clear().map_err(|e| io_err(j.path(), e))?;
        }
        Ok(())
    }

    /// The number of rows the saved graph holds (0 without saved vectors).
    #[cfg(test)]
    fn saved_graph_rows(&self) -> Result<usize, VectorError> {
        Ok(self.read_vectors_file()?.map_or(0, |(_, n)| n))
    }

    /// Bytes of vectors and graph on disk.
    pub fn size_bytes(&self) -> u64 {
        hubsearch_core::dir_size(&self.dir)
    }
}

mod build;
mod files;
mod flat;
use build::GraphBuilder;
use flat::FlatGraph;

#[cfg(test)]
mod tests;

/// Build a graph of `vectors` (rows of `dim` floats) with `params`' `m`
/// and `ef_construction` on `threads` threads and search it, for the
/// examples that compare the builder with hnsw_rs. Returns the build's wall
/// seconds and, for each `ef` of `efs`, each query's top `k` rows.
#[doc(hidden)]
pub fn compare_build(
    vectors: &[f32],
    dim: usize,
    params: HnswParams,
    threads: usize,
    queries: &[Vec<f32>],
    k: usize,
    efs: &[usize],
) -> (f64, Vec<Vec<Vec<usize>>>) {
    use rayon::prelude::*;
    let rows = vectors.len() / dim;
    let vector = |r: usize| &vectors[r * dim..(r + 1) * dim];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let t = std::time::Instant::now();
    let mut b = GraphBuilder::new(params.m, params.ef_construction);
    b.grow(rows, &vector);
    pool.install(|| (0..rows).into_par_iter().for_each(|r| b.insert(r)));
    let flat = b.to_flat(rows).expect("a graph");
    let secs = t.elapsed().as_secs_f64();
    let found = efs
        .iter()
        .map(|&ef| {
            queries
                .iter()
                .map(|q| {
                    flat.search(&vector, q, k, ef, None)
                        .into_iter()
                        .map(|(r, _)| r)
                        .collect()
                })
                .collect()
        })
        .collect();
    (secs, found)
}
