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
