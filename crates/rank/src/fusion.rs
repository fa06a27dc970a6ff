//! Fusing the text and vector retrievers into one relevance in [0, 1] per
//! candidate (docs/retrieval.md, Fusion).

use hubsearch_core::{Fusion, Mode};

/// What the retrievers said about one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// BM25 score and 1-based rank, when the text retriever found it.
    pub text: Option<(f64, usize)>,
    /// 1-based rank in the vector retriever's list, when it found it.
    pub vector_rank: Option<usize>,
    /// Cosine similarity to the query, when the candidate has a vector.
    pub cosine: Option<f64>,
}

/// How hybrid search weighs the two sides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionParams {
    pub fusion: Fusion,
    /// Weight of the vector side (the text side gets 1 - this).
    pub vector_weight: f64,
    /// The RRF constant k.
    pub rrf_k: f64,
}

/// Relevance of every candidate in `mode`, scaled so the best is 1.
/// Text: the BM25 score. Vector: the cosine (negative as 0). Hybrid:
/// - `cosine`: `(1 - w) * minmax(bm25) + w * cosine`;
/// - `weighted`: `(1 - w) * minmax(bm25) + w * minmax(cosine)`;
/// - `rrf`: `sum over both lists of 1 / (k + rank)` (Cormack et al. 2009).
pub fn relevance(mode: Mode, evidence: &[Evidence], p: &FusionParams) -> Vec<f64> {
    let bm25: Vec<Option<f64>> = evidence.iter().map(|e| e.text.map(|t| t.0)).collect();
    let cosine: Vec<Option<f64>> = evidence
        .iter()
        .map(|e| e.cosine.map(|c| c.max(0.0)))
        .collect();
    let w = p.vector_weight;
    let mut rel: Vec<f64> = match (mode, p.fusion) {
        (Mode::Text, _) => bm25.iter().map(|b| b.unwrap_or(0.0)).collect(),
        (Mode::Vector, _) => cosine.iter().map(|c| c.unwrap_or(0.0)).collect(),
        (Mode::Hybrid, Fusion::Rrf) => evidence
            .iter()
            .map(|e| rrf(&[e.text.map(|t| t.1), e.vector_rank], p.rrf_k))
            .collect(),
        (Mode::Hybrid, Fusion::Cosine) => minmax(&bm25)
            .iter()
            .zip(&cosine)
            .map(|(t, c)| (1.0 - w) * t + w * c.unwrap_or(0.0))
            .collect(),
        (Mode::Hybrid, Fusion::Weighted) => minmax(&bm25)
            .iter()
            .zip(minmax(&cosine))
            .map(|(t, c)| (1.0 - w) * t + w * c)
            .collect(),
    };
    normalise_by_max(&mut rel);
    rel
}

/// Reciprocal rank fusion of one document: `sum_s 1 / (k + rank_s)` over
/// the lists that have it (1-based ranks).
pub fn rrf(ranks: &[Option<usize>], k: f64) -> f64 {
    ranks.iter().flatten().map(|r| 1.0 / (k + *r as f64)).sum()
}

/// Min-max normalise the present values to [0, 1] (all equal: 1); absent
/// ones get 0.
pub fn minmax(values: &[Option<f64>]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    values
        .iter()
        .map(|v| match v {
            None => 0.0,
            Some(v) if hi > lo => (v - lo) / (hi - lo),
            Some(_) => 1.0,
        })
        .collect()
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
        // Lists a = [x, y, z] and b = [y, w]: ranks per doc in (a, b).
        let docs = [
            ("x", [Some(1), None]),
            ("y", [Some(2), Some(1)]),
            ("z", [Some(3), None]),
            ("w", [None, Some(2)]),
        ];
        let mut f: Vec<(&str, f64)> = docs.iter().map(|(d, r)| (*d, rrf(r, 60.0))).collect();
        f.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert_eq!(f[0].0, "y");
        assert!((f[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn minmax_hand_computed() {
        // Docs x, y, z; a = (10, 5, 0), b = (-, 0.5, 0.9); weights 0.5 each.
        let a = minmax(&[Some(10.0), Some(5.0), Some(0.0)]);
        let b = minmax(&[None, Some(0.5), Some(0.9)]);
        let f: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 0.5 * a + 0.5 * b).collect();
        // x: 0.5*1 ; y: 0.5*0.5 + 0.5*0 = 0.25 ; z: 0 + 0.5*1 = 0.5
        assert_eq!(f[0], 0.5);
        assert_eq!(f[2], 0.5);
        assert!((f[1] - 0.25).abs() < 1e-12);
        // Hybrid `weighted` with w = 0.5 gives the same order, scaled by max.
        let ev = [
            Evidence {
                text: Some((10.0, 1)),
                vector_rank: None,
                cosine: None,
            },
            Evidence {
                text: Some((5.0, 2)),
                vector_rank: Some(2),
                cosine: Some(0.5),
            },
            Evidence {
                text: Some((0.0, 3)),
                vector_rank: Some(1),
                cosine: Some(0.9),
            },
        ];
        let p = FusionParams {
            fusion: Fusion::Weighted,
            vector_weight: 0.5,
            rrf_k: 60.0,
        };
        assert_eq!(relevance(Mode::Hybrid, &ev, &p), vec![1.0, 0.5, 1.0]);
    }

    proptest! {
        #[test]
        fn rrf_is_order_invariant(a in proptest::option::of(1usize..100), b in proptest::option::of(1usize..100)) {
            let ab = rrf(&[a, b], 60.0);
            let ba = rrf(&[b, a], 60.0);
            prop_assert!((ab - ba).abs() < 1e-12);
            prop_assert!(ab.is_finite() && ab >= 0.0);
            prop_assert_eq!(ab > 0.0, a.is_some() || b.is_some());
        }

        #[test]
        fn normalised_scores_are_in_unit_range(mut v in proptest::collection::vec(0.0f64..1e6, 1..50)) {
            normalise_by_max(&mut v);
            prop_assert!(v.iter().all(|s| (0.0..=1.0).contains(s)));
        }
    }
}
