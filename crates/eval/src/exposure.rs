//! Exposure metrics over ranked lists (docs/metrics.md, Exposure):
//! expected exposure exactly as `diazf/expeval` computes it (Diaz, Mitra,
//! Ekstrand, Biega & Carterette, CIKM 2020), raw and normalised by its
//! bounds, and AWRF exactly as TREC Fair Ranking 2021's `qr_awrf`.

use std::collections::{BTreeMap, HashMap};

/// expeval's browsing models.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum UserModel {
    /// Rank-biased precision: rank i (0-based) is seen with `p^i`.
    Rbp { patience: f64 },
    /// Graded ERR: `p^i * (1 - u)^(relevant documents above i)`.
    Gerr { patience: f64, utility: f64 },
}

impl Default for UserModel {
    /// expeval's default: gerr, p = u = 0.5.
    fn default() -> Self {
        UserModel::Gerr {
            patience: 0.5,
            utility: 0.5,
        }
    }
}

/// How expected exposure is computed (expeval's flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ExpevalOptions {
    pub model: UserModel,
    /// `-C`: the judgments are complete (reranking): grade-0 documents keep
    /// their judgment and get a target, and the bounds are those of a
    /// ranking of exactly the judged documents.
    pub complete: bool,
    /// `-B`: every grade above 0 counts as 1.
    pub binarize: bool,
}

/// The three expected-exposure figures of one query.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ExpectedExposure {
    /// `||eps||^2` (EE-D): lower is more equal.
    pub disparity: f64,
    /// `eps . eps*` (EE-R): higher puts exposure where the target wants it.
    pub relevance: f64,
    /// `||eps - eps*||^2` (EE-L): lower is fairer and more relevant.
    pub difference: f64,
}

/// One query's figures, raw and normalised to expeval's bounds
/// (`(value - lower) / (upper - lower)`, or a default when the bounds
/// coincide: disparity 0, relevance 1, difference 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ExpevalQuery {
    pub raw: ExpectedExposure,
    pub normalised: ExpectedExposure,
}

impl ExpevalOptions {
    fn p(&self) -> f64 {
        match self.model {
            UserModel::Rbp { patience } | UserModel::Gerr { patience, .. } => patience,
        }
    }

    /// The patience expeval's bounds use: `p` for rbp, `p * u` for gerr
    /// (expeval's own choice, kept).
    fn bound_patience(&self) -> f64 {
        match self.model {
            UserModel::Rbp { patience } => patience,
            UserModel::Gerr { patience, utility } => patience * utility,
        }
    }

    /// The judgments expeval keeps: grades > 0 (binarised if asked), and
    /// grade 0 too when the judgments are complete.
    pub fn judged(&self, judged: &HashMap<String, u32>) -> BTreeMap<String, u32> {
        judged
            .iter()
            .filter(|(_, g)| self.complete || **g > 0)
            .map(|(d, g)| {
                let g = if self.binarize && *g > 0 { 1 } else { *g };
                (d.clone(), g)
            })
            .collect()
    }
}

/// `sum_{i < n} p^i` (`n = None`: infinite).
fn geometric(p: f64, n: Option<usize>) -> f64 {
    match n {
        None => 1.0 / (1.0 - p),
        Some(n) => (1.0 - p.powi(n as i32)) / (1.0 - p),
    }
}

/// Expected exposure of each document over `rankings` (samples of one
/// query's ranking), every rank counted, as expeval's `exposure.expected`.
pub fn run_exposure(
    rankings: &[Vec<String>],
    judged: &BTreeMap<String, u32>,
    o: &ExpevalOptions,
) -> BTreeMap<String, f64> {
    let mut eps: BTreeMap<String, f64> = BTreeMap::new();
    let n = rankings.len() as f64;
    for r in rankings {
        let mut relret = 0i32;
        for (i, d) in r.iter().enumerate() {
            let e = match o.model {
                UserModel::Rbp { patience } => patience.powi(i as i32),
                UserModel::Gerr { patience, utility } => {
                    patience.powi(i as i32) * (1.0 - utility).powi(relret)
                }
            };
            *eps.entry(d.clone()).or_default() += e / n;
            if judged.get(d).is_some_and(|g| *g > 0) {
                relret += 1;
            }
        }
    }
    eps
}

/// The target exposure of each kept judgment, as expeval's
/// `exposure.target`: the documents of one grade share the exposure of the
/// ranks an ideal ranking (grades descending) gives that grade.
pub fn target_exposure(
    judged: &BTreeMap<String, u32>,
    o: &ExpevalOptions,
) -> BTreeMap<String, f64> {
    let mut levels: BTreeMap<u32, usize> = BTreeMap::new();
    for g in judged.values() {
        *levels.entry(*g).or_default() += 1;
    }
    let p = o.p();
    let mut per_level: HashMap<u32, f64> = HashMap::new();
    let mut b = 0i32;
    for (&g, &m) in levels.iter().rev() {
        let mi = m as i32;
        let mf = m as f64;
        let t = match o.model {
            UserModel::Rbp { .. } => (p.powi(b) - p.powi(b + mi)) / (mf * (1.0 - p)),
            UserModel::Gerr { utility: u, .. } => {
                let pp = p * (1.0 - u);
                if g > 0 {
                    (pp.powi(b) - pp.powi(b + mi)) / (mf * (1.0 - pp))
                } else {
                    (1.0 - u).powi(b) * (p.powi(b) - p.powi(b + mi)) / (mf * (1.0 - p))
                }
            }
        };
        per_level.insert(g, t);
        b += mi;
    }
    judged
        .iter()
        .map(|(d, g)| (d.clone(), per_level[g]))
        .collect()
}

/// Expected exposure of one query over `rankings` against `judged`, as
/// expeval computes it. `None` when expeval skips the query (no judgment
/// left after filtering: no relevant document, unless `complete`). An empty
/// `rankings` is a query missing from the run: expeval's defaults (worst
/// disparity, lowest relevance, and its difference set to the relevance
/// upper bound).
pub fn expeval(
    rankings: &[Vec<String>],
    judged: &HashMap<String, u32>,
    o: &ExpevalOptions,
) -> Option<ExpevalQuery> {
    let kept = o.judged(judged);
    if kept.is_empty() {
        return None;
    }
    let target = target_exposure(&kept, o);
    let p = o.p();
    let pb = o.bound_patience();
    let n = o.complete.then_some(kept.len());
    let levels = {
        let mut l: Vec<u32> = kept.values().copied().collect();
        l.sort_unstable();
        l.dedup();
        l.len()
    };
    let mut sorted_target: Vec<f64> = target.values().copied().collect();
    sorted_target.sort_by(f64::total_cmp);
    let t2: f64 = target.values().map(|t| t * t).sum();

    // Bounds (expeval's metrics.py).
    let (mut rel_lb, mut rel_ub) = (0.0, t2);
    if n.is_some() {
        rel_lb = sorted_target
            .iter()
            .enumerate()
            .map(|(i, t)| pb.powi(i as i32) * t)
            .sum();
    }
    if levels <= 1 {
        (rel_lb, rel_ub) = (0.0, 0.0);
    }
    let disp_ub = geometric(p * p, n);
    let disp_lb = n.map_or(0.0, |n| geometric(pb, Some(n)).powi(2) / n as f64);
    let diff_ub = match n {
        None => t2 + geometric(pb, None),
        Some(_) => sorted_target
            .iter()
            .enumerate()
            .map(|(i, t)| (pb.powi(i as i32) - t).powi(2))
            .sum(),
    };

    let raw = if rankings.iter().all(|r| r.is_empty()) {
        ExpectedExposure {
            disparity: disp_ub,
            relevance: rel_lb,
            difference: rel_ub,
        }
    } else {
        let eps = run_exposure(rankings, &kept, o);
        let mut m = ExpectedExposure::default();
        for (d, e) in &eps {
            let t = target.get(d).copied().unwrap_or(0.0);
            m.disparity += e * e;
            m.relevance += e * t;
            m.difference += (t - e) * (t - e);
        }
        for (d, t) in &target {
            if !eps.contains_key(d) {
                m.difference += t * t;
            }
        }
        m
    };
    let norm = |v: f64, lb: f64, ub: f64, default: f64| {
        if lb == ub {
            default
        } else {
            (v - lb) / (ub - lb)
        }
    };
    Some(ExpevalQuery {
        raw,
        normalised: ExpectedExposure {
            disparity: norm(raw.disparity, disp_lb, disp_ub, 0.0),
            relevance: norm(raw.relevance, rel_lb, rel_ub, 1.0),
            difference: norm(raw.difference, 0.0, diff_ub, 0.0),
        },
    })
}

/// Group-level expected exposure of one query, as expeval with `-G`
/// (`group.py`): each group's exposure is the sum of its kept documents'
/// (grade > 0, or every judged one with `complete`), in the run and in the
/// target alike, a document of several groups counting fully in each; then
/// EE-D `= sum_G eps_G^2`, EE-R `= sum_G eps_G * eps*_G`, EE-L `= sum over
/// the groups of either of (eps*_G - eps_G)^2`. Documents the run ranks
/// that are not kept (unjudged, or grade 0) add to no group, as in
/// expeval. Raw figures only: expeval's group bounds are loose (its
/// relevance upper bound is always 0, `GroupRelevance`), so its normalised
/// group figures are not reproduced. `None` when no judgment is kept or no
/// kept document has a group (expeval skips the query).
pub fn expeval_groups(
    rankings: &[Vec<String>],
    judged: &HashMap<String, u32>,
    groups: &HashMap<String, Vec<i64>>,
    o: &ExpevalOptions,
) -> Option<ExpectedExposure> {
    let kept = o.judged(judged);
    if kept.is_empty() {
        return None;
    }
    let aggregate = |per_doc: &BTreeMap<String, f64>| -> BTreeMap<i64, f64> {
        let mut out: BTreeMap<i64, f64> = BTreeMap::new();
        for d in kept.keys() {
            for g in groups.get(d).map_or(&[][..], Vec::as_slice) {
                *out.entry(*g).or_default() += per_doc.get(d).copied().unwrap_or(0.0);
            }
        }
        out
    };
    let target = aggregate(&target_exposure(&kept, o));
    if target.is_empty() {
        return None;
    }
    let run = aggregate(&run_exposure(rankings, &kept, o));
    let mut m = ExpectedExposure::default();
    for (g, e) in &run {
        let t = target.get(g).copied().unwrap_or(0.0);
        m.disparity += e * e;
        m.relevance += e * t;
    }
    for g in target
        .keys()
        .chain(run.keys().filter(|g| !target.contains_key(*g)))
    {
        let t = target.get(g).copied().unwrap_or(0.0);
        let e = run.get(g).copied().unwrap_or(0.0);
        m.difference += (t - e) * (t - e);
    }
    Some(m)
}

/// The TREC Fair Ranking 2021 discount of 1-based rank `j`:
/// `1 / log2(max(j, 2))`.
pub fn trec_discount(j: usize) -> f64 {
    1.0 / (j.max(2) as f64).log2()
}

/// Jensen-Shannon divergence with natural logarithms of two non-negative
/// vectors, each normalised to sum 1 first (what `scipy.spatial.distance.
/// jensenshannon` squares to with its default base).
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let mut js = 0.0;
    for (a, b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        if a > 0.0 {
            js += 0.5 * a * (a / m).ln();
        }
        if b > 0.0 {
            js += 0.5 * b * (b / m).ln();
        }
    }
    js.max(0.0)
}

/// Attention-weighted rank fairness of one ranking, as TREC Fair Ranking
/// 2021's `qr_awrf`: the first `k` documents' groups weighted by
/// [`trec_discount`] (a document counts fully for each of its groups; one
/// with no group only uses up its rank), an all-zero vector replaced by the
/// uniform one, and `1 - JSD(rho, target)` with natural logarithms.
/// `target` names every group (its keys are the vector's dimensions); a
/// document's group outside it is ignored.
pub fn awrf(
    ranking: &[String],
    groups_of: &HashMap<String, Vec<String>>,
    target: &BTreeMap<String, f64>,
    k: usize,
) -> f64 {
    let index: HashMap<&str, usize> = target
        .keys()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let mut rho = vec![0.0; target.len()];
    for (i, d) in ranking.iter().take(k).enumerate() {
        for g in groups_of.get(d).into_iter().flatten() {
            if let Some(&gi) = index.get(g.as_str()) {
                rho[gi] += trec_discount(i + 1);
            }
        }
    }
    if rho.iter().sum::<f64>() == 0.0 {
        rho.iter_mut().for_each(|v| *v = 1.0);
    }
    let q: Vec<f64> = target.values().copied().collect();
    1.0 - jensen_shannon(&rho, &q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_expected_exposure_by_hand() {
        // rbp, p = 0.5. Judged: a 2, b 1, c 1 (x unjudged). Groups: a in
        // 0, b in 1, c in 0 and 1. Two sampled rankings: [a, b, x, c] and
        // [x, c, a, b].
        let o = ExpevalOptions {
            model: UserModel::Rbp { patience: 0.5 },
            ..Default::default()
        };
        let j: HashMap<String, u32> = [("a", 2), ("b", 1), ("c", 1)]
            .iter()
            .map(|(d, g)| (d.to_string(), *g))
            .collect();
        let groups: HashMap<String, Vec<i64>> = [
            ("a", vec![0]),
            ("b", vec![1]),
            ("c", vec![0, 1]),
            ("x", vec![1]),
        ]
        .iter()
        .map(|(d, g)| (d.to_string(), g.clone()))
        .collect();
        let r = vec![
            vec!["a".into(), "b".into(), "x".into(), "c".into()],
            vec!["x".into(), "c".into(), "a".into(), "b".into()],
        ];
        // Document exposures, mean over the samples of 0.5^rank0:
        let (ea, eb, ec) = ((1.0 + 0.25) / 2.0, (0.5 + 0.125) / 2.0, (0.125 + 0.5) / 2.0);
        // Targets (expeval, rbp): grade 2 gets rank 0's 1; grade 1's two
        // documents share ranks 1 and 2: (0.5 + 0.25) / 2.
        let (ta, tb, tc) = (1.0, 0.375, 0.375);
        // x is unjudged: it adds to no group.
        let (e0, e1) = (ea + ec, eb + ec);
        let (t0, t1) = (ta + tc, tb + tc);
        let m = expeval_groups(&r, &j, &groups, &o).unwrap();
        assert!((m.disparity - (e0 * e0 + e1 * e1)).abs() < 1e-12, "{m:?}");
        assert!((m.relevance - (e0 * t0 + e1 * t1)).abs() < 1e-12);
        let l = (t0 - e0) * (t0 - e0) + (t1 - e1) * (t1 - e1);
        assert!((m.difference - l).abs() < 1e-12);
        // No group for any kept document: skipped.
        assert!(expeval_groups(&r, &j, &HashMap::new(), &o).is_none());
    }

    fn judged(v: &[(&str, u32)]) -> HashMap<String, u32> {
        v.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    fn rankings(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|r| r.iter().map(|d| d.to_string()).collect())
            .collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 5e-7, "{a} != {b}");
    }

    // The cases below were computed by running expeval.py (diazf/expeval
    // 69ab070f) on these qrels and run files:
    //   q1 0 a 1 | q1 0 b 1 | q1 0 c 0 | q2 0 x 2 | q2 0 y 1 | q2 0 z 0
    //   q1 s1: a c b ; q1 s2: c a b ; q2 s1: y x w
    fn q1() -> (Vec<Vec<String>>, HashMap<String, u32>) {
        (
            rankings(&[&["a", "c", "b"], &["c", "a", "b"]]),
            judged(&[("a", 1), ("b", 1), ("c", 0)]),
        )
    }

    fn q2() -> (Vec<Vec<String>>, HashMap<String, u32>) {
        (
            rankings(&[&["y", "x", "w"]]),
            judged(&[("x", 2), ("y", 1), ("z", 0)]),
        )
    }

    #[test]
    fn expeval_gerr_defaults() {
        let o = ExpevalOptions::default();
        let (r, j) = q1();
        let m = expeval(&r, &j, &o).unwrap();
        close(m.raw.disparity, 0.96875);
        close(m.raw.relevance, 0.546875);
        close(m.raw.difference, 0.65625);
        close(m.normalised.disparity, 0.726562);
        close(m.normalised.relevance, 1.0);
        close(m.normalised.difference, 0.310345);
        let (r, j) = q2();
        let m = expeval(&r, &j, &o).unwrap();
        close(m.raw.disparity, 1.066406);
        close(m.raw.relevance, 0.5);
        close(m.raw.difference, 1.128906);
        close(m.normalised.disparity, 0.799805);
        close(m.normalised.relevance, 0.470588);
        close(m.normalised.difference, 0.471196);
        let b = ExpevalOptions {
            binarize: true,
            ..o
        };
        let m = expeval(&r, &j, &b).unwrap();
        close(m.normalised.relevance, 1.0);
        close(m.normalised.difference, 0.134852);
    }

    #[test]
    fn expeval_rbp() {
        let o = ExpevalOptions {
            model: UserModel::Rbp { patience: 0.5 },
            ..Default::default()
        };
        let (r, j) = q1();
        let m = expeval(&r, &j, &o).unwrap();
        close(m.raw.disparity, 1.1875);
        close(m.raw.relevance, 0.75);
        close(m.raw.difference, 0.8125);
        close(m.normalised.disparity, 0.890625);
        close(m.normalised.relevance, 1.0);
        close(m.normalised.difference, 0.26);
        let (r, j) = q2();
        let m = expeval(&r, &j, &o).unwrap();
        close(m.normalised.disparity, 0.984375);
        close(m.normalised.relevance, 0.8);
        close(m.normalised.difference, 0.173077);
    }

    #[test]
    fn expeval_complete_gives_grade_zero_a_target() {
        let o = ExpevalOptions {
            complete: true,
            ..Default::default()
        };
        let (r, j) = q1();
        let t = target_exposure(&o.judged(&j), &o);
        close(t["c"], 0.0625);
        let m = expeval(&r, &j, &o).unwrap();
        close(m.raw.relevance, 0.5859375);
        close(m.raw.difference, 0.58203125);
        close(m.normalised.disparity, 0.534392);
        close(m.normalised.relevance, 0.622222);
        close(m.normalised.difference, 0.435673);
        let (r, j) = q2();
        let m = expeval(&r, &j, &o).unwrap();
        close(m.normalised.disparity, 0.666667);
        close(m.normalised.relevance, 0.355556);
        close(m.normalised.difference, 0.644444);
    }

    #[test]
    fn expeval_skips_and_defaults() {
        let o = ExpevalOptions::default();
        // No relevant document: expeval prints nothing for the query.
        assert!(expeval(&q1().0, &judged(&[("a", 0)]), &o).is_none());
        // Missing from the run: worst disparity (normalised 1), relevance 1
        // (one level), difference 0 (its value is relevance's upper bound,
        // which is 0 with one level).
        let m = expeval(&[], &q1().1, &o).unwrap();
        close(m.normalised.disparity, 1.0);
        close(m.normalised.relevance, 1.0);
        close(m.normalised.difference, 0.0);
    }

    // AWRF cases computed with trec2021-fair-public's `qr_awrf`: page
    // alignments 1 -> g1, 2 -> g2, 3 -> g1 and g2, 4 -> none, 5 unknown.
    #[test]
    fn awrf_as_trec_fair_2021() {
        let groups: HashMap<String, Vec<String>> = [
            ("1", vec!["g1"]),
            ("2", vec!["g2"]),
            ("3", vec!["g1", "g2"]),
            ("4", vec![]),
        ]
        .iter()
        .map(|(d, g)| (d.to_string(), g.iter().map(|s| s.to_string()).collect()))
        .collect();
        let even: BTreeMap<String, f64> = [("g1".into(), 0.5), ("g2".into(), 0.5)].into();
        let skew: BTreeMap<String, f64> = [("g1".into(), 0.8), ("g2".into(), 0.2)].into();
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        close(awrf(&r(&["1", "2", "3"]), &groups, &even, 20), 1.0);
        close(awrf(&r(&["1", "2", "3"]), &groups, &skew, 20), 0.9493281630);
        close(awrf(&r(&["1", "5", "4"]), &groups, &even, 20), 0.7842384457);
        close(awrf(&r(&["1", "5", "4"]), &groups, &skew, 20), 0.9251182384);
        // Nothing aligned: uniform.
        close(awrf(&r(&["4", "5"]), &groups, &even, 20), 1.0);
        close(awrf(&r(&["4", "5"]), &groups, &skew, 20), 0.9493281630);
        close(awrf(&r(&["2", "1"]), &groups, &even, 20), 1.0);
    }
}
