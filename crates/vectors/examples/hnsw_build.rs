//! Benchmark: HNSW graph build time and recall@10 on hashing stand-in
//! vectors of a generated hub (`hubsearch generate`), the scale curve's
//! vectors, without the text index:
//!   cargo run --release -p hubsearch-vectors --example hnsw_build -- HUB.jsonl N [THREADS] [EF_C]
//! Prints wall and CPU seconds of the build and recall@10 of 200 card
//! vectors, perturbed, against an exact scan, at ef_search 64/128/256
//! (64/128/192/256 for `own`).
//! With `own` (hubsearch's builder): `M=N` sets m, `EFS=a,b,..` the search
//! depths, `QUERIES=FILE` takes exported query vectors, `FOUND=FILE` writes
//! the rows each query found.
use std::io::BufRead;
use std::time::Instant;

use hnsw_rs::prelude::{Distance, Hnsw};
use hubsearch_vectors::embedder::{Embedder, HashEmbedder};
/// The graph's own distance (`1 - a.b` by the SIMD dot product).
use hubsearch_vectors::vector_index::UnitDot as FastDot;

mod common;

/// `1 - a.b` on int8 vectors quantized with one scale (`SCALE`).
#[derive(Clone, Copy, Default)]
struct Q8Dot;
static SCALE: std::sync::OnceLock<f32> = std::sync::OnceLock::new();
impl Distance<i8> for Q8Dot {
    fn eval(&self, a: &[i8], b: &[i8]) -> f32 {
        let s = SCALE.get().copied().unwrap_or(1.0);
        (1.0 - hubsearch_vectors::simd::dot_i8(a, b) as f32 / (s * s)).max(0.0)
    }
}

/// CPU seconds of the whole process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("HUB.jsonl");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    let ef_c: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(200);
    if path.ends_with(".f32") {
        // Exported vectors (`hubsearch export`): 384 floats each.
        let all = common::read_f32(path);
        let vectors: Vec<Vec<f32>> = all.chunks_exact(384).take(n).map(<[f32]>::to_vec).collect();
        let n = vectors.len();
        return build(&vectors, n, threads, ef_c, args.get(5).map(String::as_str));
    }
    let f = std::fs::File::open(path).expect("hub file");
    let texts: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .take(n)
        .map(|l| {
            hubsearch_core::record::parse_json(&l.expect("line"))
                .expect("card")
                .short_text()
        })
        .collect();
    let e = HashEmbedder::new(384);
    let t = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors: Vec<Vec<f32>> = refs
        .chunks(4096)
        .flat_map(|c| e.embed(c).expect("embed"))
        .collect();
    eprintln!(
        "{} vectors in {:.1} s",
        vectors.len(),
        t.elapsed().as_secs_f64()
    );
    build(&vectors, n, threads, ef_c, args.get(5).map(String::as_str));
}

fn build(vectors: &[Vec<f32>], n: usize, threads: usize, ef_c: usize, mode: Option<&str>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    if mode == Some("q8") {
        return q8(&pool, vectors, n, threads, ef_c);
    }
    if mode == Some("own") {
        return own(&pool, vectors, n, threads, ef_c);
    }
    let label = format!("build n={n} threads={threads} ef_c={ef_c}");
    let graph = timed_build(&pool, vectors, n, ef_c, FastDot, &label);
    // Recall of 200 perturbed card vectors.
    let (queries, exact) = queries_and_exact(&pool, vectors);
    for ef in [64, 128, 256] {
        let t = Instant::now();
        let mut hit = 0;
        for (q, ex) in queries.iter().zip(&exact) {
            let got = graph.search(q, 10, ef);
            hit += got.iter().filter(|g| ex.contains(&g.d_id)).count();
        }
        println!(
            "  recall@10 at ef {ef}: {:.3} ({:.2} ms/query)",
            hit as f64 / (10 * queries.len()) as f64,
            t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64
        );
    }
}

/// The graph of `vectors` (of a hub of `n`) with distance `dist`, built on
/// `pool`; its wall and CPU time printed after `label`.
fn timed_build<T, D>(
    pool: &rayon::ThreadPool,
    vectors: &[Vec<T>],
    n: usize,
    ef_c: usize,
    dist: D,
    label: &str,
) -> Hnsw<'static, T, D>
where
    T: Clone + Send + Sync + 'static,
    D: Distance<T> + Send + Sync,
{
    let graph = Hnsw::new(16, n.max(1024), 16, ef_c, dist);
    let items: Vec<(&[T], usize)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_slice(), i))
        .collect();
    let (t, c) = (Instant::now(), cpu_seconds());
    pool.install(|| graph.parallel_insert_slice(&items));
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    println!(
        "{label}: wall {wall:.1} s, cpu {cpu:.1} s ({:.2} cores), {:.0} us/insert",
        cpu / wall,
        wall * 1e6 / n as f64
    );
    graph
}

fn q8(pool: &rayon::ThreadPool, vectors: &[Vec<f32>], n: usize, threads: usize, ef_c: usize) {
    let max = vectors
        .iter()
        .flat_map(|v| v.iter())
        .fold(0f32, |m, x| m.max(x.abs()));
    let s = 127.0 / max;
    SCALE.set(s).ok();
    let q: Vec<Vec<i8>> = vectors
        .iter()
        .map(|v| v.iter().map(|x| (x * s).round() as i8).collect())
        .collect();
    let label = format!("q8 build n={n} threads={threads} ef_c={ef_c} max={max:.3}");
    let graph = timed_build(pool, &q, n, ef_c, Q8Dot, &label);
    let (queries, exact) = queries_and_exact(pool, vectors);
    for ef in [64, 128, 256] {
        for k in [10, 40] {
            let t = Instant::now();
            let mut hit = 0;
            for (qv, ex) in queries.iter().zip(&exact) {
                let qq: Vec<i8> = qv
                    .iter()
                    .map(|x| (x * s).round().clamp(-127.0, 127.0) as i8)
                    .collect();
                let got = graph.search(&qq, k.max(10), ef.max(k));
                // Rescore by the exact dot, keep 10.
                let mut r: Vec<(f32, usize)> = got
                    .iter()
                    .map(|g| (FastDot.eval(qv, &vectors[g.d_id]), g.d_id))
                    .collect();
                r.sort_by(|a, b| a.0.total_cmp(&b.0));
                hit += r.iter().take(10).filter(|g| ex.contains(&g.1)).count();
            }
            println!(
                "  recall@10 at ef {ef}, {k} rescored: {:.3} ({:.2} ms/query)",
                hit as f64 / (10 * queries.len()) as f64,
                t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64
            );
        }
    }
}

/// 200 card vectors, perturbed and renormalised, and the exact top 10 of
/// each by an exhaustive scan.
fn queries_and_exact(
    pool: &rayon::ThreadPool,
    vectors: &[Vec<f32>],
) -> (Vec<Vec<f32>>, Vec<Vec<usize>>) {
    let n = vectors.len();
    // QUERIES=FILE: the exported query vectors (`hubsearch export
    // --queries`) instead of perturbed cards.
    let queries: Vec<Vec<f32>> = match std::env::var("QUERIES") {
        Ok(path) => common::read_f32(&path)
            .chunks_exact(384)
            .map(<[f32]>::to_vec)
            .collect(),
        Err(_) => (0..n)
            .step_by((n / 200).max(1))
            .map(|i| common::perturbed(&vectors[i]))
            .collect(),
    };
    let exact = common::exact_top10(pool, &queries, vectors, &FastDot);
    (queries, exact)
}

/// hubsearch's own insertion (`vector_index/build.rs`) on the same vectors.
fn own(pool: &rayon::ThreadPool, vectors: &[Vec<f32>], n: usize, threads: usize, ef_c: usize) {
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    let (queries, exact) = queries_and_exact(pool, vectors);
    // EFS=a,b,..: the search depths (64, 128, 192, 256 unless set).
    let efs: Vec<usize> = std::env::var("EFS")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|_| vec![64, 128, 192, 256]);
    // M=N: the graph's m (16 unless set).
    let m: usize = std::env::var("M")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let c = cpu_seconds();
    let (wall, found) = hubsearch_vectors::vector_index::compare_build(
        &flat,
        384,
        hubsearch_vectors::vector_index::HnswParams {
            m,
            ef_construction: ef_c,
            ..Default::default()
        },
        threads,
        &queries,
        10,
        &efs,
    );
    let cpu = cpu_seconds() - c;
    println!(
        "own build n={n} m={m} threads={threads} ef_c={ef_c}: wall {wall:.1} s, cpu {cpu:.1} s (with the searches), {:.0} us/insert",
        wall * 1e6 / n as f64
    );
    if let Ok(path) = std::env::var("FOUND") {
        // FOUND=FILE: the rows found at each ef, one line per query.
        let mut out = String::new();
        for (ef, per_query) in efs.iter().zip(&found) {
            for got in per_query {
                let rows: Vec<String> = got.iter().map(usize::to_string).collect();
                out += &format!("{ef}\t{}\n", rows.join(" "));
            }
        }
        std::fs::write(path, out).expect("FOUND file");
    }
    for (ef, per_query) in efs.iter().zip(found) {
        let hit: usize = per_query
            .iter()
            .zip(&exact)
            .map(|(got, ex)| got.iter().filter(|g| ex.contains(g)).count())
            .sum();
        println!(
            "  recall@10 at ef {ef}: {:.3}",
            hit as f64 / (10 * queries.len()) as f64
        );
    }
}
