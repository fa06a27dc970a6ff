//! [`GraphBuilder`]: HNSW insertion (Malkov & Yashunin 2018, algorithms 1,
//! 2 and 4) over rows `0..n`, run on many threads at once, with no
//! allocation per visited node: neighbour lists are row numbers behind one
//! lock per node, a search marks visited rows in a per-thread array of
//! stamps, and the finished lists are copied flat ([`FlatGraph`]).
//!
//! It replaces hnsw_rs for building because hnsw_rs spends most of an
//! insertion outside the distances (a hash map of visited points, a
//! reference-counted allocation per candidate; docs/embeddings.md).
//!
//! What it keeps of hnsw_rs and hnswlib: `m` neighbours a node on the upper
//! layers and `2 m` on layer 0; levels drawn with `mL = 1 / ln m`, at most
//! 16 layers; `ef_construction` candidates per layer; neighbours chosen by
//! the heuristic of algorithm 4 without keeping pruned ones (hnswlib's
//! `getNeighborsByHeuristic2`); a neighbour whose list overflows re-chooses
//! its list by the same heuristic. A level is drawn from the row number
//! (a seeded hash), so the layers are a function of the rows; which
//! neighbours a node gets also depends on what other threads had inserted
//! (as with any parallel HNSW build).

use std::cell::RefCell;
use std::sync::{Mutex, RwLock};

use super::flat::FlatGraph;
use crate::simd::{fast_dot, Prefetch};

/// The most layers a graph has (hnsw_rs's `max_layer`).
const MAX_LEVELS: u8 = 16;

/// A row and its distance to the row being inserted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near {
    d: f32,
    row: u32,
}

impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.d.total_cmp(&other.d).then(self.row.cmp(&other.row))
    }
}

/// Per-thread scratch: visited stamps and the heaps of a layer search.
#[derive(Default)]
struct Scratch {
    stamps: Vec<u32>,
    stamp: u32,
    list: Vec<u32>,
}

impl Scratch {
    fn start(&mut self, rows: usize) {
        if self.stamps.len() < rows {
            self.stamps.resize(rows, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
    }

    /// Mark `row`; whether it was unvisited.
    fn visit(&mut self, row: u32) -> bool {
        let s = &mut self.stamps[row as usize];
        let fresh = *s != self.stamp;
        *s = self.stamp;
        fresh
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// An HNSW graph being built; every method that measures a distance is
/// given `vector`, which reads a row's vector.
pub(crate) struct GraphBuilder {
    m: usize,
    ef_construction: usize,
    levels: Vec<u8>,
    /// Each row's neighbour lists, one per layer `0..=level`.
    lists: Vec<Mutex<Vec<Vec<Near>>>>,
    /// The entry row and its level; `None` until the first insertion.
    entry: RwLock<Option<(u32, u8)>>,
}

/// The graph's distance: `1 - a.b`, clamped at 0 (`UnitDot`).
fn dist(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - fast_dot(a, b)).max(0.0)
}

/// The level of `row`: `floor(-ln(u) / ln(m))` for `u` uniform in (0, 1]
/// drawn from a hash of the row (splitmix64), at most `MAX_LEVELS - 1`.
fn level_of(row: usize, m: usize) -> u8 {
    let mut z = (row as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let ml = 1.0 / (m.max(2) as f64).ln();
    ((-u.ln() * ml).floor() as u64).min(u64::from(MAX_LEVELS - 1)) as u8
}

impl GraphBuilder {
    /// An empty graph with room for `rows` rows, to be inserted in any
    /// order by any number of threads at once.
    pub(crate) fn new(rows: usize, m: usize, ef_construction: usize) -> Self {
        let mut b = GraphBuilder {
            m: m.max(2),
            ef_construction: ef_construction.max(1),
            levels: Vec::new(),
            lists: Vec::new(),
            entry: RwLock::new(None),
        };
        b.grow(rows);
        b
    }

    /// Room for rows up to `rows` (their levels drawn, no neighbours yet).
    pub(crate) fn grow(&mut self, rows: usize) {
        for r in self.levels.len()..rows {
            let l = level_of(r, self.m);
            self.levels.push(l);
            self.lists
                .push(Mutex::new(vec![Vec::new(); l as usize + 1]));
        }
    }

    /// The graph of `flat` (its rows `0..flat.rows()`), to be extended by
    /// rows up to `rows`.
    pub(crate) fn of_flat<'v>(
        flat: &FlatGraph,
        m: usize,
        ef_construction: usize,
        vector: &(impl Fn(usize) -> &'v [f32] + Sync),
    ) -> Self {
        let mut b = GraphBuilder::new(0, m, ef_construction);
        for r in 0..flat.rows() {
            let level = flat.level(r);
            b.levels.push(level);
            let base = vector(r);
            let lists = (0..=level)
                .map(|l| {
                    let mut list: Vec<Near> = flat
                        .neighbours_of(r as u32, l)
                        .iter()
                        .map(|&n| Near {
                            d: dist(base, vector(n as usize)),
                            row: n,
                        })
                        .collect();
                    list.sort();
                    list
                })
                .collect();
            b.lists.push(Mutex::new(lists));
        }
        *b.entry.get_mut().unwrap_or_else(|e| e.into_inner()) =
            Some((flat.entry_row(), flat.level(flat.entry_row() as usize)));
        b
    }

    fn max_neighbours(&self, layer: u8) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// Copy the neighbours of `row` on `layer` into `out`.
    fn read_list(&self, row: u32, layer: u8, out: &mut Vec<u32>) {
        out.clear();
        let lists = self.lists[row as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(l) = lists.get(layer as usize) {
            out.extend(l.iter().map(|n| n.row));
        }
    }

    /// Insert `row` (each row once, after [`Self::grow`] made room for it).
    pub(crate) fn insert<'v>(&self, row: usize, vector: &(impl Fn(usize) -> &'v [f32] + Sync)) {
        let q = vector(row);
        let level = self.levels[row];
        let (mut pivot, top) = {
            let e = *self.entry.read().unwrap_or_else(|e| e.into_inner());
            match e {
                Some(e) => e,
                None => {
                    let mut w = self.entry.write().unwrap_or_else(|e| e.into_inner());
                    match *w {
                        Some(e) => e,
                        None => {
                            *w = Some((row as u32, level));
                            return;
                        }
                    }
                }
            }
        };
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let s = &mut *s;
            let mut d_pivot = dist(q, vector(pivot as usize));
            // Greedy descent on the layers above the new row's.
            for layer in ((level + 1)..=top).rev() {
                loop {
                    let mut moved = false;
                    self.read_list(pivot, layer, &mut s.list);
                    for &n in &s.list {
                        let d = dist(q, vector(n as usize));
                        if d < d_pivot {
                            (pivot, d_pivot) = (n, d);
                            moved = true;
                        }
                    }
                    if !moved {
                        break;
                    }
                }
            }
            let mut entries = vec![Near {
                d: d_pivot,
                row: pivot,
            }];
            for layer in (0..=level.min(top)).rev() {
                let mut found = self.search_layer(q, &entries, layer, s, vector);
                let chosen = self.choose(&found, self.m_for_new(layer), vector);
                {
                    let mut lists = self.lists[row].lock().unwrap_or_else(|e| e.into_inner());
                    lists[layer as usize].clone_from(&chosen);
                }
                for n in &chosen {
                    self.link(n.row, row as u32, n.d, layer);
                }
                found.truncate(1);
                entries = found;
            }
        });
        if level > top {
            let mut w = self.entry.write().unwrap_or_else(|e| e.into_inner());
            if w.is_none_or(|(_, l)| level > l) {
                *w = Some((row as u32, level));
            }
        }
    }

    /// How many neighbours a new row takes on `layer`: as many as a list
    /// holds (`2 m` on layer 0, `m` above), as hnsw_rs does.
    fn m_for_new(&self, layer: u8) -> usize {
        self.max_neighbours(layer)
    }

    /// The `ef_construction` rows nearest `q` on `layer` found from
    /// `entries`, nearest first (algorithm 2).
    fn search_layer<'v>(
        &self,
        q: &[f32],
        entries: &[Near],
        layer: u8,
        s: &mut Scratch,
        vector: &impl Fn(usize) -> &'v [f32],
    ) -> Vec<Near> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let ef = self.ef_construction;
        s.start(self.levels.len());
        let mut found: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
        let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(ef);
        for e in entries {
            if s.visit(e.row) {
                found.push(*e);
                candidates.push(Reverse(*e));
            }
        }
        while found.len() > ef {
            found.pop();
        }
        let prefetch = Prefetch::new();
        let mut list = std::mem::take(&mut s.list);
        while let Some(Reverse(c)) = candidates.pop() {
            if found.peek().is_some_and(|f| c.d > f.d) && found.len() >= ef {
                break;
            }
            self.read_list(c.row, layer, &mut list);
            for &n in &list {
                if s.stamps[n as usize] != s.stamp {
                    prefetch.vector(vector(n as usize));
                }
            }
            for &n in &list {
                if !s.visit(n) {
                    continue;
                }
                let d = dist(q, vector(n as usize));
                if found.len() < ef || found.peek().is_some_and(|f| d < f.d) {
                    candidates.push(Reverse(Near { d, row: n }));
                    found.push(Near { d, row: n });
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        s.list = list;
        found.into_sorted_vec()
    }

    /// At most `m` of `sorted` (nearest first) by algorithm 4's heuristic:
    /// a candidate is kept when it is strictly nearer the base than to every
    /// kept one (hnsw_rs's rule: a duplicate of a kept row is dropped).
    fn choose<'v>(
        &self,
        sorted: &[Near],
        m: usize,
        vector: &impl Fn(usize) -> &'v [f32],
    ) -> Vec<Near> {
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        for c in sorted {
            if kept.len() >= m {
                break;
            }
            let v = vector(c.row as usize);
            if kept.iter().all(|k| dist(v, vector(k.row as usize)) > c.d) {
                kept.push(*c);
            }
        }
        kept
    }

    /// Add `new` (at distance `d`) to the neighbours of `row` on `layer`;
    /// a full list drops its farthest (hnsw_rs's reverse update).
    fn link(&self, row: u32, new: u32, d: f32, layer: u8) {
        let max = self.max_neighbours(layer);
        let mut lists = self.lists[row as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(list) = lists.get_mut(layer as usize) else {
            return;
        };
        if list.iter().any(|n| n.row == new) {
            return;
        }
        let at = list.partition_point(|n| *n < Near { d, row: new });
        if at >= max {
            return;
        }
        list.insert(at, Near { d, row: new });
        list.truncate(max);
    }

    /// The graph of the rows inserted so far, flat: rows `0..rows` (every
    /// one inserted).
    pub(crate) fn to_flat(&self, rows: usize) -> Result<FlatGraph, String> {
        let entry = self
            .entry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ok_or("the graph is empty")?;
        let lists: Vec<Vec<Vec<u32>>> = self.lists[..rows]
            .iter()
            .map(|l| {
                l.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|list| list.iter().map(|n| n.row).collect())
                    .collect()
            })
            .collect();
        FlatGraph::of_lists(&self.levels[..rows], entry.0, &lists)
    }
}
