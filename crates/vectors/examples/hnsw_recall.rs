//! Diagnostic: HNSW recall@10 against exact search under different build
//! choices, on exported vectors (`hubsearch export --out DIR --queries Q`).
//!   cargo run --release -p hubsearch-vectors --example hnsw_recall -- DIR
use std::time::Instant;

use hnsw_rs::prelude::{Distance, Hnsw};

#[derive(Clone, Copy, Default)]
struct UnitDot;
impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()).max(0.0)
    }
}

fn read(path: &str) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn main() {
    let dir = std::env::args().nth(1).expect("DIR");
    let dim = 384;
    let v = read(&format!("{dir}/vectors.f32"));
    let q = read(&format!("{dir}/query_vectors.f32"));
    let n = v.len() / dim;
    let rows: Vec<&[f32]> = v.chunks_exact(dim).collect();
    // Queries: the dev queries and 200 card vectors slightly perturbed.
    let mut queries: Vec<Vec<f32>> = q.chunks_exact(dim).map(|c| c.to_vec()).collect();
    for i in (0..n).step_by(n / 200) {
        let mut x: Vec<f32> = rows[i]
            .iter()
            .enumerate()
            .map(|(j, a)| a + if j % 7 == 0 { 0.05 } else { 0.0 })
            .collect();
        let norm = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        x.iter_mut().for_each(|a| *a /= norm);
        queries.push(x);
    }
    let exact: Vec<Vec<usize>> = queries
        .iter()
        .map(|qv| {
            let mut s: Vec<(f32, usize)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (UnitDot.eval(qv, r), i))
                .collect();
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            s.iter().take(10).map(|x| x.1).collect()
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
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
    for (m, efc, chunk, parallel) in [
        (16, 100, 4096, true),
        (16, 100, n, true),
        (16, 100, n, false),
        (16, 200, n, true),
        (24, 200, n, true),
        (32, 200, n, true),
    ] {
        let t = Instant::now();
        let g: Hnsw<f32, UnitDot> = Hnsw::new(m, n.max(1024), 16, efc, UnitDot);
        for part in order.chunks(chunk) {
            let items: Vec<(&[f32], usize)> = part.iter().map(|&i| (rows[i], i)).collect();
            if parallel {
                pool.install(|| g.parallel_insert_slice(&items));
            } else {
                for it in &items {
                    g.insert_slice(*it);
                }
            }
        }
        let build = t.elapsed().as_secs_f64();
        for ef in [64, 128, 256] {
            let t = Instant::now();
            let mut hit = 0;
            for (qv, ex) in queries.iter().zip(&exact) {
                let r = g.search(qv, 10, ef);
                hit += r.iter().filter(|nb| ex.contains(&nb.d_id)).count();
            }
            let per = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
            println!("{variant} m {m} efc {efc} chunk {chunk} parallel {parallel}: build {build:.1}s; ef {ef}: recall@10 {:.4}, {per:.3} ms/query", hit as f64 / (10 * queries.len()) as f64);
        }
    }
}
