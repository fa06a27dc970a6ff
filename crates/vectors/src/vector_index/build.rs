//! [`GraphBuilder`]: HNSW insertion (Malkov & Yashunin 2018, algorithms 1,
//! 2 and 4) over rows `0..n`, run on many threads at once, with no
//! allocation per visited node: neighbour lists are row numbers behind one
//! lock per row (layer 0's in place, in one array), a search marks visited
//! rows in a per-thread array of stamps, and the finished lists are copied
//! flat ([`FlatGraph`]), which searches read.
//!
//! It replaces hnsw_rs for building because hnsw_rs spends most of an
//! insertion outside the distances (a hash map of visited points, a
//! reference-counted allocation per candidate; docs/embeddings.md). Its
//! own time goes to reading vectors from memory, so the distances it
//! measures are those of int8 copies of the vectors (each scaled so its
//! largest component is 127): a quarter of the traffic. Only the build
//! measures them; searches walk the graph by float dot products.
//!
//! What it keeps of hnsw_rs: lists of at most `m` neighbours on the upper
//! layers and `2 m` on layer 0; levels drawn with `mL = 1 / ln m`, at most
//! 16 layers; `ef_construction` candidates per layer, the next layer
//! searched from the nearest.
//!
//! Where it differs (docs/embeddings.md, "Choosing neighbours"): the
//! MiniLM vectors of model cards have hubs, cards near very many others,
//! and with hnsw_rs's rules a card of a rare topic kept only a hub as its
//! neighbour and was dropped from the hub's full list, so no search could
//! reach it (301 of the 29,432 real cards had no way in). So:
//! - neighbours are chosen by algorithm 4's heuristic relaxed by DiskANN's
//!   `alpha` (Subramanya et al. 2019, RobustPrune): a candidate is dropped
//!   only when `alpha` times its distance to a kept neighbour is no more
//!   than its distance to the row ([`ALPHA`], 1.2), which keeps more of
//!   the long links between topics;
//! - a new row takes `m` neighbours on layer 0, as hnswlib's `M`, leaving
//!   room in its list for the rows inserted after it;
//! - a neighbour whose list is full chooses again among its list and the
//!   new row by the same rule (hnswlib's reverse update), where hnsw_rs
//!   kept the nearest.
//!
//! A level is drawn from the row number (a seeded hash), so the layers are
//! a function of the rows; which neighbours a row gets also depends on
//! what other threads had inserted (as with any parallel HNSW build).

use std::cell::RefCell;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, RwLock};

use super::flat::{FlatGraph, Visited};
use crate::simd::{dot_i8, Prefetch};

/// DiskANN's `alpha` of the neighbour choice: a candidate is dropped when
/// `ALPHA` times its distance to a kept neighbour is at most its distance
/// to the row (1 is algorithm 4's heuristic). Of 1.1-1.4, 1.2 found the
/// most exact neighbours of unjudged queries at every depth, on the real
/// corpus (docs/embeddings.md, "Choosing neighbours").
const ALPHA: f32 = 1.2;

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

/// A row's layer-0 record held locked: `[lock, len, slots...]`. The lock
/// is a spin lock (a compare-and-swap of the lock word, yielding the thread
/// after a while): it is held for the copy of at most `2 m` ids, or while
/// one list takes a new neighbour (a full list choosing again: at most
/// `2 m (2 m + 1) / 2` int8 distances), and two threads meet on a row
/// rarely.
struct RowLock<'a> {
    rec: &'a [AtomicU32],
}

impl<'a> RowLock<'a> {
    fn new(rec: &'a [AtomicU32]) -> Self {
        let mut spins = 0u32;
        while rec[0]
            .compare_exchange_weak(0, 1, Acquire, Relaxed)
            .is_err()
        {
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        RowLock { rec }
    }

    /// The list's ids.
    fn ids(&self) -> &[AtomicU32] {
        let len = (self.rec[1].load(Relaxed) as usize).min(self.rec.len() - 2);
        &self.rec[2..2 + len]
    }

    /// Every slot of the list.
    fn slots(&self) -> &[AtomicU32] {
        &self.rec[2..]
    }

    fn set_len(&self, len: usize) {
        self.rec[1].store(len as u32, Relaxed);
    }
}

impl Drop for RowLock<'_> {
    fn drop(&mut self) {
        self.rec[0].store(0, Release);
    }
}

/// Per-thread scratch: the visited rows of a layer search (the flat
/// search's stamps) and a copied neighbour list.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    list: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// An HNSW graph being built, with an int8 copy of every row's vector
/// (taken by [`GraphBuilder::grow`]).
pub(crate) struct GraphBuilder {
    m: usize,
    ef_construction: usize,
    levels: Vec<u8>,
    /// The most neighbours a row keeps on layer 0 (`2 m`).
    cap0: usize,
    /// Layer 0, in place: row `r`'s record is `rec0[r * (cap0 + 2)..]`:
    /// a lock word (held to read or change the list: [`RowLock`]), the
    /// list's length, then `cap0` neighbour slots, nearest first; their
    /// distances (f32 bits) are `ds0[r * cap0..]`. A search reads a row's
    /// list from one place in memory (the lock, length and ids share their
    /// cache lines) without following pointers.
    rec0: Vec<AtomicU32>,
    ds0: Vec<AtomicU32>,
    /// Layers 1 and up (a row of level `L` has `L` lists), nearest first.
    upper: Vec<Mutex<Vec<Vec<Near>>>>,
    /// Every row's vector in int8 (`dim` each), scaled so its largest
    /// component is 127, and the inverse of that scale: the distances the
    /// build measures (a quarter of the float vectors' memory traffic).
    dim: usize,
    q8: Vec<i8>,
    inv: Vec<f32>,
    /// The entry row and its level; `None` until the first insertion.
    entry: RwLock<Option<(u32, u8)>>,
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
    pub(crate) fn new(m: usize, ef_construction: usize) -> Self {
        let m = m.max(2);
        GraphBuilder {
            m,
            ef_construction: ef_construction.max(1),
            levels: Vec::new(),
            cap0: 2 * m,
            rec0: Vec::new(),
            ds0: Vec::new(),
            upper: Vec::new(),
            dim: 0,
            q8: Vec::new(),
            inv: Vec::new(),
            entry: RwLock::new(None),
        }
    }

    /// Room for rows up to `rows` (their levels drawn, their vectors
    /// quantised, no neighbours yet).
    pub(crate) fn grow<'v>(&mut self, rows: usize, vector: &impl Fn(usize) -> &'v [f32]) {
        for r in self.levels.len()..rows {
            self.add_row(level_of(r, self.m), vector(r));
        }
    }

    fn add_row(&mut self, level: u8, v: &[f32]) {
        if self.dim == 0 {
            self.dim = v.len();
        }
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { 127.0 / max } else { 1.0 };
        self.q8.extend(
            (0..self.dim).map(|i| (v.get(i).copied().unwrap_or(0.0) * scale).round() as i8),
        );
        self.inv.push(1.0 / scale);
        self.levels.push(level);
        self.rec0
            .extend((0..self.cap0 + 2).map(|_| AtomicU32::new(0)));
        self.ds0.extend((0..self.cap0).map(|_| AtomicU32::new(0)));
        self.upper
            .push(Mutex::new(vec![Vec::new(); level as usize]));
    }

    /// The graph of `flat` (its rows `0..flat.rows()`, their vectors read
    /// by `vector`), to be extended by [`GraphBuilder::grow`] and
    /// [`GraphBuilder::insert`]; each list's distances are measured again.
    pub(crate) fn of_flat<'v>(
        flat: &FlatGraph,
        m: usize,
        ef_construction: usize,
        vector: &(impl Fn(usize) -> &'v [f32] + Sync),
    ) -> Self {
        let mut b = GraphBuilder::new(m, ef_construction);
        for r in 0..flat.rows() {
            let level = flat.level(r);
            b.add_row(level, vector(r));
        }
        for r in 0..flat.rows() {
            let level = flat.level(r);
            let lists: Vec<Vec<Near>> = (0..=level)
                .map(|l| {
                    let mut list: Vec<Near> = flat
                        .neighbours_of(r as u32, l)
                        .iter()
                        .map(|&n| Near {
                            d: b.dist(r as u32, n),
                            row: n,
                        })
                        .collect();
                    list.sort();
                    list
                })
                .collect();
            for (l, list) in lists.iter().enumerate() {
                b.set_list(r as u32, l as u8, list);
            }
        }
        *b.entry.get_mut().unwrap_or_else(|e| e.into_inner()) =
            Some((flat.entry_row(), flat.level(flat.entry_row() as usize)));
        b
    }

    /// Row `row`'s int8 vector.
    fn q(&self, row: u32) -> &[i8] {
        let at = row as usize * self.dim;
        &self.q8[at..at + self.dim]
    }

    /// The distance the build measures between two rows: `1 - a.b` on
    /// their int8 vectors, rescaled, clamped at 0.
    fn dist(&self, a: u32, b: u32) -> f32 {
        let d = dot_i8(self.q(a), self.q(b)) as f32 * self.inv[a as usize] * self.inv[b as usize];
        (1.0 - d).max(0.0)
    }

    fn max_neighbours(&self, layer: u8) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// Row `row`'s layer-0 record, locked.
    fn lock0(&self, row: u32) -> RowLock<'_> {
        let at = row as usize * (self.cap0 + 2);
        RowLock::new(&self.rec0[at..at + self.cap0 + 2])
    }

    /// Copy the neighbours of `row` on `layer` into `out`.
    fn read_list(&self, row: u32, layer: u8, out: &mut Vec<u32>) {
        out.clear();
        if layer == 0 {
            let rec = self.lock0(row);
            out.extend(rec.ids().iter().map(|a| a.load(Relaxed)));
            return;
        }
        let lists = self.upper[row as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(l) = lists.get(layer as usize - 1) {
            out.extend(l.iter().map(|n| n.row));
        }
    }

    /// Change the neighbours of `row` on `layer` (nearest first) by `f`,
    /// under the row's lock; nothing for a layer above the row's level.
    fn edit_list(&self, row: u32, layer: u8, f: impl FnOnce(&mut Vec<Near>)) {
        if layer == 0 {
            let rec = self.lock0(row);
            let ds = &self.ds0[row as usize * self.cap0..][..self.cap0];
            let mut list: Vec<Near> = rec
                .ids()
                .iter()
                .zip(ds)
                .map(|(id, d)| Near {
                    d: f32::from_bits(d.load(Relaxed)),
                    row: id.load(Relaxed),
                })
                .collect();
            f(&mut list);
            list.truncate(self.cap0);
            for (i, n) in list.iter().enumerate() {
                rec.slots()[i].store(n.row, Relaxed);
                ds[i].store(n.d.to_bits(), Relaxed);
            }
            rec.set_len(list.len());
            return;
        }
        let mut lists = self.upper[row as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(l) = lists.get_mut(layer as usize - 1) {
            f(l);
        }
    }

    /// Make `list` (nearest first) the neighbours of `row` on `layer`.
    fn set_list(&self, row: u32, layer: u8, list: &[Near]) {
        self.edit_list(row, layer, |l| {
            l.clear();
            l.extend_from_slice(list);
        });
    }

    /// Insert `row` (each row once, after [`Self::grow`] made room for it).
    pub(crate) fn insert(&self, row: usize) {
        let q = row as u32;
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
            let mut d_pivot = self.dist(q, pivot);
            // Greedy descent on the layers above the new row's.
            for layer in ((level + 1)..=top).rev() {
                loop {
                    let mut moved = false;
                    self.read_list(pivot, layer, &mut s.list);
                    for &n in &s.list {
                        let d = self.dist(q, n);
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
                let mut found = self.search_layer(q, &entries, layer, s);
                // `m` on every layer (hnswlib's M): a layer-0 list holds
                // `2 m`, room for rows inserted later.
                let chosen = self.choose(&found, self.m);
                self.set_list(row as u32, layer, &chosen);
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

    /// The `ef_construction` rows nearest row `q` on `layer` found from
    /// `entries`, nearest first (algorithm 2).
    fn search_layer(&self, q: u32, entries: &[Near], layer: u8, s: &mut Scratch) -> Vec<Near> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let ef = self.ef_construction;
        s.visited.start(self.levels.len());
        let mut found: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
        let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(ef);
        for e in entries {
            if s.visited.insert(e.row) {
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
                if !s.visited.has(n) {
                    prefetch.bytes(self.q(n));
                }
            }
            for &n in &list {
                if !s.visited.insert(n) {
                    continue;
                }
                let d = self.dist(q, n);
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

    /// At most `m` of `sorted` (nearest first) by algorithm 4's heuristic
    /// relaxed by [`ALPHA`]: a candidate is kept when `ALPHA` times its
    /// distance to every kept one is more than its distance to the base (a
    /// duplicate of a kept row is dropped).
    fn choose(&self, sorted: &[Near], m: usize) -> Vec<Near> {
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        for c in sorted {
            if kept.len() >= m {
                break;
            }
            if kept.iter().all(|k| ALPHA * self.dist(c.row, k.row) > c.d) {
                kept.push(*c);
            }
        }
        kept
    }

    /// Add `new` (at distance `d`) to the neighbours of `row` on `layer`;
    /// a full list chooses again among its rows and `new` ([`Self::choose`],
    /// hnswlib's reverse update), so it may drop `new` or keep fewer.
    fn link(&self, row: u32, new: u32, d: f32, layer: u8) {
        let max = self.max_neighbours(layer);
        self.edit_list(row, layer, |list| {
            if list.iter().any(|n| n.row == new) {
                return;
            }
            let at = list.partition_point(|n| *n < Near { d, row: new });
            list.insert(at, Near { d, row: new });
            if list.len() > max {
                *list = self.choose(list, max);
            }
        });
    }

    /// The graph of the rows inserted so far, flat: rows `0..rows` (every
    /// one inserted).
    pub(crate) fn to_flat(&self, rows: usize) -> Result<FlatGraph, String> {
        let entry = self
            .entry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ok_or("the graph is empty")?;
        let mut buf = Vec::new();
        let lists: Vec<Vec<Vec<u32>>> = (0..rows)
            .map(|r| {
                self.read_list(r as u32, 0, &mut buf);
                let mut all = vec![buf.clone()];
                let upper = self.upper[r].lock().unwrap_or_else(|e| e.into_inner());
                all.extend(upper.iter().map(|l| l.iter().map(|n| n.row).collect()));
                all
            })
            .collect();
        FlatGraph::of_lists(&self.levels[..rows], entry.0, &lists)
    }
}
