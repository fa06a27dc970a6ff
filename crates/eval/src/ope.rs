//! Off-policy estimates of a target policy's calls from pages logged under
//! the `stochastic` policy (docs/metrics.md, Off-policy estimates).
//!
//! Under the position-based model a call on the item at position `k` needs
//! the user to examine `k` (a property of the position) and to want the
//! item (a property of the item), so the expected calls of any policy are
//! a sum over (item, position) pairs. The item-position inverse-propensity
//! estimator (Li, Kim & Zitouni, WWW 2018; the additive case of the slate
//! estimators of Swaminathan et al., NeurIPS 2017) reweights each logged
//! call by the target's over the logger's probability of that item at that
//! position:
//!
//! ```text
//! V(pi) = 1/N sum_pages sum_k calls_k * pi(d_k at k) / mu(d_k at k)
//! ```
//!
//! unbiased whenever `mu(d, k) > 0` wherever `pi(d, k) > 0` (Plackett-Luce
//! logging puts every item everywhere with some probability). `mu` is the
//! logging policy's marginal, estimated by sampling its logged logits
//! ([`hubsearch_rank::plackett_luce::marginals`]); Joachims, Swaminathan &
//! Schnabel (WSDM 2017) use the same propensity weighting for clicks.

use hubsearch_rank::plackett_luce::marginals;

/// One logged page of one query.
#[derive(Debug, Clone)]
pub struct LoggedPage {
    /// Which query's candidate set (index into the caller's queries).
    pub query: usize,
    /// Shown candidates (indices into the query's candidates), rank order.
    pub shown: Vec<usize>,
    /// Calls on each shown position.
    pub calls: Vec<u32>,
}

/// An estimate with its standard error over pages.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Expected calls per page.
    pub value: f64,
    pub stderr: f64,
    pub pages: usize,
}

fn mean_and_stderr(xs: &[f64]) -> Estimate {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Estimate {
        value: mean,
        stderr: (var / n).sqrt(),
        pages: xs.len(),
    }
}

/// The logging policy's position marginals per query, from its logits
/// (`samples` Plackett-Luce draws each; a marginal is floored at
/// `1 / samples` so an item the sampler never put somewhere still has a
/// finite weight).
pub fn logging_marginals(
    logits: &[Vec<f64>],
    depth: usize,
    samples: usize,
    seed: u64,
) -> Vec<Vec<Vec<f64>>> {
    let floor = 1.0 / samples.max(1) as f64;
    logits
        .iter()
        .enumerate()
        .map(|(q, l)| {
            let mut m = marginals(l, depth, samples, seed ^ q as u64);
            for row in &mut m {
                for v in row.iter_mut() {
                    *v = v.max(floor);
                }
            }
            m
        })
        .collect()
}

/// Item-position IPS estimate of the target's expected calls per page.
/// `logging[q][i][k]` and `target[q][i][k]`: the probability that query
/// `q`'s candidate `i` is at position `k` under each policy.
pub fn ips_calls(
    pages: &[LoggedPage],
    logging: &[Vec<Vec<f64>>],
    target: &[Vec<Vec<f64>>],
) -> Estimate {
    let xs: Vec<f64> = pages
        .iter()
        .map(|p| {
            p.shown
                .iter()
                .zip(&p.calls)
                .enumerate()
                .map(|(k, (&i, &c))| {
                    let mu = logging[p.query][i][k];
                    let pi = target[p.query][i].get(k).copied().unwrap_or(0.0);
                    f64::from(c) * pi / mu
                })
                .sum()
        })
        .collect();
    mean_and_stderr(&xs)
}

/// The logged calls per page, unweighted (what the logging policy earned).
pub fn logged_calls(pages: &[LoggedPage]) -> Estimate {
    let xs: Vec<f64> = pages
        .iter()
        .map(|p| p.calls.iter().map(|c| f64::from(*c)).sum())
        .collect();
    mean_and_stderr(&xs)
}

/// The position marginals of a deterministic ranking: 1 where it puts an
/// item, 0 elsewhere.
pub fn deterministic(order: &[usize], n: usize, depth: usize) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; depth]; n];
    for (k, &i) in order.iter().take(depth).enumerate() {
        m[i][k] = 1.0;
    }
    m
}
