//! Replaying a judged query set through the engine under each policy, the
//! ledger carrying over (a hub serving the same needs again and again), and
//! measuring relevance and exposure together. With a [`CallModel`]
//! (`hubsearch eval --calls SEED`) each shown page also draws paid calls,
//! booked as `POST /v1/calls` books them, so `fair_impact` has impact to act
//! on (docs/metrics.md, Simulated calls).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hubsearch_core::card::key_of;
use hubsearch_core::{Config, Group, Impact, Mode, PolicyKind, SearchRequest};
use hubsearch_engine::hub::HubPopularity;
use hubsearch_engine::{Engine, LedgerMode, PaidCall};
use hubsearch_rank::{gini, share_of, tail_share_of};
use serde::Serialize;

use crate::calls::{disparities, CallModel, GroupTotals};
use crate::exposure::{awrf, expeval, ExpevalOptions, UserModel};
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
    /// How expected exposure is computed over each query's shown pages.
    pub expeval: ExpevalOptions,
    /// Count queries without any judgment towards the means (as 0).
    pub count_unjudged: bool,
    /// Draw paid calls on every shown page and book them (none: the replay
    /// records no calls, and `fair_impact` ranks as `relevance`).
    pub calls: Option<CallModel>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            mode: Mode::Text,
            repeat: 1,
            page: 10,
            depth: 100,
            expeval: ExpevalOptions {
                model: UserModel::Rbp { patience: 0.5 },
                ..Default::default()
            },
            count_unjudged: false,
            calls: None,
        }
    }
}

/// One policy's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub policy: PolicyKind,
    /// The policy's parameters.
    pub params: BTreeMap<String, f64>,
    /// Means over every (repetition, judged query): relevance metrics;
    /// expected exposure (`ee_l`, `ee_d`, `ee_r` raw, `ee_*_norm`
    /// normalised) over the queries expeval scores; AWRF over popularity
    /// tiers; concentration over the whole replay.
    pub means: BTreeMap<String, f64>,
    /// Relevance metrics of the first repetition, and EE per query.
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
    /// Queries counted in the relevance means.
    pub judged_queries: usize,
    #[serde(skip)]
    pub run: Vec<RunEntry>,
}

/// The popularity tier of a model: the top 1% by downloads, the rest of the
/// top 10%, or the tail.
fn tier(hub: &HubPopularity, id: &str) -> &'static str {
    let k = key_of(id);
    if hub.model_heads.top_1pct.contains(&k) {
        "top1pct"
    } else if hub.model_heads.head.contains(&k) {
        "top10pct"
    } else {
        "tail"
    }
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
    let Served {
        sums,
        n,
        mut per_query,
        pages,
        run,
        exposure,
        calls,
    } = serve(&engine, policy, queries, qrels, opts)?;
    let mut means: BTreeMap<String, f64> = sums
        .into_iter()
        .map(|(k, v)| (k, v / n.max(1) as f64))
        .collect();
    expected_exposure(queries, qrels, &pages, opts, &mut per_query, &mut means);
    let hub = engine.hub();
    means.insert(
        "awrf_popularity_tiers".into(),
        awrf_tiers(&hub, queries, qrels, &pages, opts.page),
    );
    let exposure: HashMap<String, f64> = exposure.into_iter().collect();
    for (k, v) in concentration(&engine, &exposure) {
        means.insert(k, v);
    }
    if let Some(c) = calls {
        let served = pages.values().map(Vec::len).sum::<usize>();
        means.insert("sim_calls".into(), c.calls as f64);
        means.insert(
            "sim_calls_per_page".into(),
            c.calls as f64 / served.max(1) as f64,
        );
        let totals = group_totals(&engine);
        for (k, v) in disparities(&totals, &c.query_groups) {
            means.insert(k, v);
        }
    }
    let params = engine
        .policy(Some(policy))
        .params()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Ok(PolicyReport {
        policy,
        params,
        means,
        per_query,
        judged_queries: n / opts.repeat.max(1),
        run,
    })
}

/// What serving the query set `repeat` times gave.
struct Served<'q> {
    /// Sums of the relevance metrics over the `n` queries counted.
    sums: BTreeMap<String, f64>,
    n: usize,
    /// Relevance metrics of the first repetition, per query.
    per_query: BTreeMap<String, BTreeMap<String, f64>>,
    /// Each query's shown pages, one per repetition.
    pages: BTreeMap<&'q str, Vec<Vec<String>>>,
    run: Vec<RunEntry>,
    /// Exposure per model id over the whole replay.
    exposure: BTreeMap<String, f64>,
    /// With simulated calls: what they gave.
    calls: Option<CallsDrawn>,
}

/// The simulated calls of a replay.
#[derive(Default)]
struct CallsDrawn {
    /// Calls booked.
    calls: u64,
    /// Each query's groups (`ranking.group`) in its last ranked list.
    query_groups: Vec<BTreeSet<u64>>,
}

/// Serve every query `opts.repeat` times under `policy`, the ledger
/// carrying over, scoring each ranked list.
fn serve<'q>(
    engine: &Engine,
    policy: PolicyKind,
    queries: &'q [Query],
    qrels: &Qrels,
    opts: &ReplayOptions,
) -> Result<Served<'q>, hubsearch_engine::Error> {
    let attention = engine.attention();
    let empty = HashMap::new();
    let judged_at_all = |qid: &str| qrels.get(qid).is_some_and(|j| !j.is_empty());
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut per_query: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut pages: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
    let mut run = Vec::new();
    let mut exposure: BTreeMap<String, f64> = BTreeMap::new();
    let mut calls = opts.calls.map(|_| CallsDrawn {
        calls: 0,
        query_groups: vec![BTreeSet::new(); queries.len()],
    });
    let group = engine.config().ranking.group;
    let mut n = 0usize;
    for rep in 0..opts.repeat.max(1) {
        for (qi, q) in queries.iter().enumerate() {
            let mut req = SearchRequest::new(q.text.clone(), opts.depth);
            req.mode = opts.mode;
            req.policy = Some(policy);
            let page_no = (rep * queries.len() + qi) as u64;
            req.seed = Some(page_no);
            req.exposed = Some(opts.page);
            let resp = engine.search(&req)?;
            let ids: Vec<String> = resp.hits.iter().map(|h| h.id.clone()).collect();
            let s = score(&ids, qrels.get(&q.qid).unwrap_or(&empty));
            if opts.count_unjudged || judged_at_all(&q.qid) {
                for (k, v) in &s {
                    *sums.entry(k.clone()).or_default() += v;
                }
                n += 1;
            }
            if rep == 0 {
                per_query.insert(q.qid.clone(), s);
            }
            let rel: Vec<f64> = resp
                .hits
                .iter()
                .take(opts.page)
                .map(|h| h.parts.relevance)
                .collect();
            let weights = attention.page(1, &rel);
            for (id, w) in ids.iter().zip(&weights) {
                *exposure.entry(id.clone()).or_default() += w;
            }
            if let (Some(model), Some(drawn)) = (&opts.calls, calls.as_mut()) {
                let judged = qrels.get(&q.qid).unwrap_or(&empty);
                let grades: Vec<u32> = ids
                    .iter()
                    .take(weights.len())
                    .map(|id| judged.get(id).copied().unwrap_or(0))
                    .collect();
                for j in model.draw(page_no, &weights, &grades) {
                    // Booked as POST /v1/calls books a call from this
                    // page's hit at rank j + 1 (the model's price).
                    engine.record_paid_call(PaidCall {
                        model: ids[j].clone(),
                        page_id: resp.page_id,
                        rank: resp.page_id.map(|_| j as u64 + 1),
                        ..Default::default()
                    })?;
                    drawn.calls += 1;
                }
                drawn.query_groups[qi] = resp
                    .hits
                    .iter()
                    .map(|h| match group {
                        Group::Model => key_of(&h.id),
                        Group::Builder => key_of(&h.card.builder),
                    })
                    .collect();
            }
            run.push((
                q.qid.clone(),
                rep,
                resp.hits.iter().map(|h| (h.id.clone(), h.score)).collect(),
            ));
            let shown: Vec<String> = ids.into_iter().take(opts.page).collect();
            pages.entry(q.qid.as_str()).or_default().push(shown);
        }
    }
    Ok(Served {
        sums,
        n,
        per_query,
        pages,
        run,
        exposure,
        calls,
    })
}

/// Every group's exposure, merit and impact (`ranking.group`,
/// `ranking.impact`) in the engine's ledger: what `fair` and `fair_impact`
/// read.
fn group_totals(engine: &Engine) -> BTreeMap<u64, GroupTotals> {
    let r = &engine.config().ranking;
    engine
        .ledger()
        .rows(r.group)
        .into_iter()
        .map(|(k, t, e)| {
            let impact = match r.impact {
                Impact::Calls => e.calls as f64,
                Impact::Income => e.income_usd,
            };
            (
                k,
                GroupTotals {
                    exposure: t.exposure,
                    merit: t.merit,
                    impact,
                },
            )
        })
        .collect()
}

/// Expected exposure per query over its shown pages, as expeval computes
/// it (queries it skips, those without a relevant model, do not count):
/// the means into `means`, each query's `ee_l` into `per_query`.
fn expected_exposure(
    queries: &[Query],
    qrels: &Qrels,
    pages: &BTreeMap<&str, Vec<Vec<String>>>,
    opts: &ReplayOptions,
    per_query: &mut BTreeMap<String, BTreeMap<String, f64>>,
    means: &mut BTreeMap<String, f64>,
) {
    let empty = HashMap::new();
    let mut ee = [0.0f64; 6];
    let mut ee_n = 0usize;
    for q in queries {
        let judged = qrels.get(&q.qid).unwrap_or(&empty);
        let Some(m) = expeval(&pages[q.qid.as_str()], judged, &opts.expeval) else {
            continue;
        };
        for (slot, v) in ee.iter_mut().zip([
            m.raw.difference,
            m.raw.disparity,
            m.raw.relevance,
            m.normalised.difference,
            m.normalised.disparity,
            m.normalised.relevance,
        ]) {
            *slot += v;
        }
        ee_n += 1;
        if let Some(pq) = per_query.get_mut(&q.qid) {
            pq.insert("ee_l".into(), m.raw.difference);
            pq.insert("ee_l_norm".into(), m.normalised.difference);
        }
    }
    for (name, v) in [
        "ee_l",
        "ee_d",
        "ee_r",
        "ee_l_norm",
        "ee_d_norm",
        "ee_r_norm",
    ]
    .iter()
    .zip(ee)
    {
        means.insert(name.to_string(), v / ee_n.max(1) as f64);
    }
}

/// Mean AWRF (TREC Fair 2021) over popularity tiers of every shown page of
/// the queries with a relevant model: the target is the tiers' share among
/// the query's relevant models.
fn awrf_tiers(
    hub: &HubPopularity,
    queries: &[Query],
    qrels: &Qrels,
    pages: &BTreeMap<&str, Vec<Vec<String>>>,
    page: usize,
) -> f64 {
    let empty = HashMap::new();
    let (mut awrf_sum, mut awrf_n) = (0.0, 0usize);
    for q in queries {
        let judged = qrels.get(&q.qid).unwrap_or(&empty);
        let mut target: BTreeMap<String, f64> = ["top1pct", "top10pct", "tail"]
            .iter()
            .map(|t| (t.to_string(), 0.0))
            .collect();
        let mut relevant = 0;
        for (d, g) in judged {
            if *g >= 1 {
                *target.entry(tier(hub, d).to_string()).or_default() += 1.0;
                relevant += 1;
            }
        }
        if relevant == 0 {
            continue;
        }
        for r in &pages[q.qid.as_str()] {
            let groups: HashMap<String, Vec<String>> = r
                .iter()
                .map(|d| (d.clone(), vec![tier(hub, d).to_string()]))
                .collect();
            awrf_sum += awrf(r, &groups, &target, page);
            awrf_n += 1;
        }
    }
    awrf_sum / awrf_n.max(1) as f64
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
