//! A candidate's merit: its retrieval relevance, corrected by how often the
//! model is called per unit of exposure once it has been shown enough
//! (docs/ranking.md, Merit).
//!
//! Under the position-based model a shown item is examined with the
//! probability its position's attention weight gives, and called with its
//! own probability `rho` once examined. Its calls over its cumulative
//! exposure (the sum of its impressions' propensities) estimate `rho`
//! without position bias: the ratio form of inverse-propensity weighting
//! (Joachims, Swaminathan & Schnabel, WSDM 2017), used here because a paid
//! call is not tied to the impression that led to it.

/// The most a model's call rate can raise its merit, relative to the hub's.
pub const MAX_CALL_FACTOR: f64 = 4.0;

/// `relevance * (1 + w * (f - 1))`, where `f = (calls / exposure) /
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
