//! Relevance metrics (docs/metrics.md, Relevance), as trec_eval defines them:
//! linear gain = grade, discount 1/log2(1 + rank), ideal from the qrels;
//! a document is relevant for Recall and MRR when its grade is >= 1.

use std::collections::HashMap;

/// nDCG@k of `ranked` against `judged` (doc -> grade). 0 when nothing is relevant.
pub fn ndcg(ranked: &[String], judged: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| judged.get(d).copied().unwrap_or(0) as f64 / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = judged.values().copied().filter(|g| *g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| *g as f64 / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// Reciprocal rank of the first relevant document within the top k.
pub fn mrr(ranked: &[String], judged: &HashMap<String, u32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| judged.get(d).is_some_and(|g| *g >= 1))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// nDCG@k on the condensed list (Sakai 2007, "Alternatives to Bpref";
/// docs/metrics.md): the ranking with every unjudged document removed, so
/// a system is neither punished nor rewarded for what the judges never saw.
/// It overestimates a system that ranks unjudged non-relevant cards high;
/// report it beside nDCG@k and judged@k, not instead.
pub fn condensed_ndcg(ranked: &[String], judged: &HashMap<String, u32>, k: usize) -> f64 {
    let kept: Vec<String> = ranked
        .iter()
        .filter(|d| judged.contains_key(*d))
        .cloned()
        .collect();
    ndcg(&kept, judged, k)
}

/// Share of the relevant documents found in the top k.
pub fn recall(ranked: &[String], judged: &HashMap<String, u32>, k: usize) -> f64 {
    let relevant = judged.values().filter(|g| **g >= 1).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| judged.get(*d).is_some_and(|g| *g >= 1))
        .count();
    found as f64 / relevant as f64
}

/// Share of the top k that carries a judgment (any grade): how much of a
/// figure rests on judged documents when unjudged ones count as not
/// relevant. 0 for an empty ranking.
pub fn judged(ranked: &[String], judged: &HashMap<String, u32>, k: usize) -> f64 {
    let top = ranked.iter().take(k);
    let n = top.len();
    if n == 0 {
        return 0.0;
    }
    ranked
        .iter()
        .take(k)
        .filter(|d| judged.contains_key(*d))
        .count() as f64
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged_of() -> HashMap<String, u32> {
        [("a", 2), ("b", 0)]
            .iter()
            .map(|(d, g)| (d.to_string(), *g))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn hand_computed() {
        let judged: HashMap<String, u32> = [("a", 2), ("b", 1), ("c", 1)]
            .iter()
            .map(|(d, g)| (d.to_string(), *g))
            .collect();
        // Ranking b, x, a: DCG = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2.
        // Ideal a, b, c: 2 + 1/log2(3) + 1/log2(4) = 2 + 0.63093 + 0.5.
        let r = s(&["b", "x", "a"]);
        let ideal = 2.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((ndcg(&r, &judged, 10) - 2.0 / ideal).abs() < 1e-12);
        assert!((ndcg(&s(&["a", "b", "c"]), &judged, 10) - 1.0).abs() < 1e-12);
        assert_eq!(mrr(&s(&["x", "y", "c"]), &judged, 10), 1.0 / 3.0);
        assert_eq!(mrr(&s(&["x", "y", "c"]), &judged, 2), 0.0);
        assert!((recall(&r, &judged, 10) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(ndcg(&r, &HashMap::new(), 10), 0.0);
        assert!((super::judged(&r, &judged_of(), 10) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(super::judged(&r, &judged_of(), 1), 1.0);
        assert_eq!(super::judged(&[], &judged_of(), 10), 0.0);
        // Condensed: x (unjudged) is dropped, b, a at ranks 1, 2:
        // DCG = 1 + 2/log2(3).
        let c = condensed_ndcg(&r, &judged, 10);
        assert!((c - (1.0 + 2.0 / 3f64.log2()) / ideal).abs() < 1e-12, "{c}");
        // A judged zero stays in the list and takes its rank.
        let mut with_zero = judged.clone();
        with_zero.insert("x".into(), 0);
        assert!((condensed_ndcg(&r, &with_zero, 10) - ndcg(&r, &judged, 10)).abs() < 1e-12);
    }
}
