//! [`FlatGraph`]: the HNSW graph as flat arrays of row numbers, searched
//! without allocating per node and saved as one file that loads in one
//! read (docs/embeddings.md, "The flat graph").
//!
//! `build.rs` builds and extends the graph and copies it here; serving
//! reads this copy. [`FlatGraph::of_hnsw`] copies an hnsw_rs graph instead:
//! an index saved before `build.rs` holds hnsw_rs's dump, and the tests
//! compare this search with hnsw_rs's on hnsw_rs's graphs. Here a node is
//! its row: the neighbours of every row on layer 0 are one slice of one
//! array (`off0`/`nb0`, compressed rows), the upper layers' lists another
//! (`up_*`), and a search marks visited rows in a per-thread array of
//! stamps.
//!
//! The search is hnsw_rs 0.3's `search_filter` step for step (greedy descent
//! on the upper layers, one pass over the pivot's neighbours per layer, then
//! its `search_layer` on the lowest layer with the same heaps, orderings and
//! filter rules), so on the same graph it returns the same rows at the same
//! distances: `tests.rs` checks it against hnsw_rs itself.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::Path;

use super::Graph;
use crate::huge::HugeVec;
use crate::simd::{fast_dot, Prefetch};

const MAGIC: &[u8; 4] = b"HSG1";

/// The graph as flat arrays over rows `0..rows`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlatGraph {
    /// The number of rows (nodes) it holds.
    rows: usize,
    /// Each row's top layer.
    levels: Vec<u8>,
    /// The row the search enters at (on the top layer).
    entry: u32,
    /// The lowest layer holding a node (0 but for a graph of a few nodes).
    bottom: u8,
    /// Layer 0: the neighbours of row `r` are `nb0[off0[r]..off0[r + 1]]`.
    off0: HugeVec<u32>,
    nb0: HugeVec<u32>,
    /// Layers 1 and up: a row of level `L >= 1` has pairs
    /// `up_index[r] .. up_index[r] + L` (layers 1..=L), pair `p`'s
    /// neighbours being `up_nb[up_off[p]..up_off[p + 1]]`; `u32::MAX` for
    /// rows of level 0.
    up_index: HugeVec<u32>,
    up_off: HugeVec<u32>,
    up_nb: HugeVec<u32>,
}

/// A node and its distance; ordered by distance alone, as hnsw_rs orders
/// its `PointWithOrder` (ties then fall as the heap's moves put them, the
/// same moves as hnsw_rs's since the comparisons agree).
#[derive(Debug, Clone, Copy)]
struct Near {
    d: f32,
    row: u32,
}

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.d.partial_cmp(&other.d).unwrap_or(Ordering::Equal)
    }
}

/// Visited rows of the current search: row `r` is visited when
/// `stamps[r] == stamp`. One per thread, reused: a search allocates no
/// per-node memory.
#[derive(Default)]
pub(crate) struct Visited {
    stamps: HugeVec<u32>,
    stamp: u32,
}

impl Visited {
    pub(crate) fn start(&mut self, rows: usize) {
        if self.stamps.len() < rows {
            self.stamps.resize(rows, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
    }

    /// Whether `row` was visited.
    pub(crate) fn has(&self, row: u32) -> bool {
        self.stamps[row as usize] == self.stamp
    }

    /// Mark `row`; whether it was unvisited.
    pub(crate) fn insert(&mut self, row: u32) -> bool {
        let s = &mut self.stamps[row as usize];
        let fresh = *s != self.stamp;
        *s = self.stamp;
        fresh
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Why a graph could not be copied or read.
pub(crate) type FlatError = String;

impl FlatGraph {
    /// The number of rows it holds.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Copy hnsw_rs's graph, whose points must be rows `0..rows` (the data
    /// id of every point its row). `vector(row)` reads a row's vector, used
    /// to pick the entry point when hnsw_rs's top layer holds more than one
    /// node (hnsw_rs does not expose which one it enters at).
    pub(crate) fn of_hnsw<'v>(
        graph: &Graph,
        vector: impl Fn(usize) -> &'v [f32],
    ) -> Result<FlatGraph, FlatError> {
        let rows = graph.get_nb_point();
        if rows == 0 {
            return Err("the graph is empty".into());
        }
        if rows >= u32::MAX as usize {
            return Err(format!("{rows} rows do not fit a u32"));
        }
        let index = graph.get_point_indexation();
        let mut points = vec![None; rows];
        for p in index {
            let row = p.get_origin_id();
            match points.get_mut(row) {
                Some(slot @ None) => *slot = Some(p),
                Some(Some(_)) => return Err(format!("row {row} is in the graph twice")),
                None => return Err(format!("row {row} is past the graph's {rows} points")),
            }
        }
        let mut flat = FlatGraph::unfilled(rows, Vec::with_capacity(rows), 0, u8::MAX);
        for (row, p) in points.iter().enumerate() {
            let p = p
                .as_ref()
                .ok_or_else(|| format!("row {row} is missing from the graph"))?;
            let level = p.get_point_id().0;
            flat.levels.push(level);
            flat.bottom = flat.bottom.min(level);
            let lists = p.get_neighborhood_id();
            flat.push_lists(level, |l| {
                lists.get(l).into_iter().flatten().map(|n| n.d_id as u32)
            });
        }
        let top = graph.get_max_level_observed();
        let tops: Vec<u32> = graph
            .get_point_indexation()
            .get_layer_iterator(top as usize)
            .map(|p| p.get_origin_id() as u32)
            .collect();
        flat.entry = *tops.first().ok_or("the top layer is empty")?;
        flat.check()?;
        if tops.len() > 1 {
            // The top layer's first node is the entry of a graph built one
            // insertion at a time; parallel insertion can let a later one
            // claim it. Take the node whose searches are hnsw_rs's own, on
            // probes far from any row (the difference of two rows) and at
            // ef 1, where the entry decides the most.
            let probes: Vec<Vec<f32>> = (0..16)
                .map(|i| {
                    let (a, b) = (
                        vector(i * rows / 16),
                        vector((i * rows / 16 + rows / 2) % rows),
                    );
                    a.iter().zip(b).map(|(x, y)| x - y).collect()
                })
                .collect();
            let agrees = |flat: &FlatGraph| {
                probes.iter().all(|q| {
                    [(1, 1), (10, 32)].iter().all(|&(k, ef)| {
                        let theirs: Vec<(usize, f32)> = graph
                            .search(q, k, ef)
                            .into_iter()
                            .map(|n| (n.d_id, n.distance))
                            .collect();
                        flat.search(&vector, q, k, ef, None) == theirs
                    })
                })
            };
            let found = tops.iter().copied().find(|&e| {
                flat.entry = e;
                agrees(&flat)
            });
            flat.entry = found.unwrap_or_else(|| {
                tracing::warn!(
                    "no node of the top layer's {} searches as hnsw_rs's entry point does; taking the first",
                    tops.len()
                );
                tops[0]
            });
        }
        Ok(flat)
    }

    /// A graph of `levels.len()` rows entered at `entry`, row `r`'s
    /// neighbours on layer `l` being `lists[r][l]` (`lists[r]` holds layers
    /// `0..=levels[r]`).
    pub(crate) fn of_lists(
        levels: &[u8],
        entry: u32,
        lists: &[Vec<Vec<u32>>],
    ) -> Result<FlatGraph, FlatError> {
        let rows = levels.len();
        if rows == 0 || lists.len() != rows {
            return Err("the graph is empty or its lists do not match its rows".into());
        }
        let bottom = levels.iter().copied().min().unwrap_or(0);
        let mut flat = FlatGraph::unfilled(rows, levels.to_vec(), entry, bottom);
        for (r, l) in lists.iter().enumerate() {
            let level = levels[r] as usize;
            if l.len() != level + 1 {
                return Err(format!("row {r} has {} lists for level {level}", l.len()));
            }
            flat.push_lists(levels[r], |layer| l[layer].iter().copied());
        }
        flat.check()?;
        Ok(flat)
    }

    /// A graph of `rows` rows whose lists are still to be appended
    /// ([`FlatGraph::push_lists`]).
    fn unfilled(rows: usize, levels: Vec<u8>, entry: u32, bottom: u8) -> FlatGraph {
        FlatGraph {
            rows,
            levels,
            entry,
            bottom,
            off0: {
                let mut off0 = HugeVec::with_capacity(rows + 1);
                off0.push(0);
                off0
            },
            nb0: HugeVec::default(),
            up_index: HugeVec::with_capacity(rows),
            up_off: HugeVec::from(vec![0]),
            up_nb: HugeVec::default(),
        }
    }

    /// Append the next row's neighbour lists, `list(layer)` for layers
    /// `0..=level` (its level itself pushed by the caller).
    fn push_lists<I: Iterator<Item = u32>>(&mut self, level: u8, list: impl Fn(usize) -> I) {
        self.nb0.extend(list(0));
        self.off0.push(self.nb0.len() as u32);
        if level == 0 {
            self.up_index.push(u32::MAX);
        } else {
            self.up_index.push((self.up_off.len() - 1) as u32);
            for layer in 1..=level as usize {
                self.up_nb.extend(list(layer));
                self.up_off.push(self.up_nb.len() as u32);
            }
        }
    }

    /// The top layer of `row`.
    pub(crate) fn level(&self, row: usize) -> u8 {
        self.levels[row]
    }

    /// The row searches enter at.
    pub(crate) fn entry_row(&self) -> u32 {
        self.entry
    }

    /// The neighbours of `row` on `layer` (none above its level).
    pub(crate) fn neighbours_of(&self, row: u32, layer: u8) -> &[u32] {
        self.neighbours(row, layer)
    }

    /// The neighbours of `row` on `layer`.
    fn neighbours(&self, row: u32, layer: u8) -> &[u32] {
        let r = row as usize;
        if layer == 0 {
            return &self.nb0[self.off0[r] as usize..self.off0[r + 1] as usize];
        }
        if layer > self.levels[r] {
            return &[];
        }
        let pair = (self.up_index[r] + u32::from(layer) - 1) as usize;
        &self.up_nb[self.up_off[pair] as usize..self.up_off[pair + 1] as usize]
    }

    /// The `k` nearest rows to `query` by the graph's distance (`1 - a.b`,
    /// clamped at 0), exploring `ef_arg.max(k)` candidates, with hnsw_rs's
    /// filter rules when `filter` is given: `(row, distance)`, nearest
    /// first.
    pub(crate) fn search<'v>(
        &self,
        vector: &impl Fn(usize) -> &'v [f32],
        query: &[f32],
        k: usize,
        ef_arg: usize,
        filter: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<(usize, f32)> {
        let dist = |row: u32| (1.0 - fast_dot(query, vector(row as usize))).max(0.0);
        // Each unvisited neighbour's row is prefetched before the first
        // distance of a candidate's list: their loads overlap, where one by
        // one each waited for memory.
        let prefetch = Prefetch::new();
        let fetch_row = |row: u32| prefetch.vector(vector(row as usize));
        let mut pivot = self.entry;
        let mut d_pivot = dist(pivot);
        for layer in (1..=self.levels[pivot as usize]).rev() {
            let mut best = None;
            for &n in self.neighbours(pivot, layer) {
                let d = dist(n);
                if d < d_pivot {
                    best = Some(n);
                    d_pivot = d;
                }
            }
            if let Some(b) = best {
                pivot = b;
            }
        }
        let ef = ef_arg.max(k);
        let found = VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            self.search_layer(&dist, &fetch_row, &mut visited, pivot, ef, filter)
        });
        let sorted = found.into_sorted_vec();
        let last = k.min(ef).min(sorted.len());
        sorted[..last]
            .iter()
            .filter(|n| filter.is_none_or(|f| f(n.row as usize)))
            .map(|n| (n.row as usize, n.d))
            .collect()
    }

    /// hnsw_rs's `search_layer` on the lowest layer: the `ef` nearest
    /// (a max-heap of distances).
    fn search_layer(
        &self,
        dist: &impl Fn(u32) -> f32,
        fetch_row: &impl Fn(u32),
        visited: &mut Visited,
        entry: u32,
        ef: usize,
        filter: Option<&dyn Fn(usize) -> bool>,
    ) -> BinaryHeap<Near> {
        let layer = self.bottom;
        let cap = ef.max(2);
        let mut found = BinaryHeap::with_capacity(cap + 1);
        let mut candidates = BinaryHeap::with_capacity(cap);
        visited.start(self.rows);
        visited.insert(entry);
        let d_entry = dist(entry);
        candidates.push(Near {
            d: -d_entry,
            row: entry,
        });
        found.push(Near {
            d: d_entry,
            row: entry,
        });
        while let Some(c) = candidates.pop() {
            // hnsw_rs unwraps here; a filter can empty the list (below).
            let Some(f) = found.peek() else {
                return found;
            };
            if -c.d > f.d {
                match filter {
                    None => return found,
                    Some(keep) if found.len() >= ef => found.retain(|p| keep(p.row as usize)),
                    Some(_) => {}
                }
            }
            let near = self.neighbours(c.row, layer);
            for &e in near {
                if !visited.has(e) {
                    fetch_row(e);
                }
            }
            for &e in near {
                if !visited.insert(e) {
                    continue;
                }
                let Some(f) = found.peek() else {
                    return found;
                };
                let d = dist(e);
                if d < f.d || found.len() < ef {
                    candidates.push(Near { d: -d, row: e });
                    match filter {
                        Some(keep) => {
                            if keep(e as usize) {
                                if found.len() == 1
                                    && found.peek().is_some_and(|o| !keep(o.row as usize))
                                {
                                    found.clear();
                                }
                                found.push(Near { d, row: e });
                            }
                        }
                        None => found.push(Near { d, row: e }),
                    }
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        found
    }

    /// Every array consistent and every neighbour a row: a file that reads
    /// is one a search cannot index out of.
    fn check(&self) -> Result<(), FlatError> {
        let n = self.rows;
        let bad = |what: &str| Err(format!("the flat graph's {what} are inconsistent"));
        if self.levels.len() != n || self.up_index.len() != n || self.off0.len() != n + 1 {
            return bad("array lengths");
        }
        if (self.entry as usize) >= n
            || self.levels[self.entry as usize] != self.levels.iter().copied().max().unwrap_or(0)
        {
            return bad("entry point and levels");
        }
        if self.bottom != self.levels.iter().copied().min().unwrap_or(0) {
            return bad("levels");
        }
        let csr_ok = |off: &[u32], nb: &[u32]| {
            off.first() == Some(&0)
                && off.windows(2).all(|w| w[0] <= w[1])
                && off.last().is_some_and(|&l| l as usize == nb.len())
                && nb.iter().all(|&x| (x as usize) < n)
        };
        if !csr_ok(&self.off0, &self.nb0) || !csr_ok(&self.up_off, &self.up_nb) {
            return bad("neighbour lists");
        }
        let pairs = self.up_off.len() - 1;
        let mut next = 0usize;
        for (r, &i) in self.up_index.iter().enumerate() {
            let level = self.levels[r] as usize;
            if level == 0 {
                if i != u32::MAX {
                    return bad("upper-layer indexes");
                }
            } else {
                if i as usize != next {
                    return bad("upper-layer indexes");
                }
                next += level;
            }
        }
        if next != pairs {
            return bad("upper-layer indexes");
        }
        Ok(())
    }

    /// Write to `path` (a temporary file synced, then renamed over it).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("flat.tmp");
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        w.write_all(MAGIC)?;
        w.write_all(&(self.rows as u64).to_le_bytes())?;
        w.write_all(&self.entry.to_le_bytes())?;
        w.write_all(&[self.bottom])?;
        w.write_all(&self.levels)?;
        for array in [
            &self.off0,
            &self.nb0,
            &self.up_index,
            &self.up_off,
            &self.up_nb,
        ] {
            w.write_all(&(array.len() as u64).to_le_bytes())?;
            for x in array.iter() {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Read a graph [`FlatGraph::write`] wrote; an error for anything else
    /// (a short, foreign or inconsistent file).
    pub(crate) fn read(path: &Path) -> Result<FlatGraph, FlatError> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], FlatError> {
            let s = bytes
                .get(at..at.checked_add(n).ok_or("a length overflows")?)
                .ok_or_else(|| format!("{} ends early", path.display()))?;
            at += n;
            Ok(s)
        };
        if take(4)? != MAGIC {
            return Err(format!("{} is not a flat graph", path.display()));
        }
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize;
        let rows = u64_of(take(8)?);
        let entry = u32::from_le_bytes(take(4)?.try_into().unwrap_or([0; 4]));
        let bottom = take(1)?[0];
        let levels = take(rows)?.to_vec();
        let mut arrays = Vec::with_capacity(5);
        for _ in 0..5 {
            let len = u64_of(take(8)?);
            let raw = take(len.checked_mul(4).ok_or("a length overflows")?)?;
            let mut array = HugeVec::with_capacity(len);
            array.extend(
                raw.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            arrays.push(array);
        }
        if at != bytes.len() {
            return Err(format!("{} has bytes past its end", path.display()));
        }
        let mut arrays = arrays.into_iter();
        let mut next = || arrays.next().unwrap_or_default();
        let flat = FlatGraph {
            rows,
            levels,
            entry,
            bottom,
            off0: next(),
            nb0: next(),
            up_index: next(),
            up_off: next(),
            up_nb: next(),
        };
        flat.check()?;
        Ok(flat)
    }
}
