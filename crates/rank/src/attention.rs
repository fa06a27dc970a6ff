//! Attention (position-bias) models: how much exposure rank `j` gets
//! (docs/ranking.md, Attention). Exposure beyond rank 100 is 0.

use hubsearch_core::AttentionKind;
use serde::{Deserialize, Serialize};

/// Deepest rank that receives any exposure.
pub const MAX_EXPOSED_RANK: usize = 100;

/// The relevance `Cascade` assumes for an item it knows nothing about.
pub const UNKNOWN_RELEVANCE: f64 = 0.5;

/// A position-bias model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Attention {
    /// `1 / log2(1 + j)` (DCG; Singh & Joachims 2018).
    Log,
    /// `1 / log2(max(j, 2))` (TREC Fair Ranking 2021/22).
    Trec,
    /// `gamma^(j-1)` (rank-biased precision; Diaz et al. 2020).
    Rbp { gamma: f64 },
    /// Cascade: the user looks at rank j only if no earlier item satisfied
    /// them; item i satisfies with probability `click * r_i`.
    Cascade { click: f64 },
}

impl Attention {
    /// The attention model of `kind`; `gamma` is the `rbp` patience.
    pub fn new(kind: AttentionKind, gamma: f64) -> Attention {
        match kind {
            AttentionKind::Log => Attention::Log,
            AttentionKind::Trec => Attention::Trec,
            AttentionKind::Rbp => Attention::Rbp { gamma },
            AttentionKind::Cascade => Attention::Cascade { click: 0.5 },
        }
    }

    /// Exposure of 1-based rank `j`, for the position-only models. For
    /// `Cascade`, whose exposure depends on the items above, this is the
    /// expected examination when their relevance is unknown (taken as 1/2):
    /// `(1 - click / 2)^(j - 1)`; [`Attention::page`] uses the real relevance.
    pub fn weight(&self, j: usize) -> f64 {
        if j == 0 || j > MAX_EXPOSED_RANK {
            return 0.0;
        }
        let jf = j as f64;
        match *self {
            Attention::Log => 1.0 / (1.0 + jf).log2(),
            Attention::Trec => 1.0 / jf.max(2.0).log2(),
            Attention::Rbp { gamma } => gamma.powi(j as i32 - 1),
            Attention::Cascade { click } => (1.0 - click * UNKNOWN_RELEVANCE).powi(j as i32 - 1),
        }
    }

    /// Exposure of each position of a page starting at 1-based rank
    /// `first_rank`, whose items have relevance `rel` (used by `Cascade`).
    pub fn page(&self, first_rank: usize, rel: &[f64]) -> Vec<f64> {
        match *self {
            Attention::Cascade { click } => {
                let mut look = 1.0;
                rel.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let w = if first_rank + i > MAX_EXPOSED_RANK {
                            0.0
                        } else {
                            look
                        };
                        look *= 1.0 - (click * r.clamp(0.0, 1.0));
                        w
                    })
                    .collect()
            }
            _ => (0..rel.len())
                .map(|i| self.weight(first_rank + i))
                .collect(),
        }
    }

    /// Total exposure of ranks 1..=n (position-only models).
    pub fn total(&self, n: usize) -> f64 {
        (1..=n).map(|j| self.weight(j)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_weights() {
        assert_eq!(Attention::Log.weight(1), 1.0);
        assert!((Attention::Log.weight(3) - 0.5).abs() < 1e-12);
        assert_eq!(Attention::Trec.weight(1), 1.0);
        assert_eq!(Attention::Trec.weight(2), 1.0);
        assert!((Attention::Trec.weight(4) - 0.5).abs() < 1e-12);
        assert_eq!(Attention::Rbp { gamma: 0.5 }.weight(3), 0.25);
        assert_eq!(Attention::Log.weight(101), 0.0);
        assert_eq!(Attention::Log.weight(0), 0.0);
        let c = Attention::Cascade { click: 0.5 }.page(1, &[1.0, 1.0, 0.0, 1.0]);
        assert_eq!(c, vec![1.0, 0.5, 0.25, 0.25]);
        // Position-only cascade: items of relevance 1/2 above.
        let c = Attention::Cascade { click: 0.5 };
        assert_eq!(c.weight(1), 1.0);
        assert_eq!(c.weight(3), 0.5625);
        assert_eq!(
            c.page(1, &[0.5; 3]),
            vec![c.weight(1), c.weight(2), c.weight(3)]
        );
    }
}
