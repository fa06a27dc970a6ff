//! Running a query set through the engine and scoring it.

use std::collections::BTreeMap;

use hubsearch_core::{Mode, PolicyKind, SearchRequest};
use hubsearch_engine::Engine;
use serde::Serialize;

use crate::metrics;
use crate::trec::{Qrels, Query, RunEntry};

/// What to run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub mode: Mode,
    pub policy: Option<PolicyKind>,
    /// Serve the whole query list this many times in sequence.
    pub repeat: usize,
    /// Depth of each ranked list.
    pub depth: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            mode: Mode::Text,
            policy: None,
            repeat: 1,
            depth: 100,
        }
    }
}

/// Per-query and mean figures.
#[derive(Debug, Clone, Serialize, Default)]
pub struct EvalReport {
    pub queries: usize,
    pub means: BTreeMap<String, f64>,
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
    #[serde(skip)]
    pub run: Vec<RunEntry>,
}

/// Score one ranked list.
pub fn score(
    ranked: &[String],
    judged: &std::collections::HashMap<String, u32>,
) -> BTreeMap<String, f64> {
    BTreeMap::from([
        ("ndcg@10".to_string(), metrics::ndcg(ranked, judged, 10)),
        ("ndcg@100".to_string(), metrics::ndcg(ranked, judged, 100)),
        ("mrr@10".to_string(), metrics::mrr(ranked, judged, 10)),
        (
            "recall@100".to_string(),
            metrics::recall(ranked, judged, 100),
        ),
        ("judged@10".to_string(), metrics::judged(ranked, judged, 10)),
        (
            "ndcg_condensed@10".to_string(),
            metrics::condensed_ndcg(ranked, judged, 10),
        ),
    ])
}

/// Run `queries` through `engine` and score them against `qrels` (the means
/// are over all repetitions of the queries with judgments).
pub fn evaluate(
    engine: &Engine,
    queries: &[Query],
    qrels: &Qrels,
    opts: &EvalOptions,
) -> Result<EvalReport, hubsearch_engine::Error> {
    let empty = Default::default();
    let mut report = EvalReport {
        queries: queries.len(),
        ..Default::default()
    };
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut n = 0usize;
    for rep in 0..opts.repeat.max(1) {
        for q in queries {
            let mut req = SearchRequest::new(q.text.clone(), opts.depth);
            req.mode = opts.mode;
            req.policy = opts.policy;
            req.seed = Some(rep as u64);
            let resp = engine.search(&req)?;
            let ranked: Vec<(String, f64)> =
                resp.hits.iter().map(|h| (h.id.clone(), h.score)).collect();
            let ids: Vec<String> = ranked.iter().map(|(d, _)| d.clone()).collect();
            let judged = qrels.get(&q.qid).filter(|j| !j.is_empty());
            let s = score(&ids, judged.unwrap_or(&empty));
            // Queries without judgments do not count towards the means.
            if judged.is_some() {
                for (k, v) in &s {
                    *sums.entry(k.clone()).or_default() += v;
                }
                n += 1;
            }
            if rep == 0 {
                report.per_query.insert(q.qid.clone(), s);
            }
            report.run.push((q.qid.clone(), rep, ranked));
        }
    }
    report.means = sums
        .into_iter()
        .map(|(k, v)| (k, v / n.max(1) as f64))
        .collect();
    Ok(report)
}
