//! [`VectorIndex`]: card vectors and an HNSW graph over them (hnsw_rs, dot
//! product on unit vectors = cosine), persisted beside the text index.
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
//!   a better graph, slower builds (on real MiniLM vectors inserted in an
//!   order unrelated to content: recall@10 0.991 at 200, 0.976 at 100, at
//!   about twice the build time).
//! - `ef_search` (128): candidates explored per query; the recall/latency
//!   knob at query time.
//! - `exact_below` (5,000): below this many live rows (or allowed rows under
//!   a filter) an exact scan is both faster and exact.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo, Point};

use crate::embedder::dot;
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
            ef_search: 128,
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
pub type Allowed<'a> = Option<&'a std::collections::HashSet<u64>>;

/// One vector per row, in insertion order. The graph keeps its own copy of
/// every vector it holds, so rows already in the graph are read from the
/// graph's points and only the rest (`pending`) are stored here: one copy of
/// each vector in memory, not two (1.5 KB per card saved with MiniLM).
#[derive(Default)]
struct Rows {
    /// The graph's points of rows `0..points.len()`.
    points: Vec<Arc<Point<'static, f32>>>,
    /// Vectors of rows `pending_start..`, `dim` floats each.
    pending: Vec<f32>,
    /// The first row in `pending`: `points.len()`, except while opening
    /// (rows the saved graph holds are not read into `pending` at all).
    pending_start: usize,
    id_keys: Vec<u64>,
    text_hashes: Vec<u64>,
    alive: Vec<bool>,
    by_id: HashMap<u64, usize>,
}

impl Rows {
    fn len(&self) -> usize {
        self.id_keys.len()
    }

    fn vector(&self, row: usize, dim: usize) -> &[f32] {
        match self.points.get(row) {
            Some(p) => p.get_v(),
            None => {
                let i = row - self.pending_start;
                &self.pending[i * dim..(i + 1) * dim]
            }
        }
    }

    /// Read the vectors of rows `points.len()..graph_rows` from the graph's
    /// points from now on, and drop our copies of them.
    fn adopt(&mut self, graph: &Graph, graph_rows: usize, dim: usize) {
        let have = self.points.len();
        if graph_rows <= have {
            return;
        }
        let mut slots: Vec<Option<Arc<Point<'static, f32>>>> = vec![None; graph_rows - have];
        for p in graph.get_point_indexation() {
            let row = p.get_origin_id();
            if (have..graph_rows).contains(&row) {
                slots[row - have] = Some(p);
            }
        }
        // Only a whole prefix can move (rows stay in order); a graph missing a
        // row would leave it in `pending`, still readable.
        self.points.extend(slots.into_iter().map_while(|p| p));
        let dropped = self.points.len().saturating_sub(self.pending_start);
        if dropped > 0 {
            self.pending
                .drain(..(dropped * dim).min(self.pending.len()));
            self.pending.shrink_to_fit();
            self.pending_start += dropped;
        }
    }

    /// Every row has its vector (in `points` or `pending`).
    fn complete(&self, dim: usize) -> bool {
        self.points.len() >= self.pending_start
            && self.pending.len() == (self.len() - self.pending_start) * dim
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
    /// The graph and how many rows it holds (rows are inserted in order).
    graph: RwLock<Option<(Graph, usize)>>,
    /// Published vectors since the last save (crate::journal); held while
    /// saving so no change slips between a save and the journal's reset.
    pub(crate) journal: std::sync::Mutex<Option<crate::journal::Journal>>,
}

/// One vector hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    pub id_key: u64,
    pub similarity: f32,
}

impl VectorIndex {
    /// Open the vectors in `dir` (or start empty), made by `embedder` with
    /// vectors of `dim` dimensions; reload the saved graph if it is current.
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
            graph: RwLock::new(None),
            journal: std::sync::Mutex::new(None),
        };
        // The saved graph first: when it loads, the vectors it holds are not
        // read from vectors.bin at all (one copy in memory, even at the peak).
        let graph_rows = idx.saved_graph_rows()?;
        let graph = (graph_rows > 0)
            .then(|| idx.load_graph(graph_rows))
            .flatten();
        let skip = if graph.is_some() { graph_rows } else { 0 };
        let mut rows = idx.read_rows(skip)?;
        if let Some(g) = &graph {
            rows.adopt(g, graph_rows, dim);
        }
        if rows.complete(dim) {
            *idx.rows.write().expect("rows") = rows;
            *idx.graph.write().expect("graph") = graph.map(|g| (g, graph_rows));
        } else {
            // The graph lacks rows it claims: read every vector, rebuild.
            *idx.rows.write().expect("rows") = idx.read_rows(0)?;
        }
        idx.build_graph();
        idx.adopt_graph_vectors();
        idx.replay_journal()?;
        Ok(idx)
    }

    /// Drop our copies of the vectors the graph now holds.
    fn adopt_graph_vectors(&self) {
        let mut r = self.rows.write().expect("rows");
        let g = self.graph.read().expect("graph");
        if let Some((graph, n)) = g.as_ref() {
            r.adopt(graph, *n, self.dim);
        }
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
    pub fn is_current(&self, id_key: u64, text_hash: u64) -> bool {
        let r = self.rows.read().expect("rows");
        r.by_id
            .get(&id_key)
            .is_some_and(|&row| r.alive[row] && r.text_hashes[row] == text_hash)
    }

    /// The live vector of a card.
    pub fn vector_of(&self, id_key: u64) -> Option<Vec<f32>> {
        let r = self.rows.read().expect("rows");
        let &row = r.by_id.get(&id_key)?;
        r.alive[row].then(|| r.vector(row, self.dim).to_vec())
    }

    /// Add or replace vectors (`(id_key, text_hash, vector)`), then extend the
    /// graph with the new rows.
    pub fn upsert(&self, items: Vec<(u64, u64, Vec<f32>)>) -> Result<(), VectorError> {
        {
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
                r.pending.extend_from_slice(&v);
                r.id_keys.push(id_key);
                r.text_hashes.push(text_hash);
                r.alive.push(true);
                r.by_id.insert(id_key, row);
            }
        }
        self.build_graph();
        Ok(())
    }

    /// Tombstone a card's vector.
    pub fn delete(&self, id_key: u64) {
        let mut r = self.rows.write().expect("rows");
        if let Some(row) = r.by_id.remove(&id_key) {
            r.alive[row] = false;
        }
    }

    /// Tombstone every vector whose card is not in `keep`.
    pub fn retain(&self, keep: &std::collections::HashSet<u64>) {
        let mut r = self.rows.write().expect("rows");
        let gone: Vec<u64> = r
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

    /// Insert rows not yet in the graph (all of them on first build).
    fn build_graph(&self) {
        let r = self.rows.read().expect("rows");
        let mut g = self.graph.write().expect("graph");
        let n = r.len();
        if g.as_ref().is_some_and(|(_, done)| *done >= n) {
            return;
        }
        if g.is_none() {
            let graph = Graph::new(
                self.params.m,
                n.max(1024),
                16,
                self.params.ef_construction,
                UnitDot,
            );
            *g = Some((graph, 0));
        }
        let (graph, done) = g.as_mut().expect("graph");
        let items: Vec<(&[f32], usize)> = (*done..n)
            .map(|row| (r.vector(row, self.dim), row))
            .collect();
        // hnsw_rs inserts over rayon. The binary sets the global pool to one
        // thread (candle's inner parallelism only hurts the embedder), so the
        // graph gets a pool of its own, one thread per core.
        insert_pool().install(|| graph.parallel_insert_slice(&items));
        *done = n;
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
        let Some((graph, _)) = g.as_ref() else {
            return self.exact_locked(&r, query, k, allowed);
        };
        let ok = |row: &usize| -> bool {
            r.alive[*row] && allowed.is_none_or(|a| a.contains(&r.id_keys[*row]))
        };
        let ef = self.params.ef_search.max(k);
        // hnsw_rs's filtered search keeps a second candidate list; without
        // tombstones or an allowed set there is nothing to filter.
        let unfiltered = allowed.is_none() && live == r.len();
        let found = if unfiltered {
            graph.search(query, k, ef)
        } else {
            graph.search_filter(query, k, ef, Some(&ok))
        };
        // The graph's distances are SIMD dot products; a hit carries the
        // exact cosine (as `similarities` and exact scans give it), and
        // the hits are in its order.
        let mut hits: Vec<VectorHit> = found
            .into_iter()
            .filter(|n| ok(&n.d_id))
            .map(|n| VectorHit {
                id_key: r.id_keys[n.d_id],
                similarity: dot(query, r.vector(n.d_id, self.dim)),
            })
            .collect();
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        hits
    }

    /// The cosine similarity of `query` to each of these cards' vectors
    /// (`None` where a card has no live vector): exact, one dot product each.
    pub fn similarities(&self, query: &[f32], id_keys: &[u64]) -> Vec<Option<f32>> {
        let r = self.rows.read().expect("rows");
        id_keys
            .iter()
            .map(|k| {
                let &row = r.by_id.get(k)?;
                r.alive[row].then(|| dot(query, r.vector(row, self.dim)))
            })
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
        let mut hits: Vec<VectorHit> = rows
            .into_iter()
            .filter(|&row| r.alive[row])
            .map(|row| VectorHit {
                id_key: r.id_keys[row],
                similarity: dot(query, r.vector(row, self.dim)),
            })
            .collect();
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

    /// Write vectors and graph to disk (atomically: temp files, then renames).
    pub fn save(&self) -> Result<(), VectorError> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.rows.read().expect("rows");
        let g = self.graph.read().expect("graph");
        let graph_rows = g.as_ref().map_or(0, |(_, n)| *n);
        // Graph first, into a fresh directory swapped in by rename.
        if let Some((graph, _)) = g.as_ref() {
            let tmp = self.dir.join("hnsw.tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
            graph
                .file_dump(&tmp, "graph")
                .map_err(|e| io_err(&tmp, e))?;
            // Never delete first: the old graph is moved aside, the new one
            // renamed in, then the old one removed; a crash in between
            // leaves `hnsw.old`, which `load_graph` falls back to.
            let fin = self.dir.join("hnsw");
            let old = self.dir.join("hnsw.old");
            let _ = std::fs::remove_dir_all(&old);
            if fin.exists() {
                std::fs::rename(&fin, &old).map_err(|e| io_err(&fin, e))?;
            }
            std::fs::rename(&tmp, &fin).map_err(|e| io_err(&fin, e))?;
            let _ = std::fs::remove_dir_all(&old);
        }
        let path = self.dir.join("vectors.bin");
        let tmp = self.dir.join("vectors.bin.tmp");
        let mut w = BufWriter::new(File::create(&tmp).map_err(|e| io_err(&tmp, e))?);
        let mut put = |b: &[u8]| w.write_all(b).map_err(|e| io_err(&tmp, e));
        put(MAGIC)?;
        put(&(self.dim as u32).to_le_bytes())?;
        put(&(self.embedder.len() as u32).to_le_bytes())?;
        put(self.embedder.as_bytes())?;
        put(&(r.len() as u64).to_le_bytes())?;
        put(&(graph_rows as u64).to_le_bytes())?;
        for row in 0..r.len() {
            put(&r.id_keys[row].to_le_bytes())?;
            put(&r.text_hashes[row].to_le_bytes())?;
            put(&[r.alive[row] as u8])?;
            for x in r.vector(row, self.dim) {
                put(&x.to_le_bytes())?;
            }
        }
        let file = w.into_inner().map_err(|e| io_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        drop((r, g));
        if let Some(j) = journal.as_mut() {
            j.clear().map_err(|e| io_err(j.path(), e))?;
        }
        self.adopt_graph_vectors();
        Ok(())
    }

    /// The number of rows the saved graph holds (0 without saved vectors).
    fn saved_graph_rows(&self) -> Result<usize, VectorError> {
        Ok(self.read_vectors_file(usize::MAX)?.map_or(0, |(_, n)| n))
    }

    /// The saved rows; the vectors of rows below `skip` are not read (the
    /// loaded graph holds them).
    fn read_rows(&self, skip: usize) -> Result<Rows, VectorError> {
        Ok(self
            .read_vectors_file(skip)?
            .map_or_else(Rows::default, |(r, _)| r))
    }

    /// Read vectors.bin: its rows (none when `skip` is `usize::MAX`: the
    /// header only) and the number of rows its graph holds.
    fn read_vectors_file(&self, skip: usize) -> Result<Option<(Rows, usize)>, VectorError> {
        let path = self.dir.join("vectors.bin");
        let Ok(f) = File::open(&path) else {
            return Ok(None);
        };
        let mut rd = BufReader::new(f);
        let get4 = |rd: &mut BufReader<File>| -> Result<u32, VectorError> {
            let mut b = [0u8; 4];
            rd.read_exact(&mut b).map_err(|e| io_err(&path, e))?;
            Ok(u32::from_le_bytes(b))
        };
        let mut magic = [0u8; 4];
        rd.read_exact(&mut magic).map_err(|e| io_err(&path, e))?;
        if &magic != MAGIC {
            return Err(io_err(&path, "not a hubsearch vector file"));
        }
        let dim = get4(&mut rd)? as usize;
        let name_len = get4(&mut rd)? as usize;
        let mut name = vec![0u8; name_len.min(1024)];
        rd.read_exact(&mut name).map_err(|e| io_err(&path, e))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if name != self.embedder || dim != self.dim {
            return Err(VectorError::WrongEmbedder {
                path,
                found: format!("{name} ({dim}-d)"),
                want: format!("{} ({}-d)", self.embedder, self.dim),
            });
        }
        let get8 = |rd: &mut BufReader<File>| -> Result<u64, VectorError> {
            let mut b = [0u8; 8];
            rd.read_exact(&mut b).map_err(|e| io_err(&path, e))?;
            Ok(u64::from_le_bytes(b))
        };
        let n = get8(&mut rd)? as usize;
        let graph_rows = (get8(&mut rd)? as usize).min(n);
        let mut rows = Rows::default();
        if skip == usize::MAX {
            return Ok(Some((rows, graph_rows)));
        }
        let skip = skip.min(n);
        rows.pending_start = skip;
        rows.pending.reserve((n - skip) * dim);
        let mut vec_bytes = vec![0u8; dim * 4];
        for row in 0..n {
            let id_key = get8(&mut rd)?;
            let text_hash = get8(&mut rd)?;
            let mut alive = [0u8; 1];
            rd.read_exact(&mut alive).map_err(|e| io_err(&path, e))?;
            rd.read_exact(&mut vec_bytes)
                .map_err(|e| io_err(&path, e))?;
            if row >= skip {
                rows.pending.extend(
                    vec_bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            rows.id_keys.push(id_key);
            rows.text_hashes.push(text_hash);
            rows.alive.push(alive[0] == 1);
            if alive[0] == 1 {
                rows.by_id.insert(id_key, row);
            }
        }
        Ok(Some((rows, graph_rows)))
    }

    /// Reload the saved graph if it holds exactly `rows` rows.
    fn load_graph(&self, rows: usize) -> Option<Graph> {
        // `hnsw.old`: a save stopped between its two renames.
        let dir = ["hnsw", "hnsw.old"]
            .iter()
            .map(|d| self.dir.join(d))
            .find(|d| d.join("graph.hnsw.graph").exists())?;
        // hnsw_rs ties the graph's lifetime to its loader; the loader is
        // small and lives as long as the index, so it is leaked on purpose.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, "graph")));
        match io.load_hnsw::<f32, UnitDot>() {
            Ok(mut g) if g.get_nb_point() == rows => {
                g.set_searching_mode(true);
                Some(g)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    "cannot reload the HNSW graph in {}: {e}; rebuilding",
                    dir.display()
                );
                None
            }
        }
    }

    /// Bytes of vectors and graph on disk.
    pub fn size_bytes(&self) -> u64 {
        hubsearch_core::dir_size(&self.dir)
    }
}

#[cfg(test)]
mod tests;
