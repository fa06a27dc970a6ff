//! Means with 95% percentile-bootstrap confidence intervals over
//! replications (docs/study.md, Statistics).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A mean and its 95% confidence interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Estimate {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    /// Replications with a defined value.
    pub n: usize,
}

/// Bootstrap resamples.
pub const RESAMPLES: usize = 2_000;

/// The mean of the finite values of `xs` with a 95% percentile bootstrap
/// interval (`RESAMPLES` resamples, seeded: the same input, the same interval).
pub fn estimate(xs: &[f64]) -> Estimate {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return Estimate {
            mean: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
            n: 0,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(0xB007_57A9);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| v[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    Estimate {
        mean,
        lo: at(0.025),
        hi: at(0.975),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_covers_the_mean_and_shrinks_with_n() {
        let small: Vec<f64> = (0..5).map(|i| i as f64).collect();
        let big: Vec<f64> = (0..500).map(|i| (i % 5) as f64).collect();
        let (a, b) = (estimate(&small), estimate(&big));
        assert_eq!(a.mean, 2.0);
        assert!(a.lo < 2.0 && a.hi > 2.0);
        assert!((b.hi - b.lo) < (a.hi - a.lo) / 5.0);
        // A constant has a zero-width interval; NaNs are left out.
        let c = estimate(&[3.0, 3.0, f64::NAN]);
        assert_eq!((c.lo, c.hi, c.n), (3.0, 3.0, 2));
        assert!(estimate(&[]).mean.is_nan());
    }
}
