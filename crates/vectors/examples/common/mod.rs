//! What the HNSW examples share: exported vectors read back, and card
//! vectors perturbed into queries near them.

/// The little-endian f32s of a file (`hubsearch export`'s `vectors.f32`
/// and `query_vectors.f32`).
pub fn read_f32(path: &str) -> Vec<f32> {
    std::fs::read(path)
        .expect("vectors file")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A query near a card's vector `v`: every seventh component raised by
/// 0.05, then renormalised.
pub fn perturbed(v: &[f32]) -> Vec<f32> {
    let mut x: Vec<f32> = v
        .iter()
        .enumerate()
        .map(|(j, a)| a + if j % 7 == 0 { 0.05 } else { 0.0 })
        .collect();
    let norm = x.iter().map(|a| a * a).sum::<f32>().sqrt();
    x.iter_mut().for_each(|a| *a /= norm);
    x
}

/// The 10 rows nearest each query by `dist` (an exhaustive scan on
/// `pool`), nearest first, ties to the lower row.
pub fn exact_top10<R, D>(
    pool: &rayon::ThreadPool,
    queries: &[Vec<f32>],
    rows: &[R],
    dist: &D,
) -> Vec<Vec<usize>>
where
    R: AsRef<[f32]> + Sync,
    D: hnsw_rs::prelude::Distance<f32> + Sync,
{
    use rayon::prelude::*;
    let order = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    pool.install(|| {
        queries
            .par_iter()
            .map(|q| {
                let mut s: Vec<(f32, usize)> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (dist.eval(q, r.as_ref()), i))
                    .collect();
                if s.len() > 10 {
                    s.select_nth_unstable_by(10, order);
                    s.truncate(10);
                }
                s.sort_by(order);
                s.into_iter().map(|x| x.1).collect()
            })
            .collect()
    })
}
