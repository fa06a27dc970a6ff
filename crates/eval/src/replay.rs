//! Replaying a judged query set through the engine under each policy, the
//! ledger carrying over (a hub serving the same needs again and again), and
//! measuring relevance and exposure together.

use std::collections::{BTreeMap, HashMap, HashSet};

use hubsearch_core::card::key_of;
use hubsearch_core::{Config, Mode, PolicyKind, SearchRequest};
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_rank::{gini, share_of, tail_share_of};
use serde::Serialize;

use crate::exposure::expected_exposure_metrics;
use crate::harness::score;
use crate::trec::{Qrels, Query, RunEntry};

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub mode: Mode,
    /// Serve the whole query list this many times in sequence.
    pub repeat: usize,
    /// Hits a user sees per search (and that receive exposure).
    pub page: usize,
    /// Depth of each ranked list (for nDCG@100, Recall@100).
    pub depth: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            mode: Mode::Text,
            repeat: 1,
            page: 10,
            depth: 100,
        }
    }
}

/// One policy's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub policy: PolicyKind,
    /// Means over every (repetition, query): relevance metrics, and exposure
    /// metrics (`ee_l`, `ee_d`, `ee_r` averaged over queries; concentration
    /// over the whole replay).
    pub means: BTreeMap<String, f64>,
    /// Relevance metrics of the first repetition, and EE per query.
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
    #[serde(skip)]
    pub run: Vec<RunEntry>,
}

/// Replay `queries` under `policy` with a fresh in-memory ledger.
pub fn replay(
    config: &Config,
    policy: PolicyKind,
    queries: &[Query],
    qrels: &Qrels,
    opts: &ReplayOptions,
) -> Result<PolicyReport, hubsearch_engine::Error> {
    let engine = Engine::open_with(config.clone(), LedgerMode::Ephemeral, false)?;
    let attention = engine.attention();
    let empty = HashMap::new();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut per_query: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut rankings: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    let mut run = Vec::new();
    let mut exposure: HashMap<String, f64> = HashMap::new();
    let mut n = 0usize;
    for rep in 0..opts.repeat.max(1) {
        for (qi, q) in queries.iter().enumerate() {
            let mut req = SearchRequest::new(q.text.clone(), opts.depth);
            req.mode = opts.mode;
            req.policy = Some(policy);
            req.seed = Some((rep * queries.len() + qi) as u64);
            req.exposed = Some(opts.page);
            let resp = engine.search(&req)?;
            let ids: Vec<String> = resp.hits.iter().map(|h| h.id.clone()).collect();
            let s = score(&ids, qrels.get(&q.qid).unwrap_or(&empty));
            for (k, v) in &s {
                *sums.entry(k.clone()).or_default() += v;
            }
            n += 1;
            if rep == 0 {
                per_query.insert(q.qid.clone(), s);
            }
            for (i, id) in ids.iter().take(opts.page).enumerate() {
                *exposure.entry(id.clone()).or_default() += attention.weight(i + 1);
            }
            run.push((
                q.qid.clone(),
                rep,
                resp.hits.iter().map(|h| (h.id.clone(), h.score)).collect(),
            ));
            rankings.entry(q.qid.as_str()).or_default().push(ids);
        }
    }
    let mut means: BTreeMap<String, f64> = sums
        .into_iter()
        .map(|(k, v)| (k, v / n.max(1) as f64))
        .collect();

    // Expected exposure per query, over its repetitions.
    let mut ee = [0.0f64; 3];
    for q in queries {
        let m = expected_exposure_metrics(
            &rankings[q.qid.as_str()],
            qrels.get(&q.qid).unwrap_or(&empty),
            opts.page,
            &attention,
        );
        ee[0] += m.ee_l;
        ee[1] += m.ee_d;
        ee[2] += m.ee_r;
        if let Some(pq) = per_query.get_mut(&q.qid) {
            pq.insert("ee_l".into(), m.ee_l);
        }
    }
    let nq = queries.len().max(1) as f64;
    // AWRF over popularity tiers (top 1%, rest of the top 10%, tail): the
    // target is the tiers' share among the query's relevant models.
    let hub = engine.hub();
    let tier = |id: &str| -> String {
        let k = key_of(id);
        if hub.model_heads.top_1pct.contains(&k) {
            "top1pct".into()
        } else if hub.model_heads.head.contains(&k) {
            "top10pct".into()
        } else {
            "tail".into()
        }
    };
    let (mut awrf_sum, mut awrf_n) = (0.0, 0usize);
    for q in queries {
        let judged = qrels.get(&q.qid).unwrap_or(&empty);
        let mut target: HashMap<String, f64> = HashMap::new();
        for (d, g) in judged {
            if *g >= 1 {
                *target.entry(tier(d)).or_default() += 1.0;
            }
        }
        if target.is_empty() {
            continue;
        }
        for r in &rankings[q.qid.as_str()] {
            let groups: HashMap<String, String> = r
                .iter()
                .take(opts.page)
                .map(|d| (d.clone(), tier(d)))
                .collect();
            awrf_sum += crate::exposure::awrf(r, &groups, &target, opts.page, &attention);
            awrf_n += 1;
        }
    }
    means.insert(
        "awrf_popularity_tiers".into(),
        awrf_sum / awrf_n.max(1) as f64,
    );
    means.insert("ee_l".into(), ee[0] / nq);
    means.insert("ee_d".into(), ee[1] / nq);
    means.insert("ee_r".into(), ee[2] / nq);
    for (k, v) in concentration(&engine, &exposure) {
        means.insert(k, v);
    }
    Ok(PolicyReport {
        policy,
        means,
        per_query,
        run,
    })
}

/// Gini over all models and builders (zeros included), and the shares of
/// exposure to the head (top 1%, top 10% by popularity) and the tail.
fn concentration(engine: &Engine, exposure: &HashMap<String, f64>) -> Vec<(String, f64)> {
    let hub = engine.hub();
    let by_key: HashMap<u64, f64> = exposure.iter().map(|(id, e)| (key_of(id), *e)).collect();
    let mut models: Vec<f64> = hub
        .downloads
        .keys()
        .map(|k| by_key.get(k).copied().unwrap_or(0.0))
        .collect();
    models.sort_by(f64::total_cmp);
    let share = |set: &HashSet<u64>| share_of(&by_key, set);
    let b_exp = hub.by_builder(&by_key);
    let b_values: Vec<f64> = hub
        .builders
        .iter()
        .map(|b| b_exp.get(b).copied().unwrap_or(0.0))
        .collect();
    let b_tail = tail_share_of(&b_exp, &hub.builder_heads.head);
    vec![
        ("gini_models".into(), gini(&models)),
        (
            "top1pct_share_models".into(),
            share(&hub.model_heads.top_1pct),
        ),
        ("top10_share_models".into(), share(&hub.model_heads.top_10)),
        (
            "tail_share_models".into(),
            1.0 - share(&hub.model_heads.head),
        ),
        ("gini_builders".into(), gini(&b_values)),
        ("tail_share_builders".into(), b_tail),
    ]
}
