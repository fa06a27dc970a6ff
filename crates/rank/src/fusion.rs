//! Fusing ranked lists from several retrievers into one relevance in [0, 1]
//! (DESIGN.md section 2).

use std::collections::HashMap;
use std::hash::Hash;

/// Reciprocal rank fusion: `sum_s 1 / (k + rank_s(d))` (Cormack et al. 2009),
/// each list given best first. Returns (doc, fused score) best first, ties
/// broken by the doc's first appearance.
pub fn rrf<D: Clone + Eq + Hash>(lists: &[&[D]], k: f64) -> Vec<(D, f64)> {
    let mut scores: HashMap<D, (f64, usize)> = HashMap::new();
    let mut order = 0;
    for list in lists {
        for (i, d) in list.iter().enumerate() {
            let e = scores.entry(d.clone()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            e.0 += 1.0 / (k + i as f64 + 1.0);
        }
    }
    sorted(scores)
}

/// Min-max normalise each list's scores to [0, 1], then sum with weights. A
/// doc absent from a list gets 0 from it.
pub fn weighted_minmax<D: Clone + Eq + Hash>(lists: &[(&[(D, f64)], f64)]) -> Vec<(D, f64)> {
    let mut scores: HashMap<D, (f64, usize)> = HashMap::new();
    let mut order = 0;
    for (list, weight) in lists {
        let (lo, hi) = list
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, s)| {
                (lo.min(*s), hi.max(*s))
            });
        for (d, s) in list.iter() {
            let norm = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
            let e = scores.entry(d.clone()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            e.0 += weight * norm;
        }
    }
    sorted(scores)
}

fn sorted<D>(scores: HashMap<D, (f64, usize)>) -> Vec<(D, f64)> {
    let mut v: Vec<(D, f64, usize)> = scores.into_iter().map(|(d, (s, o))| (d, s, o)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    v.into_iter().map(|(d, s, _)| (d, s)).collect()
}

/// Scale scores to [0, 1] by the maximum (the best hit gets 1; 0 stays 0).
pub fn normalise_by_max(scores: &mut [f64]) {
    let max = scores.iter().cloned().fold(0.0, f64::max);
    if max > 0.0 {
        for s in scores {
            *s = (*s / max).clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rrf_hand_computed() {
        let a = ["x", "y", "z"];
        let b = ["y", "w"];
        let f = rrf(&[&a, &b], 60.0);
        assert_eq!(f[0].0, "y");
        assert!((f[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn minmax_hand_computed() {
        let a = [("x", 10.0), ("y", 5.0), ("z", 0.0)];
        let b = [("z", 0.9), ("y", 0.5)];
        let f = weighted_minmax(&[(&a, 0.5), (&b, 0.5)]);
        // x: 0.5*1 ; y: 0.5*0.5 + 0.5*0 = 0.25 ; z: 0 + 0.5*1 = 0.5
        assert_eq!(f[0].0, "x");
        assert_eq!(f[1].0, "z");
        assert!((f[2].1 - 0.25).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn rrf_is_order_invariant(a in proptest::collection::vec(0u32..50, 0..30), b in proptest::collection::vec(0u32..50, 0..30)) {
            let dedup = |v: Vec<u32>| { let mut s = std::collections::HashSet::new(); v.into_iter().filter(|x| s.insert(*x)).collect::<Vec<_>>() };
            let (a, b) = (dedup(a), dedup(b));
            let ab: HashMap<u32, f64> = rrf(&[&a, &b], 60.0).into_iter().collect();
            let ba: HashMap<u32, f64> = rrf(&[&b, &a], 60.0).into_iter().collect();
            prop_assert_eq!(ab.len(), ba.len());
            for (k, v) in &ab {
                prop_assert!((v - ba[k]).abs() < 1e-12);
                prop_assert!(v.is_finite() && *v > 0.0);
            }
        }

        #[test]
        fn normalised_scores_are_in_unit_range(mut v in proptest::collection::vec(0.0f64..1e6, 1..50)) {
            normalise_by_max(&mut v);
            prop_assert!(v.iter().all(|s| (0.0..=1.0).contains(s)));
        }
    }
}
