//! Diagnostic: HNSW recall@10 against exact search under different build
//! choices, on exported vectors (`hubsearch export --out DIR --queries Q`).
//!   cargo run --release -p hubsearch-vectors --example hnsw_recall -- DIR
use std::time::Instant;

use hnsw_rs::prelude::{Distance, Hnsw};

mod common;

/// `1 - a.b` by the crate's exact dot product (what similarities use).
#[derive(Clone, Copy, Default)]
struct UnitDot;
impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - hubsearch_vectors::embedder::dot(a, b)).max(0.0)
    }
}

/// `1 - a.b` by the graph's SIMD dot product (`simd.rs`).
#[derive(Clone, Copy, Default)]
struct FastDot;
impl Distance<f32> for FastDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - hubsearch_vectors::simd::fast_dot(a, b)).max(0.0)
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("DIR");
    let dim = 384;
    let v = common::read_f32(&format!("{dir}/vectors.f32"));
    let q = common::read_f32(&format!("{dir}/query_vectors.f32"));
    let n = v.len() / dim;
    let rows: Vec<&[f32]> = v.chunks_exact(dim).collect();
    // Queries: the dev queries and 200 card vectors slightly perturbed.
    let mut queries: Vec<Vec<f32>> = q.chunks_exact(dim).map(|c| c.to_vec()).collect();
    for i in (0..n).step_by(n / 200) {
        queries.push(common::perturbed(rows[i]));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let exact = common::exact_top10(&pool, &queries, &rows, &UnitDot);
    let mut order: Vec<usize> = (0..n).collect();
    let variant = std::env::args().nth(2).unwrap_or_default();
    if variant.contains("shuffle") {
        // deterministic shuffle
        let mut s = 12345u64;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
    }
    // Variants: `shuffle` (insertion order unrelated to content), `fast`
    // (the SIMD distance), `keep` (pruned candidates kept), `quick` (only m 16 at ef_construction 200 and
    // the values given after it).
    let quick = variant.contains("quick");
    let mut configs = vec![(16, 200, n, true)];
    if quick {
        for efc in std::env::args().skip(3) {
            configs.push((16, efc.parse().expect("ef_construction"), n, true));
        }
    } else {
        configs = vec![
            (16, 100, 4096, true),
            (16, 100, n, true),
            (16, 100, n, false),
            (16, 200, n, true),
            (24, 200, n, true),
            (32, 200, n, true),
        ];
    }
    let run = Run {
        rows: &rows,
        order: &order,
        queries: &queries,
        exact: &exact,
        pool: &pool,
        variant: &variant,
    };
    for (m, efc, chunk, parallel) in configs {
        if variant.contains("fast") {
            run.build(FastDot, m, efc, chunk, parallel);
        } else {
            run.build(UnitDot, m, efc, chunk, parallel);
        }
    }
}

struct Run<'a> {
    rows: &'a [&'a [f32]],
    order: &'a [usize],
    queries: &'a [Vec<f32>],
    exact: &'a [Vec<usize>],
    pool: &'a rayon::ThreadPool,
    variant: &'a str,
}

impl Run<'_> {
    /// Build a graph with distance `d` and print its build time and recall.
    fn build<D: Distance<f32> + Send + Sync>(
        &self,
        d: D,
        m: usize,
        efc: usize,
        chunk: usize,
        parallel: bool,
    ) {
        let n = self.rows.len();
        let t = Instant::now();
        let mut g: Hnsw<f32, D> = Hnsw::new(m, n.max(1024), 16, efc, d);
        // `keep`: neighbour lists filled up with the candidates the
        // heuristic pruned (hnsw_rs's `keeping_pruned`).
        g.set_keeping_pruned(self.variant.contains("keep"));
        for part in self.order.chunks(chunk) {
            let items: Vec<(&[f32], usize)> = part.iter().map(|&i| (self.rows[i], i)).collect();
            if parallel {
                self.pool.install(|| g.parallel_insert_slice(&items));
            } else {
                for it in &items {
                    g.insert_slice(*it);
                }
            }
        }
        let build = t.elapsed().as_secs_f64();
        let variant = self.variant;
        for ef in [64, 128, 192, 256] {
            let t = Instant::now();
            let mut hit = 0;
            for (qv, ex) in self.queries.iter().zip(self.exact) {
                let r = g.search(qv, 10, ef);
                hit += r.iter().filter(|nb| ex.contains(&nb.d_id)).count();
            }
            let per = t.elapsed().as_secs_f64() * 1e3 / self.queries.len() as f64;
            println!("{variant} m {m} efc {efc} chunk {chunk} parallel {parallel}: build {build:.1}s; ef {ef}: recall@10 {:.4}, {per:.3} ms/query", hit as f64 / (10 * self.queries.len()) as f64);
        }
    }
}
