//! Exposure metrics over ranked lists (docs/metrics.md, Exposure): expected
//! exposure against a grade-based target (Diaz et al., CIKM 2020; TREC Fair
//! 2022 `eel.py`), and AWRF (TREC Fair 2021).

use std::collections::HashMap;

use hubsearch_rank::Attention;

/// Expected-exposure figures of one query.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ExpectedExposure {
    /// `||eps - eps*||^2`: lower is fairer and more relevant.
    pub ee_l: f64,
    /// `||eps||^2`: disparity (how unequal the exposure is).
    pub ee_d: f64,
    /// `eps . eps*`: relevance (exposure going where the target wants it).
    pub ee_r: f64,
}

/// Expected exposure of each document over `rankings` (sampled or repeated
/// rankings of one query), positions 1..=k weighted by `attention`.
pub fn expected_exposure(
    rankings: &[Vec<String>],
    k: usize,
    attention: &Attention,
) -> HashMap<String, f64> {
    let mut eps: HashMap<String, f64> = HashMap::new();
    if rankings.is_empty() {
        return eps;
    }
    for r in rankings {
        for (i, d) in r.iter().take(k).enumerate() {
            *eps.entry(d.clone()).or_default() += attention.weight(i + 1);
        }
    }
    let n = rankings.len() as f64;
    for v in eps.values_mut() {
        *v /= n;
    }
    eps
}

/// The grade-based target: the ideal ranking puts higher grades first; the
/// documents of one grade share equally the exposure of the positions (up to
/// k) that the ideal ranking gives that grade.
pub fn target_exposure(
    judged: &HashMap<String, u32>,
    k: usize,
    attention: &Attention,
) -> HashMap<String, f64> {
    let mut grades: Vec<u32> = judged.values().copied().filter(|g| *g > 0).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    grades.dedup();
    let mut out = HashMap::new();
    let mut pos = 1;
    for g in grades {
        let docs: Vec<&String> = judged
            .iter()
            .filter(|(_, gg)| **gg == g)
            .map(|(d, _)| d)
            .collect();
        let n = docs.len();
        let total: f64 = (pos..pos + n)
            .filter(|j| *j <= k)
            .map(|j| attention.weight(j))
            .sum();
        for d in docs {
            out.insert(d.clone(), total / n as f64);
        }
        pos += n;
    }
    out
}

/// EE-L, EE-D and EE-R of one query.
pub fn expected_exposure_metrics(
    rankings: &[Vec<String>],
    judged: &HashMap<String, u32>,
    k: usize,
    attention: &Attention,
) -> ExpectedExposure {
    let eps = expected_exposure(rankings, k, attention);
    let target = target_exposure(judged, k, attention);
    let mut m = ExpectedExposure::default();
    for (d, e) in &eps {
        let t = target.get(d).copied().unwrap_or(0.0);
        m.ee_d += e * e;
        m.ee_r += e * t;
        m.ee_l += (e - t) * (e - t);
    }
    for (d, t) in &target {
        if !eps.contains_key(d) {
            m.ee_l += t * t;
        }
    }
    m
}

/// Attention-weighted rank fairness of one ranking (TREC Fair 2021):
/// `1 - JSD(rho, rho*)`, base 2, where `rho` is the position-weighted
/// distribution of the ranking's groups and `target` the wanted one. Both are
/// normalised here; documents with no group are ignored.
pub fn awrf(
    ranking: &[String],
    group_of: &HashMap<String, String>,
    target: &HashMap<String, f64>,
    k: usize,
    attention: &Attention,
) -> f64 {
    let mut rho: HashMap<&str, f64> = HashMap::new();
    for (i, d) in ranking.iter().take(k).enumerate() {
        if let Some(g) = group_of.get(d) {
            *rho.entry(g.as_str()).or_default() += attention.weight(i + 1);
        }
    }
    let rs: f64 = rho.values().sum();
    let ts: f64 = target.values().sum();
    if rs <= 0.0 || ts <= 0.0 {
        return 0.0;
    }
    let mut groups: Vec<&str> = rho
        .keys()
        .copied()
        .chain(target.keys().map(String::as_str))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let mut jsd = 0.0;
    for g in groups {
        let p = rho.get(g).copied().unwrap_or(0.0) / rs;
        let q = target.get(g).copied().unwrap_or(0.0) / ts;
        let m = (p + q) / 2.0;
        if p > 0.0 {
            jsd += 0.5 * p * (p / m).log2();
        }
        if q > 0.0 {
            jsd += 0.5 * q * (q / m).log2();
        }
    }
    1.0 - jsd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(v: &[(&str, u32)]) -> HashMap<String, u32> {
        v.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    #[test]
    fn target_shares_each_grades_positions() {
        // RBP gamma 0.5: positions weigh 1, 0.5, 0.25, 0.125.
        let att = Attention::Rbp { gamma: 0.5 };
        let t = target_exposure(&judged(&[("a", 2), ("b", 1), ("c", 1), ("z", 0)]), 10, &att);
        assert_eq!(t["a"], 1.0);
        assert_eq!(t["b"], 0.375); // (0.5 + 0.25) / 2
        assert_eq!(t["c"], 0.375);
        assert!(!t.contains_key("z"));
        // Only 2 positions: grade 1 shares position 2 alone.
        let t = target_exposure(&judged(&[("a", 2), ("b", 1), ("c", 1)]), 2, &att);
        assert_eq!(t["b"], 0.25);
    }

    #[test]
    fn ee_hand_computed() {
        let att = Attention::Rbp { gamma: 0.5 };
        let j = judged(&[("a", 1), ("b", 1)]);
        // Target: a and b share 1 + 0.5 -> 0.75 each.
        // Always [a, b]: eps a = 1, b = 0.5: EE-L = 0.0625 * 2 = 0.125.
        let always = vec![vec!["a".to_string(), "b".to_string()]; 4];
        let m = expected_exposure_metrics(&always, &j, 2, &att);
        assert!((m.ee_l - 0.125).abs() < 1e-12);
        assert!((m.ee_d - 1.25).abs() < 1e-12);
        assert!((m.ee_r - 1.125).abs() < 1e-12);
        // Alternating [a,b] and [b,a]: eps = 0.75 each: EE-L = 0.
        let alt = vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["b".to_string(), "a".to_string()],
        ];
        assert!(expected_exposure_metrics(&alt, &j, 2, &att).ee_l.abs() < 1e-12);
        // Showing an irrelevant doc: its exposure counts against, and the
        // unshown relevant doc's target counts too.
        let bad = vec![vec!["x".to_string(), "a".to_string()]];
        let m = expected_exposure_metrics(&bad, &j, 2, &att);
        // x: (1 - 0)^2 = 1 ; a: (0.5 - 0.75)^2 = 0.0625 ; b: 0.75^2 = 0.5625
        assert!((m.ee_l - 1.625).abs() < 1e-12);
    }

    #[test]
    fn awrf_hand_computed() {
        let att = Attention::Rbp { gamma: 0.5 };
        let groups: HashMap<String, String> = [("a", "g1"), ("b", "g2")]
            .iter()
            .map(|(d, g)| (d.to_string(), g.to_string()))
            .collect();
        let even: HashMap<String, f64> = [("g1".to_string(), 1.0), ("g2".to_string(), 1.0)].into();
        let r = vec!["a".to_string(), "b".to_string()];
        // rho = (2/3, 1/3), target (1/2, 1/2): m = (7/12, 5/12).
        let p: [f64; 2] = [2.0 / 3.0, 1.0 / 3.0];
        let m: [f64; 2] = [7.0 / 12.0, 5.0 / 12.0];
        let jsd = 0.5 * (p[0] * (p[0] / m[0]).log2() + p[1] * (p[1] / m[1]).log2())
            + 0.5 * (0.5 * (0.5 / m[0]).log2() + 0.5 * (0.5 / m[1]).log2());
        assert!((awrf(&r, &groups, &even, 2, &att) - (1.0 - jsd)).abs() < 1e-12);
        // A ranking that matches the target exactly scores 1.
        let target: HashMap<String, f64> =
            [("g1".to_string(), 2.0), ("g2".to_string(), 1.0)].into();
        assert!((awrf(&r, &groups, &target, 2, &att) - 1.0).abs() < 1e-12);
    }
}
