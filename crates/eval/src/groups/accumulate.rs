//! FairCo's running totals and disparities: a group's exposure, merit and
//! impact accumulated page by page, and the gaps between groups' ratios,
//! amortized and per query, at each window's end.

use std::collections::{BTreeMap, HashMap};

use super::figures::{Disparity, QueryDisparity};
use super::prepare::Prepared;

/// The disparity of ratios (order does not matter).
pub fn disparity(mut ratios: Vec<f64>) -> Disparity {
    let n = ratios.len();
    if n < 2 {
        return Disparity {
            groups: n,
            ..Default::default()
        };
    }
    ratios.sort_by(f64::total_cmp);
    // sum_{i<j} |x_i - x_j| = sum_k (2k - n - 1) x_(k), k = 1..n ascending.
    let sum: f64 = ratios
        .iter()
        .enumerate()
        .map(|(k, x)| (2.0 * (k + 1) as f64 - n as f64 - 1.0) * x)
        .sum();
    Disparity {
        max_min: Some(ratios[n - 1] - ratios[0]),
        mean_pairwise: Some(sum / (n * (n - 1) / 2) as f64),
        groups: n,
    }
}

/// A group's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acc {
    pub exposure: f64,
    pub merit: f64,
    pub calls: f64,
    pub income: f64,
}

impl Acc {
    pub(super) fn add(&mut self, o: &Acc) {
        self.exposure += o.exposure;
        self.merit += o.merit;
        self.calls += o.calls;
        self.income += o.income;
    }
}

/// The exposure and impact disparities of groups' totals (groups with
/// merit > 0 only).
fn disparities(accs: impl Iterator<Item = Acc> + Clone) -> (Disparity, Disparity) {
    let with_merit = accs.filter(|a| a.merit > 0.0);
    (
        disparity(with_merit.clone().map(|a| a.exposure / a.merit).collect()),
        disparity(with_merit.map(|a| a.calls / a.merit).collect()),
    )
}

/// The windows' last page counts: `ceil(k n / w)` for k = 1..w, distinct.
pub fn window_ends(n: usize, w: usize) -> Vec<usize> {
    let w = w.max(1);
    let mut ends: Vec<usize> = (1..=w).map(|k| (k * n).div_ceil(w)).collect();
    ends.dedup();
    ends.retain(|&e| e > 0);
    ends
}

/// Per-query running totals: query -> group -> totals.
type PerQuery = HashMap<String, BTreeMap<usize, Acc>>;

fn per_query(q: &PerQuery) -> (QueryDisparity, QueryDisparity) {
    let (mut e, mut i) = (QueryDisparity::default(), QueryDisparity::default());
    let (mut se, mut pe, mut si, mut pi) = (0.0, 0.0, 0.0, 0.0);
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    for k in keys {
        let (de, di) = disparities(q[k].values().copied());
        if let (Some(a), Some(b)) = (de.max_min, de.mean_pairwise) {
            se += a;
            pe += b;
            e.queries += 1;
        }
        if let (Some(a), Some(b)) = (di.max_min, di.mean_pairwise) {
            si += a;
            pi += b;
            i.queries += 1;
        }
    }
    for (d, s, p) in [(&mut e, se, pe), (&mut i, si, pi)] {
        if d.queries > 0 {
            d.max_min = Some(s / d.queries as f64);
            d.mean_pairwise = Some(p / d.queries as f64);
        }
    }
    (e, i)
}

/// The figures at one end: every group's totals so far and their
/// disparities.
pub(super) struct Point {
    /// Pages so far.
    pub end: usize,
    /// Each group's totals so far.
    pub totals: Vec<Acc>,
    pub exposure: Disparity,
    pub impact: Disparity,
    pub per_query_exposure: QueryDisparity,
    pub per_query_impact: QueryDisparity,
}

/// What accumulating pages gives: the totals per group and the figures at
/// each end.
pub(super) struct Accumulated {
    pub totals: Vec<Acc>,
    pub windows: Vec<Point>,
}

/// Accumulate `pages` in order, with `timed` calls (group, amount) added at
/// the window of the given index, figures at each of `ends`.
pub(super) fn accumulate(
    pages: &[&Prepared],
    timed: &[Vec<(usize, f64)>],
    ends: &[usize],
    groups: usize,
) -> Accumulated {
    let mut totals = vec![Acc::default(); groups];
    let mut pq: PerQuery = HashMap::new();
    let mut windows = Vec::new();
    let mut next = 0usize;
    for (w, &end) in ends.iter().enumerate() {
        for &(g, amount) in timed.get(w).map_or(&[][..], Vec::as_slice) {
            totals[g].calls += 1.0;
            totals[g].income += amount;
        }
        while next < end {
            let p = pages[next];
            let q = pq.entry(p.query.clone()).or_default();
            for (g, a) in &p.deltas {
                totals[*g].add(a);
                q.entry(*g).or_default().add(a);
            }
            for &(g, amount) in &p.calls {
                let call = Acc {
                    calls: 1.0,
                    income: amount,
                    ..Default::default()
                };
                totals[g].add(&call);
                q.entry(g).or_default().add(&call);
            }
            next += 1;
        }
        let (exposure, impact) = disparities(totals.iter().copied());
        let (per_query_exposure, per_query_impact) = per_query(&pq);
        windows.push(Point {
            end,
            totals: totals.clone(),
            exposure,
            impact,
            per_query_exposure,
            per_query_impact,
        });
    }
    Accumulated { totals, windows }
}
