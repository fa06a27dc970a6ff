//! Calibrating merit: fitting the logistic (Platt) model of the probability
//! that a candidate satisfies the query on judged queries, and measuring how
//! well a fitted model is calibrated on other queries (docs/ranking.md,
//! Merit). `hubsearch calibrate` runs it.
//!
//! A sample is one retrieved candidate within `ranking.merit_depth` of one
//! judged query: its merit features ([`MeritFeatures`]) and whether its
//! judged grade is at least 1 (an unjudged card counts as not satisfying,
//! as trec_eval reads qrels). The model is fitted by iteratively reweighted
//! least squares (Newton's method on the log-likelihood) with a small ridge
//! on the slopes, which keeps a separable set finite.

use hubsearch_core::{Mode, SearchRequest};
use hubsearch_engine::hub::merit_features;
use hubsearch_engine::Engine;
use hubsearch_rank::merit::sigmoid;
use hubsearch_rank::MeritFeatures;
use serde::Serialize;

use crate::trec::{Qrels, Query};

/// One candidate of one judged query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub features: MeritFeatures,
    pub relevant: bool,
}

/// What the candidates of a query set hold, beyond the samples.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Judged queries run.
    pub queries: usize,
    /// Relevant judgments (grade >= 1) of those queries.
    pub relevant: usize,
    /// Relevant cards retrieved within the merit depth (the samples'
    /// positives).
    pub within_depth: usize,
    /// Relevant cards retrieved deeper than the merit depth (merit 0).
    pub beyond_depth: usize,
}

/// The samples of every judged query of `queries`, retrieved in `mode` at
/// the engine's `search.candidates` depth.
pub fn collect(
    engine: &Engine,
    queries: &[Query],
    qrels: &Qrels,
    mode: Mode,
    merit_depth: usize,
) -> Result<(Vec<Sample>, Coverage), hubsearch_engine::Error> {
    let searcher = engine.text_index().searcher();
    let depth = engine.config().search.candidates;
    let mut samples = Vec::new();
    let mut cov = Coverage::default();
    for q in queries {
        let Some(judged) = qrels.get(&q.qid).filter(|j| j.values().any(|g| *g > 0)) else {
            continue;
        };
        cov.queries += 1;
        cov.relevant += judged.values().filter(|g| **g > 0).count();
        let mut req = SearchRequest::new(q.text.clone(), 10);
        req.mode = mode;
        req.record = false;
        let rows = engine.retrieve(&searcher, &req, depth)?.rows;
        for (row, f) in rows.iter().zip(merit_features(&rows, merit_depth)) {
            let id = engine.text_index().card(&searcher, row.addr)?.id;
            let relevant = judged.get(&id).is_some_and(|g| *g > 0);
            if f.rank == 0 || f.rank > merit_depth {
                cov.beyond_depth += usize::from(relevant);
                continue;
            }
            cov.within_depth += usize::from(relevant);
            samples.push(Sample {
                features: f,
                relevant,
            });
        }
    }
    Ok((samples, cov))
}

/// The ridge on the slopes (not the intercept).
pub const RIDGE: f64 = 1e-3;

/// Fit `[intercept, text, cosine, ln(rank), named, breadth]` by Newton's method on
/// the ridge-penalised log-likelihood. A feature that never varies in the
/// samples (the cosine in text mode) gets 0. `None` without both classes.
pub fn fit(samples: &[Sample]) -> Option<[f64; 6]> {
    fit_with_ridge(samples, RIDGE)
}

/// [`fit`] with a ridge of `ridge` on the slopes.
pub fn fit_with_ridge(samples: &[Sample], ridge: f64) -> Option<[f64; 6]> {
    let pos = samples.iter().filter(|s| s.relevant).count();
    if pos == 0 || pos == samples.len() {
        return None;
    }
    let xs: Vec<[f64; 6]> = samples.iter().map(|s| s.features.vector()).collect();
    // Features constant over the samples are left out (their slope is 0).
    let active: Vec<usize> = (0..6)
        .filter(|&j| j == 0 || xs.iter().any(|x| (x[j] - xs[0][j]).abs() > 1e-12))
        .collect();
    let k = active.len();
    let mut b = vec![0.0; k];
    b[0] = {
        let rate = pos as f64 / samples.len() as f64;
        (rate / (1.0 - rate)).ln()
    };
    let n = samples.len() as f64;
    for _ in 0..100 {
        // Gradient and Hessian of the mean negative log-likelihood + ridge.
        let mut g = vec![0.0; k];
        let mut h = vec![vec![0.0; k]; k];
        for (x, s) in xs.iter().zip(samples) {
            let z: f64 = active.iter().zip(&b).map(|(&j, b)| b * x[j]).sum();
            let p = sigmoid(z);
            let y = f64::from(u8::from(s.relevant));
            let w = (p * (1.0 - p)).max(1e-12);
            for (a, &ja) in active.iter().enumerate() {
                g[a] += (p - y) * x[ja] / n;
                for (c, &jc) in active.iter().enumerate() {
                    h[a][c] += w * x[ja] * x[jc] / n;
                }
            }
        }
        for a in 1..k {
            g[a] += ridge * b[a];
            h[a][a] += ridge;
        }
        let step = solve(h, g)?;
        let mut change: f64 = 0.0;
        for (b, s) in b.iter_mut().zip(&step) {
            *b -= s;
            change = change.max(s.abs());
        }
        if change < 1e-10 {
            break;
        }
    }
    let mut out = [0.0; 6];
    for (&j, b) in active.iter().zip(&b) {
        out[j] = *b;
    }
    out.iter().all(|b| b.is_finite()).then_some(out)
}

/// Solve `h x = g` by Gaussian elimination with partial pivoting.
fn solve(mut h: Vec<Vec<f64>>, mut g: Vec<f64>) -> Option<Vec<f64>> {
    let k = g.len();
    for c in 0..k {
        let p = (c..k).max_by(|&a, &b| h[a][c].abs().total_cmp(&h[b][c].abs()))?;
        if h[p][c].abs() < 1e-300 {
            return None;
        }
        h.swap(c, p);
        g.swap(c, p);
        let (top, rest) = h.split_at_mut(c + 1);
        let pivot = &top[c];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[c] / pivot[c];
            for (a, b) in row[c..].iter_mut().zip(&pivot[c..]) {
                *a -= f * b;
            }
            g[c + 1 + i] -= f * g[c];
        }
    }
    let mut x = vec![0.0; k];
    for r in (0..k).rev() {
        let s: f64 = (r + 1..k).map(|j| h[r][j] * x[j]).sum();
        x[r] = (g[r] - s) / h[r][r];
    }
    Some(x)
}

/// One reliability bin: predictions in `[lo, hi)`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    pub mean_p: f64,
    pub rate: f64,
}

/// How well predictions match outcomes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    pub samples: usize,
    pub positives: usize,
    /// Mean prediction vs the observed rate (calibration in the large).
    pub mean_p: f64,
    pub rate: f64,
    /// Mean negative log-likelihood.
    pub log_loss: f64,
    /// Mean squared error of the probability (Brier score).
    pub brier: f64,
    /// Expected calibration error over 10 equal-width bins:
    /// `sum_b n_b / n * |mean_p_b - rate_b|`.
    pub ece: f64,
    pub bins: Vec<Bin>,
}

/// The calibration of `b` on `samples`.
pub fn calibration(samples: &[Sample], b: &[f64; 6]) -> Calibration {
    let n = samples.len();
    let mut bins: Vec<(usize, f64, f64)> = vec![(0, 0.0, 0.0); 10];
    let (mut ll, mut brier, mut sp, mut sy) = (0.0, 0.0, 0.0, 0.0);
    for s in samples {
        let z: f64 = b.iter().zip(s.features.vector()).map(|(b, x)| b * x).sum();
        let p = sigmoid(z);
        let y = f64::from(u8::from(s.relevant));
        let pc = p.clamp(1e-15, 1.0 - 1e-15);
        ll -= y * pc.ln() + (1.0 - y) * (1.0 - pc).ln();
        brier += (p - y) * (p - y);
        sp += p;
        sy += y;
        let bin = &mut bins[((p * 10.0) as usize).min(9)];
        bin.0 += 1;
        bin.1 += p;
        bin.2 += y;
    }
    let nf = n.max(1) as f64;
    let bins: Vec<Bin> = bins
        .iter()
        .enumerate()
        .map(|(i, &(c, p, y))| Bin {
            lo: i as f64 / 10.0,
            hi: (i + 1) as f64 / 10.0,
            n: c,
            mean_p: if c > 0 { p / c as f64 } else { 0.0 },
            rate: if c > 0 { y / c as f64 } else { 0.0 },
        })
        .collect();
    let ece = bins
        .iter()
        .map(|b| b.n as f64 / nf * (b.mean_p - b.rate).abs())
        .sum();
    Calibration {
        samples: n,
        positives: sy as usize,
        mean_p: sp / nf,
        rate: sy / nf,
        log_loss: ll / nf,
        brier: brier / nf,
        ece,
        bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn feature(rng: &mut ChaCha8Rng) -> MeritFeatures {
        MeritFeatures {
            text: rng.gen_range(0.0..1.0),
            cosine: rng.gen_range(0.0..0.8),
            rank: rng.gen_range(1..=100),
            named: rng.gen_bool(0.05),
            breadth: rng.gen_range(0.0..1.0),
        }
    }

    #[test]
    fn fit_recovers_the_generating_model() {
        // Outcomes drawn from a known logistic model: the fit must find its
        // coefficients (within sampling error) and be calibrated.
        let truth = [-1.0, 2.5, 1.5, -0.6, 2.0, 3.0];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let samples: Vec<Sample> = (0..60_000)
            .map(|_| {
                let f = feature(&mut rng);
                let z: f64 = truth.iter().zip(f.vector()).map(|(b, x)| b * x).sum();
                let p = 1.0 / (1.0 + (-z).exp());
                Sample {
                    features: f,
                    relevant: rng.gen_bool(p),
                }
            })
            .collect();
        // Without the ridge the fit is the maximum-likelihood estimate.
        let b = fit_with_ridge(&samples, 1e-9).unwrap();
        for (got, want) in b.iter().zip(truth) {
            assert!((got - want).abs() < 0.25, "{b:?} vs {truth:?}");
        }
        // With the default ridge the slopes shrink a little; still calibrated.
        let b = fit(&samples).unwrap();
        let c = calibration(&samples, &b);
        assert!(c.ece < 0.02, "{c:?}");
        assert!((c.mean_p - c.rate).abs() < 0.01);
        // A constant feature gets a zero slope, and one class alone no fit.
        let text_only: Vec<Sample> = samples
            .iter()
            .map(|s| Sample {
                features: MeritFeatures {
                    cosine: 0.0,
                    ..s.features
                },
                ..*s
            })
            .collect();
        assert_eq!(fit(&text_only).unwrap()[2], 0.0);
        let all_pos: Vec<Sample> = samples[..10]
            .iter()
            .map(|s| Sample {
                relevant: true,
                ..*s
            })
            .collect();
        assert!(fit(&all_pos).is_none());
    }

    #[test]
    fn calibration_by_hand() {
        // Two samples with p = sigmoid(0) = 0.5 (bin 5), one relevant; one
        // with p = sigmoid(ln 9) = 0.9 (bin 9), not relevant.
        let f = |rank: usize| MeritFeatures {
            rank,
            ..Default::default()
        };
        let b = [0.0, 0.0, 0.0, 9f64.ln() / 3f64.ln(), 0.0, 0.0];
        let samples = [
            Sample {
                features: f(1),
                relevant: true,
            },
            Sample {
                features: f(1),
                relevant: false,
            },
            Sample {
                features: f(3),
                relevant: false,
            },
        ];
        let c = calibration(&samples, &b);
        assert!((c.mean_p - (0.5 + 0.5 + 0.9) / 3.0).abs() < 1e-12);
        assert!((c.rate - 1.0 / 3.0).abs() < 1e-12);
        // ECE: bin 5 |0.5 - 0.5| * 2/3 + bin 9 |0.9 - 0| * 1/3 = 0.3.
        assert!((c.ece - 0.3).abs() < 1e-12, "{c:?}");
        let brier = (0.25 + 0.25 + 0.81) / 3.0;
        assert!((c.brier - brier).abs() < 1e-12);
        let ll = -(0.5f64.ln() + 0.5f64.ln() + 0.1f64.ln()) / 3.0;
        assert!((c.log_loss - ll).abs() < 1e-12);
        assert_eq!(c.bins[5].n, 2);
        assert_eq!(c.bins[9].n, 1);
    }
}
