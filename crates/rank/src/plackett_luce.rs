//! Plackett-Luce probabilities of the `stochastic` policy's rankings
//! (docs/ranking.md, `stochastic`; docs/ledger.md, Page log): the factor of
//! each position given the items above it, the exact probability of a
//! ranking's prefix, and placement probabilities (exact at the first two
//! positions, by conditional Monte Carlo with a stated error bound below).

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

/// `ln P(the ranking starts with `prefix`, in that order)` under
/// Plackett-Luce with these logits (items indexed as in `logits`): the
/// product formula `prod_j w_{p_j} / sum_{i not in p_1..p_{j-1}} w_i`
/// (Plackett 1975; Luce 1959), each denominator summed afresh over the
/// items left (no cancellation). `-inf` when an item repeats or is out of
/// range. O(n * |prefix|).
pub fn prefix_log_probability(logits: &[f64], prefix: &[usize]) -> f64 {
    let mut used = vec![false; logits.len()];
    let mut total = 0.0;
    for &p in prefix {
        if p >= logits.len() || used[p] {
            return f64::NEG_INFINITY;
        }
        let rest = log_sum_exp(
            logits
                .iter()
                .zip(&used)
                .filter(|(_, u)| !**u)
                .map(|(l, _)| *l),
        );
        total += logits[p] - rest;
        used[p] = true;
    }
    total
}

fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A placement probability and the half-width of its 95% interval (0 when
/// exact).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub p: f64,
    pub half_width: f64,
    /// Sampled prefixes it was estimated from (0: exact).
    pub samples: usize,
}

/// How [`placement_probabilities`] samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Stop once every estimate's 95% half-width is at most this fraction
    /// of the estimate.
    pub rel_tol: f64,
    /// Draw at least this many prefixes, and at most `max_samples`.
    pub min_samples: usize,
    pub max_samples: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            rel_tol: 0.01,
            min_samples: 256,
            max_samples: 65_536,
            seed: 0,
        }
    }
}

/// For each `(item, position)` pair (0-based), the probability that a
/// Plackett-Luce ranking with these logits puts `item` at `position`
/// (docs/metrics.md, Off-policy estimates). Position 0 is exact (the
/// softmax), position 1 exact (`sum_{j != i} P(j first) w_i / (Z - w_j)`,
/// O(n)); deeper positions are estimated by conditional Monte Carlo: draw
/// the `position` items above by the Gumbel-max trick and average
/// `P(item next | those above) = w_item / (weight left)` (0 when the item
/// is among them), a Rao-Blackwellisation of counting placements (as
/// PL-Rank, Oosterhuis SIGIR 2021, computes placement probabilities from
/// sampled prefixes). Unlike counting it is never 0 for an item outside
/// the prefix, so rare placements get a finite, accurate weight. Sampling
/// stops once every estimate's 95% half-width (normal approximation,
/// `1.96 * sd / sqrt(m)`) is within `rel_tol` of it, or at `max_samples`.
pub fn placement_probabilities(
    logits: &[f64],
    pairs: &[(usize, usize)],
    sampling: &Sampling,
) -> Vec<Placement> {
    let n = logits.len();
    let mut out = vec![
        Placement {
            p: 0.0,
            half_width: 0.0,
            samples: 0
        };
        pairs.len()
    ];
    if n == 0 {
        return out;
    }
    let lmax = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logits.iter().map(|l| (l - lmax).exp()).collect();
    let z: f64 = w.iter().sum();
    for (o, &(item, pos)) in out.iter_mut().zip(pairs) {
        if item >= n || pos >= n {
            continue;
        }
        match pos {
            0 => o.p = w[item] / z,
            1 => {
                o.p = (0..n)
                    .filter(|&j| j != item)
                    .map(|j| w[j] / z * w[item] / rest(&w, z, &[j]))
                    .sum();
            }
            _ => {}
        }
    }
    let sampled_pairs: Vec<(usize, usize, usize)> = pairs
        .iter()
        .enumerate()
        .filter(|(_, &(i, k))| i < n && k < n && k >= 2)
        .map(|(j, &(i, k))| (j, i, k))
        .collect();
    if sampled_pairs.is_empty() {
        return out;
    }
    let depth = sampled_pairs.iter().map(|p| p.2).max().unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
    let (mut sum, mut sq) = (
        vec![0.0f64; sampled_pairs.len()],
        vec![0.0f64; sampled_pairs.len()],
    );
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(n);
    let mut rank_of = vec![usize::MAX; n];
    let mut left = vec![0.0f64; depth + 1];
    let mut m = 0usize;
    let max = sampling.max_samples.max(sampling.min_samples).max(2);
    while m < max {
        for _ in 0..256.min(max - m) {
            keyed.clear();
            for (i, l) in logits.iter().enumerate() {
                let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                keyed.push((l - (-u.ln()).ln(), i));
            }
            keyed.select_nth_unstable_by(depth - 1, |a, b| b.0.total_cmp(&a.0));
            keyed[..depth].sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            let prefix: Vec<usize> = keyed[..depth].iter().map(|k| k.1).collect();
            for (r, &i) in prefix.iter().enumerate() {
                rank_of[i] = r;
            }
            // The weight left after the first k items, for every k.
            left[0] = z;
            for k in 1..=depth {
                let l = left[k - 1] - w[prefix[k - 1]];
                // Cancellation: sum what is left afresh.
                left[k] = if l > 1e-9 * z {
                    l
                } else {
                    rest(&w, z, &prefix[..k])
                };
            }
            for (s, &(_, item, pos)) in sampled_pairs.iter().enumerate() {
                let x = if rank_of[item] < pos {
                    0.0
                } else {
                    w[item] / left[pos]
                };
                sum[s] += x;
                sq[s] += x * x;
            }
            for &i in &prefix {
                rank_of[i] = usize::MAX;
            }
            m += 1;
        }
        if m >= sampling.min_samples {
            let done = sampled_pairs.iter().enumerate().all(|(s, _)| {
                let (mean, hw) = mean_hw(sum[s], sq[s], m);
                hw <= sampling.rel_tol * mean
            });
            if done {
                break;
            }
        }
    }
    for (s, &(j, _, _)) in sampled_pairs.iter().enumerate() {
        let (mean, hw) = mean_hw(sum[s], sq[s], m);
        out[j] = Placement {
            p: mean,
            half_width: hw,
            samples: m,
        };
    }
    out
}

/// The weight of the items not in `taken`, summed afresh (or by
/// subtraction when that loses nothing).
fn rest(w: &[f64], z: f64, taken: &[usize]) -> f64 {
    let sub: f64 = taken.iter().map(|&i| w[i]).sum();
    if z - sub > 1e-9 * z {
        return z - sub;
    }
    w.iter()
        .enumerate()
        .filter(|(i, _)| !taken.contains(i))
        .map(|(_, x)| x)
        .sum()
}

fn mean_hw(sum: f64, sq: f64, m: usize) -> (f64, f64) {
    let mf = m as f64;
    let mean = sum / mf;
    let var = ((sq / mf - mean * mean) * mf / (mf - 1.0).max(1.0)).max(0.0);
    (mean, 1.96 * (var / mf).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ordered top-`k` prefix of `0..n` with its probability, written
    /// from the product formula with plain weights (no shared code).
    fn enumerate(w: &[f64], k: usize) -> Vec<(Vec<usize>, f64)> {
        fn go(
            w: &[f64],
            k: usize,
            prefix: &mut Vec<usize>,
            p: f64,
            out: &mut Vec<(Vec<usize>, f64)>,
        ) {
            if prefix.len() == k {
                out.push((prefix.clone(), p));
                return;
            }
            let left: f64 = (0..w.len())
                .filter(|i| !prefix.contains(i))
                .map(|i| w[i])
                .sum();
            for i in 0..w.len() {
                if !prefix.contains(&i) {
                    prefix.push(i);
                    go(w, k, prefix, p * w[i] / left, out);
                    prefix.pop();
                }
            }
        }
        let mut out = Vec::new();
        go(w, k, &mut Vec::new(), 1.0, &mut out);
        out
    }

    #[test]
    fn prefix_probabilities_and_marginals_match_enumeration() {
        let logits = [2.0, 1.5, 0.0, -1.0, -3.0, 0.7];
        let w: Vec<f64> = logits.iter().map(|l: &f64| l.exp()).collect();
        let all = enumerate(&w, 4);
        let total: f64 = all.iter().map(|a| a.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        for (prefix, p) in &all {
            let ln = prefix_log_probability(&logits, prefix);
            assert!(
                (ln.exp() - p).abs() < 1e-12 * p.max(1e-300) + 1e-15,
                "{prefix:?}"
            );
        }
        assert_eq!(prefix_log_probability(&logits, &[1, 1]), f64::NEG_INFINITY);
        // Marginals of every item at positions 0..4 from the enumeration.
        let mut truth = [[0.0f64; 4]; 6];
        for (prefix, p) in &all {
            for (k, &i) in prefix.iter().enumerate() {
                truth[i][k] += p;
            }
        }
        let pairs: Vec<(usize, usize)> = (0..6).flat_map(|i| (0..4).map(move |k| (i, k))).collect();
        let s = Sampling {
            rel_tol: 0.002,
            min_samples: 1000,
            max_samples: 400_000,
            seed: 9,
        };
        let got = placement_probabilities(&logits, &pairs, &s);
        let mut outside = 0;
        for (g, &(i, k)) in got.iter().zip(&pairs) {
            let t = truth[i][k];
            if k < 2 {
                assert_eq!(g.samples, 0);
                assert!((g.p - t).abs() < 1e-12, "({i},{k}) {} vs {t}", g.p);
            } else {
                assert!(g.samples >= 1000);
                // Within 3 half-widths, and the half-width within tolerance
                // unless sampling hit its cap.
                assert!(
                    (g.p - t).abs() <= 1.5 * g.half_width + 1e-12,
                    "({i},{k}) {g:?} vs {t}"
                );
                if (g.p - t).abs() > g.half_width {
                    outside += 1;
                }
            }
        }
        // 12 sampled pairs at 95%: a few may fall outside their interval.
        assert!(outside <= 3, "{outside} of 12 outside their 95% intervals");
    }

    #[test]
    fn rare_placements_get_accurate_finite_probabilities() {
        // 200 candidates at T = 0.1: the least relevant item at rank 5 has
        // a probability far below any count-based estimate's floor.
        let logits: Vec<f64> = (0..200).map(|i| (1.0 - i as f64 / 200.0) / 0.1).collect();
        let s = Sampling {
            rel_tol: 0.02,
            ..Sampling::default()
        };
        let got = placement_probabilities(&logits, &[(199, 4), (0, 4), (199, 0)], &s);
        assert!(got[0].p > 0.0 && got[0].p < 1e-4, "{:?}", got[0]);
        assert!(got[0].half_width <= 0.02 * got[0].p);
        // At rank 1 the exact softmax.
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        assert!((got[2].p - logits[199].exp() / z).abs() < 1e-15);
    }

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
