//! Plackett-Luce probabilities of the `stochastic` policy's rankings
//! (docs/ranking.md, `stochastic`; docs/ledger.md, Page log): the factor of
//! each position given the items above it, and position marginals by
//! sampling.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// For logits listed in ranking order (rank 1 first), the probability of
/// each position's item given the items above it:
/// `exp(l_p) / sum_{q >= p} exp(l_q)`. Their product is the probability of
/// the whole ranking; the product of a page's factors, of the page given
/// the ranks above it.
pub fn sequential_probabilities(logits_in_order: &[f64]) -> Vec<f64> {
    let n = logits_in_order.len();
    let mut suffix = vec![f64::NEG_INFINITY; n + 1];
    for p in (0..n).rev() {
        let (a, b) = (logits_in_order[p], suffix[p + 1]);
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        suffix[p] = hi + (lo - hi).exp().ln_1p();
    }
    (0..n)
        .map(|p| (logits_in_order[p] - suffix[p]).exp())
        .collect()
}

/// `m[i][k]`: the probability that item `i` is at 0-based position `k < depth`
/// in a Plackett-Luce ranking with these logits, estimated from `samples`
/// rankings drawn by the Gumbel-max trick (seeded).
pub fn marginals(logits: &[f64], depth: usize, samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let n = logits.len();
    let depth = depth.min(n);
    let mut m = vec![vec![0.0; depth]; n];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(n);
    for _ in 0..samples {
        keyed.clear();
        for (i, l) in logits.iter().enumerate() {
            let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            keyed.push((l - (-u.ln()).ln(), i));
        }
        keyed.select_nth_unstable_by(depth.saturating_sub(1), |a, b| b.0.total_cmp(&a.0));
        keyed[..depth].sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        for (k, (_, i)) in keyed[..depth].iter().enumerate() {
            m[*i][k] += 1.0;
        }
    }
    let s = samples.max(1) as f64;
    for row in &mut m {
        for v in row.iter_mut() {
            *v /= s;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_factors_by_hand() {
        // Weights e^1, e^0, e^0 -> P(first) = e / (e + 2); then 1/2; then 1.
        let p = sequential_probabilities(&[1.0, 0.0, 0.0]);
        let e = 1f64.exp();
        assert!((p[0] - e / (e + 2.0)).abs() < 1e-12);
        assert!((p[1] - 0.5).abs() < 1e-12);
        assert!((p[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn marginals_match_the_exact_first_position_and_sum_to_one() {
        let logits = [2.0, 1.0, 0.0, -1.0];
        let m = marginals(&logits, 3, 200_000, 3);
        let z: f64 = logits.iter().map(|l: &f64| l.exp()).sum();
        for (i, l) in logits.iter().enumerate() {
            assert!((m[i][0] - l.exp() / z).abs() < 0.005, "{i}: {}", m[i][0]);
        }
        // Each position holds exactly one item.
        let cols = (0..3).map(|k| m.iter().map(|row| row[k]).sum::<f64>());
        for col in cols {
            assert!((col - 1.0).abs() < 1e-9);
        }
        // Item 0 at position 1 (0-based): sum over the first item j != 0 of
        // P(j first) * P(0 first among the rest).
        let w: Vec<f64> = logits.iter().map(|l| l.exp()).collect();
        let exact: f64 = (1..4).map(|j| w[j] / z * w[0] / (z - w[j])).sum();
        assert!((m[0][1] - exact).abs() < 0.005, "{} vs {exact}", m[0][1]);
    }
}
