//! A candidate's merit: the calibrated probability that it satisfies the
//! query ([`calibrated_probability`], a Platt/logistic model over features
//! that depend neither on the retrieval depth nor on the score scale),
//! corrected by how often the model is called per unit of exposure once it
//! has been shown enough ([`blended_merit`]) (docs/ranking.md, Merit).
//!
//! Under the position-based model a shown item is examined with the
//! probability its position's attention weight gives, and called with its
//! own probability `rho` once examined. Its calls over its cumulative
//! exposure (the sum of its impressions' propensities) estimate `rho`
//! without position bias: the ratio form of inverse-propensity weighting
//! (Joachims, Swaminathan & Schnabel, WSDM 2017), used here because a paid
//! call is not tied to the impression that led to it.

use hubsearch_core::config::MeritCalibration;

/// The most a model's call rate can raise its merit, relative to the hub's.
pub const MAX_CALL_FACTOR: f64 = 4.0;

/// What the merit model reads of one candidate. Each is invariant to the
/// retrieval depth (`search.candidates`) and to the scale of the scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeritFeatures {
    /// BM25 over the best BM25 among the query's candidates (the text
    /// retriever's first hit, whatever the depth), in [0, 1]; 0 when the
    /// text retriever did not find it.
    pub text: f64,
    /// Cosine similarity to the query, negative as 0; 0 when absent.
    pub cosine: f64,
    /// Its best 1-based rank in one retriever's own list (a deeper list
    /// only appends ranks).
    pub rank: usize,
    /// The query names the model.
    pub named: bool,
    /// How flat the query's text scores are: the mean of `text` over the
    /// text retriever's first `ranking.merit_depth` hits (a broad query,
    /// with many cards almost as good as the best, has many relevant ones);
    /// 0 without text hits. The same for every candidate of a query.
    pub breadth: f64,
}

impl MeritFeatures {
    /// The feature vector the logistic model weighs:
    /// `[1, text, cosine, ln(rank), named, breadth]`.
    pub fn vector(&self) -> [f64; 6] {
        [
            1.0,
            self.text,
            self.cosine,
            (self.rank.max(1) as f64).ln(),
            f64::from(u8::from(self.named)),
            self.breadth,
        ]
    }
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The estimated probability that a candidate satisfies the query:
/// `sigmoid(b . [1, text, cosine, ln(rank), named, breadth])`, and 0 for a candidate
/// whose best retriever rank is deeper than `depth` (`ranking.merit_depth`).
pub fn calibrated_probability(f: &MeritFeatures, b: &MeritCalibration, depth: usize) -> f64 {
    if f.rank == 0 || f.rank > depth {
        return 0.0;
    }
    let x = f.vector();
    let z: f64 = b.to_vec().iter().zip(x).map(|(b, x)| b * x).sum();
    sigmoid(z)
}

/// `merit * (1 + w * (f - 1))` (`relevance` is the calibrated probability,
/// or any base merit), where `f = (calls / exposure) /
/// hub_rate` (clipped to [0, MAX_CALL_FACTOR]) is the model's call rate
/// relative to the hub's, and `w = n / (n + k)` grows with its impressions
/// `n`: half weight after `k` impressions. `k = 0`, no exposure or no hub
/// rate leave the relevance as it is.
pub fn blended_merit(
    relevance: f64,
    calls: u64,
    impressions: u64,
    exposure: f64,
    hub_rate: f64,
    k: u64,
) -> f64 {
    if k == 0 || impressions == 0 || exposure <= 0.0 || hub_rate <= 0.0 {
        return relevance;
    }
    let n = impressions as f64;
    let w = n / (n + k as f64);
    let f = (calls as f64 / exposure / hub_rate).clamp(0.0, MAX_CALL_FACTOR);
    relevance * (1.0 + w * (f - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_probability_by_hand() {
        let b = MeritCalibration {
            intercept: -1.0,
            text: 2.0,
            cosine: 0.5,
            log_rank: -0.25,
            named: 3.0,
            breadth: 1.5,
        };
        let f = MeritFeatures {
            text: 0.5,
            cosine: 0.4,
            rank: 4,
            named: false,
            breadth: 0.2,
        };
        // z = -1 + 1 + 0.2 - 0.25 ln 4 + 0.3
        let z: f64 = -1.0 + 1.0 + 0.2 - 0.25 * 4f64.ln() + 0.3;
        let p = 1.0 / (1.0 + (-z).exp());
        assert!((calibrated_probability(&f, &b, 100) - p).abs() < 1e-15);
        // Past the merit depth, or unranked: 0.
        assert_eq!(calibrated_probability(&f, &b, 3), 0.0);
        assert_eq!(
            calibrated_probability(&MeritFeatures { rank: 0, ..f }, &b, 100),
            0.0
        );
        // Named: +3 on the logit.
        let named = calibrated_probability(&MeritFeatures { named: true, ..f }, &b, 100);
        assert!((named - 1.0 / (1.0 + (-(z + 3.0)).exp())).abs() < 1e-15);
        // The logistic function is stable at the extremes.
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn weight_grows_with_impressions() {
        // A model called at twice the hub's rate: factor 2.
        let m = |n| blended_merit(0.5, 20, n, 10.0, 1.0, 100);
        assert_eq!(blended_merit(0.5, 20, 0, 10.0, 1.0, 100), 0.5);
        assert!((m(100) - 0.75).abs() < 1e-12); // w = 1/2
        assert!(m(10_000) > m(1000) && m(1000) > m(100));
        assert!(m(1_000_000) < 1.0 + 1e-9);
        // Never called: merit falls toward 0; k = 0 keeps the relevance.
        assert!(blended_merit(0.5, 0, 900, 10.0, 1.0, 100) < 0.051);
        assert_eq!(blended_merit(0.5, 0, 900, 10.0, 1.0, 0), 0.5);
        // The factor is clipped.
        assert!((blended_merit(0.5, 1000, 1_000_000, 1.0, 1.0, 1) - 2.0).abs() < 1e-5);
    }
}
