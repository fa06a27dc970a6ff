//! How concentrated a quantity (downloads, exposure, calls, income) is:
//! Gini, top-k shares, tail share (docs/metrics.md, Concentration).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Gini coefficient of non-negative values (zeros included):
/// `G = sum_i (2i - n - 1) x_i / (n * sum x)` over `x` sorted ascending,
/// i = 1..n. 0 = perfectly equal; (n-1)/n = one item holds everything.
/// Returns 0 for an empty or all-zero vector.
pub fn gini(values: &[f64]) -> f64 {
    let n = values.len();
    // Sorted before summing, so the result does not depend on the input's
    // order (bit for bit).
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    let total: f64 = x.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let nf = n as f64;
    let acc: f64 = x
        .iter()
        .enumerate()
        .map(|(i, v)| (2.0 * (i as f64 + 1.0) - nf - 1.0) * v)
        .sum();
    acc / (nf * total)
}

/// Share of the total held by the `k` largest values.
pub fn top_k_share(values: &[f64], k: usize) -> f64 {
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut x = values.to_vec();
    x.sort_by(|a, b| b.total_cmp(a));
    x.iter().take(k).sum::<f64>() / total
}

/// Share of the total held by the top `fraction` (e.g. 0.01) of items
/// (at least one item).
pub fn top_fraction_share(values: &[f64], fraction: f64) -> f64 {
    let k = ((values.len() as f64 * fraction).ceil() as usize).max(1);
    top_k_share(values, k)
}

/// Share of the total of `values` held by the keys in `set` (0 when the
/// total is 0).
pub fn share_of(values: &HashMap<u64, f64>, set: &HashSet<u64>) -> f64 {
    // Summed in key order: a HashMap's order differs between runs, and
    // float addition is not associative (results must be bit-reproducible).
    let mut sorted: Vec<(u64, f64)> = values.iter().map(|(k, v)| (*k, *v)).collect();
    sorted.sort_unstable_by_key(|(k, _)| *k);
    let total: f64 = sorted.iter().map(|(_, v)| v).sum();
    if total <= 0.0 {
        return 0.0;
    }
    sorted
        .iter()
        .filter(|(k, _)| set.contains(k))
        .map(|(_, v)| v)
        .sum::<f64>()
        / total
}

/// Share of the total of `values` held outside `head` (0 when the total is
/// 0).
pub fn tail_share_of(values: &HashMap<u64, f64>, head: &HashSet<u64>) -> f64 {
    if values.values().any(|v| *v > 0.0) {
        1.0 - share_of(values, head)
    } else {
        0.0
    }
}

/// Summary of one quantity's concentration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Concentration {
    pub items: usize,
    pub total: f64,
    pub gini: f64,
    pub top_1pct_share: f64,
    pub top_10_share: f64,
    /// Share of items with a value of 0.
    pub zero_share: f64,
}

impl Concentration {
    pub fn of(values: &[f64]) -> Concentration {
        let zeros = values.iter().filter(|v| **v == 0.0).count();
        Concentration {
            items: values.len(),
            total: values.iter().sum(),
            gini: gini(values),
            top_1pct_share: top_fraction_share(values, 0.01),
            top_10_share: top_k_share(values, 10),
            zero_share: if values.is_empty() {
                0.0
            } else {
                zeros as f64 / values.len() as f64
            },
        }
    }
}

/// Lorenz curve points `(population share, cumulative value share)`, from
/// (0, 0) to (1, 1), at most `points` + 1 of them.
pub fn lorenz(values: &[f64], points: usize) -> Vec<(f64, f64)> {
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    let total: f64 = x.iter().sum();
    let n = x.len();
    let mut out = vec![(0.0, 0.0)];
    if n == 0 || total <= 0.0 {
        out.push((1.0, 1.0));
        return out;
    }
    let step = (n / points.max(1)).max(1);
    let mut acc = 0.0;
    for (i, v) in x.iter().enumerate() {
        acc += v;
        if (i + 1) % step == 0 || i + 1 == n {
            out.push(((i + 1) as f64 / n as f64, acc / total));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gini_known_values() {
        assert_eq!(gini(&[1.0, 1.0, 1.0, 1.0]), 0.0);
        // One of four holds all: (n-1)/n.
        assert!((gini(&[0.0, 0.0, 0.0, 8.0]) - 0.75).abs() < 1e-12);
        // [1,2,3,4]: sum_i (2i-5) x_i = -3 -2 +3 +12 = 10 ; 10 / (4*10) = 0.25
        assert!((gini(&[4.0, 1.0, 3.0, 2.0]) - 0.25).abs() < 1e-12);
        assert_eq!(gini(&[]), 0.0);
        assert_eq!(gini(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn shares() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        let total: f64 = v.iter().sum();
        assert!((top_fraction_share(&v, 0.01) - (200.0 + 199.0) / total).abs() < 1e-12);
        assert!(
            (top_k_share(&v, 10) - (191..=200).map(f64::from).sum::<f64>() / total).abs() < 1e-12
        );
        let c = Concentration::of(&[0.0, 0.0, 5.0]);
        assert!((c.zero_share - 2.0 / 3.0).abs() < 1e-12);
        let l = lorenz(&[1.0, 1.0], 10);
        assert_eq!(l.last(), Some(&(1.0, 1.0)));
    }
}
