//! The marketplace simulator (docs/simulator.md): users arrive, search,
//! look at the page with position bias, call models with a probability by
//! relevance grade, and pay their builders; calls feed popularity, which the
//! `popularity` policy ranks by. Policies are compared on the same users
//! (common random numbers: the same queries and the same dice per visit).
//!
//! Retrieval is the real engine's (candidates and relevance per query,
//! computed once per distinct query); ranking is the real policy code with
//! the simulator's own exposure book and call counts, so a run of 10^5
//! visits per policy takes seconds.

use std::collections::{HashMap, HashSet};

use hubsearch_core::config::RankingConfig;
use hubsearch_core::{lang, Group, Impact, Mode, PolicyKind, SearchRequest};
use hubsearch_engine::{CandidateFacts, Engine};
use hubsearch_rank::{gini, lorenz, page_delta, rank, Attention, Candidate, ExposureBook, Policy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::metrics::ndcg;
use crate::trec::{Qrels, Query};

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct SimOptions {
    pub visits: usize,
    pub rounds: usize,
    pub seed: u64,
    pub policies: Vec<PolicyKind>,
    /// Hits on a page.
    pub page: usize,
    /// Probability that an examined model is called, by grade 0, 1, 2.
    pub call_probability: [f64; 3],
    /// Share of visits that draw a judged query (the rest: generated ones).
    pub judged_share: f64,
    /// Generated queries in the pool.
    pub generated_queries: usize,
    /// Income (USD over the whole run, scaled per round) a builder needs to
    /// count as sustainable.
    pub sustainable_usd: f64,
    /// Prices: this share of models is free; the rest log-normal around the
    /// median with this sigma (natural log), seeded.
    pub free_share: f64,
    pub median_price_usd: f64,
    pub price_sigma: f64,
    /// lambdas of the `fair` sweep (each run with visits / 4).
    pub lambdas: Vec<f64>,
    pub alpha: f64,
    pub beta: f64,
    pub temperature: f64,
    /// What `fair_impact` counts as impact.
    pub impact: Impact,
    pub mode: Mode,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            visits: 100_000,
            rounds: 10,
            seed: 42,
            policies: PolicyKind::ALL.to_vec(),
            page: 10,
            call_probability: [0.05, 0.5, 0.9],
            judged_share: 0.2,
            generated_queries: 400,
            sustainable_usd: 0.10,
            free_share: 0.4,
            median_price_usd: 0.002,
            price_sigma: 1.0,
            lambdas: vec![0.0, 0.001, 0.003, 0.01, 0.03, 0.1],
            alpha: 1.0,
            beta: 0.5,
            temperature: 0.1,
            impact: Impact::Calls,
            mode: Mode::Text,
        }
    }
}

/// One candidate as the simulator sees it.
#[derive(Debug, Clone)]
struct SimCand {
    facts: CandidateFacts,
    relevance: f64,
    grade: u32,
    price: f64,
}

struct SimQuery {
    cands: Vec<SimCand>,
    /// Grades of everything relevant (for the ideal DCG).
    ideal: HashMap<String, u32>,
    ids: Vec<String>,
}

/// Figures of one round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundFigures {
    pub round: usize,
    pub visits: usize,
    pub ndcg10: f64,
    pub income_gini_builders: f64,
    pub sustainable_builder_share: f64,
    pub exposure_gini_models: f64,
}

/// Figures of one policy's run.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRun {
    pub policy: PolicyKind,
    pub lambda: Option<f64>,
    pub ndcg10: f64,
    /// Calls to relevant models per visit.
    pub utility: f64,
    pub calls: u64,
    pub income_usd: f64,
    pub exposure_gini_models: f64,
    pub exposure_gini_builders: f64,
    pub income_gini_builders: f64,
    pub top1pct_call_share: f64,
    pub tail_exposure_share: f64,
    pub sustainable_builder_share: f64,
    pub rounds: Vec<RoundFigures>,
    #[serde(skip)]
    pub lorenz_income: Vec<(f64, f64)>,
    #[serde(skip)]
    pub lorenz_exposure: Vec<(f64, f64)>,
}

/// A whole simulation.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    pub options: SimOptions,
    pub models: usize,
    pub builders: usize,
    pub distinct_queries: usize,
    pub runs: Vec<PolicyRun>,
    pub sweep: Vec<PolicyRun>,
}

fn price_of(id_key: u64, o: &SimOptions) -> f64 {
    let mut r = ChaCha8Rng::seed_from_u64(id_key ^ o.seed.rotate_left(17));
    if r.gen::<f64>() < o.free_share {
        return 0.0;
    }
    let u1: f64 = r.gen_range(f64::EPSILON..1.0);
    let u2: f64 = r.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (o.median_price_usd.ln() + o.price_sigma * z).exp().min(1.0)
}

/// Generated queries: a random card's task words, sometimes its language
/// and dataset; judged by the same rule (grade 2: task and every named
/// language/dataset match; grade 1: the task matches).
#[derive(Debug, Clone)]
struct Rule {
    task: String,
    language: Option<String>,
    dataset: Option<String>,
}

impl Rule {
    fn grade(&self, c: &hubsearch_core::ModelCard) -> u32 {
        if c.task.as_deref() != Some(self.task.as_str()) {
            return 0;
        }
        let lang_ok = self
            .language
            .as_ref()
            .is_none_or(|l| c.languages.contains(l));
        let ds_ok = self.dataset.as_ref().is_none_or(|d| c.datasets.contains(d));
        if lang_ok && ds_ok {
            2
        } else {
            1
        }
    }
}

/// Build the query pool: judged queries (graded by `qrels`) and generated ones.
fn query_pool(
    engine: &Engine,
    judged: &[Query],
    qrels: &Qrels,
    o: &SimOptions,
    progress: &dyn Fn(&str),
) -> Result<(Vec<SimQuery>, Vec<SimQuery>), hubsearch_engine::Error> {
    let cards = engine.all_cards()?;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let with_task: Vec<&hubsearch_core::ModelCard> =
        cards.iter().filter(|c| c.task.is_some()).collect();
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    let mut tries = 0;
    while rules.len() < o.generated_queries
        && !with_task.is_empty()
        && tries < o.generated_queries * 20
    {
        tries += 1;
        let c = with_task[rng.gen_range(0..with_task.len())];
        let task = c.task.clone().expect("filtered");
        let language = c
            .languages
            .iter()
            .find(|l| *l != "en" && lang::language_names(l).is_some())
            .filter(|_| rng.gen_bool(0.6))
            .cloned();
        let dataset = c.datasets.first().filter(|_| rng.gen_bool(0.3)).cloned();
        let mut words = Vec::new();
        if let Some(l) = &language {
            words.push(
                lang::language_names(l)
                    .and_then(|n| n.split(' ').next())
                    .unwrap_or(l)
                    .to_string(),
            );
        }
        words.push(task.replace('-', " "));
        if let Some(d) = &dataset {
            words.push(d.replace(['_', '-'], " "));
        }
        let text = words.join(" ");
        if seen.insert(text.clone()) {
            rules.push((
                text,
                Rule {
                    task,
                    language,
                    dataset,
                },
            ));
        }
    }
    let depth = engine.config().search.candidates.min(100);
    let searcher = engine.text_index().searcher();
    type Listed = Vec<(hubsearch_core::ModelCard, f64, CandidateFacts)>;
    let retrieve = |text: &str| -> Result<Listed, hubsearch_engine::Error> {
        let mut req = SearchRequest::new(
            text.to_string(),
            depth.min(engine.config().search.max_limit),
        );
        req.mode = o.mode;
        let r = engine.retrieve(&searcher, &req, depth)?;
        let mut out = Vec::with_capacity(r.found.len());
        for f in &r.found {
            out.push((
                engine.text_index().card(&searcher, f.addr)?,
                f.relevance,
                f.facts,
            ));
        }
        Ok(out)
    };
    let to_sim = |list: Listed,
                  grade: &dyn Fn(&hubsearch_core::ModelCard) -> u32|
     -> (Vec<SimCand>, Vec<String>) {
        let ids = list.iter().map(|(c, _, _)| c.id.clone()).collect();
        let cands = list
            .into_iter()
            .map(|(c, relevance, facts)| SimCand {
                // The simulator counts its own calls, not the card's.
                facts: CandidateFacts {
                    paid_calls: 0,
                    ..facts
                },
                relevance,
                grade: grade(&c),
                price: price_of(facts.id_key, o),
            })
            .collect();
        (cands, ids)
    };
    let mut judged_pool = Vec::new();
    let empty = HashMap::new();
    for q in judged {
        let grades = qrels.get(&q.qid).unwrap_or(&empty);
        let (cands, ids) = to_sim(retrieve(&q.text)?, &|c| {
            grades.get(&c.id).copied().unwrap_or(0)
        });
        judged_pool.push(SimQuery {
            cands,
            ideal: grades.clone(),
            ids,
        });
    }
    progress(&format!("retrieved {} judged queries", judged_pool.len()));
    let mut gen_pool = Vec::new();
    for (text, rule) in rules {
        let (cands, ids) = to_sim(retrieve(&text)?, &|c| rule.grade(c));
        // The ideal: every card in the hub the rule grades (its best 100).
        let ideal: HashMap<String, u32> = ids
            .iter()
            .cloned()
            .zip(cands.iter().map(|c| c.grade))
            .filter(|(_, g)| *g > 0)
            .collect();
        let mut ideal = ideal;
        for c in cards
            .iter()
            .filter(|c| c.task.as_deref() == Some(rule.task.as_str()))
            .take(2000)
        {
            let g = rule.grade(c);
            if g > 0 {
                ideal.insert(c.id.clone(), g);
            }
        }
        gen_pool.push(SimQuery { cands, ideal, ids });
    }
    progress(&format!("retrieved {} generated queries", gen_pool.len()));
    Ok((judged_pool, gen_pool))
}

/// Run the simulation for every policy (and the lambda sweep of `fair`).
pub fn simulate(
    engine: &Engine,
    judged: &[Query],
    qrels: &Qrels,
    o: &SimOptions,
    progress: &dyn Fn(&str),
) -> Result<Simulation, hubsearch_engine::Error> {
    let (judged_pool, gen_pool) = query_pool(engine, judged, qrels, o, progress)?;
    let hub = engine.hub();
    let attention = Attention::new(
        engine.config().ranking.attention,
        engine.config().ranking.gamma,
    );
    let ranking = RankingConfig {
        alpha: o.alpha,
        beta: o.beta,
        temperature: o.temperature,
        ..engine.config().ranking.clone()
    };
    let mut runs = Vec::new();
    for &kind in &o.policies {
        let policy = Policy::new(kind, &ranking);
        runs.push(run(
            &policy,
            None,
            o.visits,
            &judged_pool,
            &gen_pool,
            &hub,
            &attention,
            o,
        ));
        progress(&format!("simulated {} visits under {kind}", o.visits));
    }
    let mut sweep = Vec::new();
    for &l in &o.lambdas {
        sweep.push(run(
            &Policy::Fair {
                lambda: l,
                rounds: ranking.rounds,
            },
            Some(l),
            (o.visits / 4).max(1),
            &judged_pool,
            &gen_pool,
            &hub,
            &attention,
            o,
        ));
    }
    if !o.lambdas.is_empty() {
        progress(&format!("lambda sweep of {} runs done", o.lambdas.len()));
    }
    Ok(Simulation {
        options: o.clone(),
        models: hub.len(),
        builders: hub.builders.len(),
        distinct_queries: judged_pool.len() + gen_pool.len(),
        runs,
        sweep,
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    policy: &Policy,
    lambda: Option<f64>,
    visits: usize,
    judged: &[SimQuery],
    generated: &[SimQuery],
    hub: &hubsearch_engine::hub::HubPopularity,
    attention: &Attention,
    o: &SimOptions,
) -> PolicyRun {
    let mut book = ExposureBook::new();
    let o_impact = o.impact;
    let mut calls: HashMap<u64, u64> = HashMap::new();
    let mut income: HashMap<u64, f64> = HashMap::new();
    let mut exposure_b: HashMap<u64, f64> = HashMap::new();
    let (mut ndcg_sum, mut useful_calls, mut total_calls, mut total_income) =
        (0.0, 0u64, 0u64, 0.0);
    let mut rounds = Vec::new();
    let per_round = visits.div_ceil(o.rounds.max(1));
    let (mut round_ndcg, mut round_n) = (0.0, 0usize);
    let builders: Vec<u64> = hub.builders.iter().copied().collect();
    let gini_over = |m: &HashMap<u64, f64>, keys: &mut dyn Iterator<Item = u64>| -> f64 {
        let v: Vec<f64> = keys.map(|k| m.get(&k).copied().unwrap_or(0.0)).collect();
        gini(&v)
    };
    for visit in 0..visits {
        // The same dice for every policy: query choice and the user's looks and calls.
        let mut dice =
            ChaCha8Rng::seed_from_u64(o.seed ^ (visit as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let use_judged =
            !judged.is_empty() && (generated.is_empty() || dice.gen::<f64>() < o.judged_share);
        let pool = if use_judged { judged } else { generated };
        let q = &pool[dice.gen_range(0..pool.len())];
        if q.cands.is_empty() {
            continue;
        }
        let cands: Vec<Candidate> = q
            .cands
            .iter()
            .map(|c| {
                let called = calls.get(&c.facts.id_key).copied().unwrap_or(0);
                hub.candidate(&c.facts, c.relevance, called, Group::Model)
            })
            .collect();
        let order = rank(policy, &cands, &book, visit as u64);
        let shown: Vec<usize> = order.iter().take(o.page).map(|r| r.index).collect();
        let delta = page_delta(&cands, &shown, 1, attention);
        for &i in &shown {
            let c = &q.cands[i];
            *exposure_b.entry(c.facts.builder_key).or_default() +=
                delta.get(&c.facts.id_key).map_or(0.0, |d| d.exposure);
        }
        book.apply(&delta);
        let ranked_ids: Vec<String> = shown.iter().map(|&i| q.ids[i].clone()).collect();
        let n = ndcg(&ranked_ids, &q.ideal, 10);
        ndcg_sum += n;
        round_ndcg += n;
        round_n += 1;
        let rels: Vec<f64> = shown
            .iter()
            .map(|&i| q.cands[i].grade as f64 / 2.0)
            .collect();
        let looks = attention.page(1, &rels);
        for (j, &i) in shown.iter().enumerate() {
            let (u_look, u_call): (f64, f64) = (dice.gen(), dice.gen());
            let c = &q.cands[i];
            if u_look < looks[j].min(1.0) && u_call < o.call_probability[c.grade.min(2) as usize] {
                *calls.entry(c.facts.id_key).or_default() += 1;
                let impact = match o_impact {
                    Impact::Calls => 1.0,
                    Impact::Income => c.price,
                };
                book.add_impact(c.facts.id_key, impact);
                *income.entry(c.facts.builder_key).or_default() += c.price;
                total_calls += 1;
                total_income += c.price;
                if c.grade > 0 {
                    useful_calls += 1;
                }
            }
        }
        if (visit + 1) % per_round == 0 || visit + 1 == visits {
            let done = visit + 1;
            let threshold = o.sustainable_usd * done as f64 / visits as f64;
            let sustainable = builders
                .iter()
                .filter(|b| income.get(b).copied().unwrap_or(0.0) >= threshold.max(1e-12))
                .count();
            let exp: HashMap<u64, f64> = book.iter().map(|(k, a)| (*k, a.exposure)).collect();
            rounds.push(RoundFigures {
                round: rounds.len() + 1,
                visits: done,
                ndcg10: round_ndcg / round_n.max(1) as f64,
                income_gini_builders: gini_over(&income, &mut builders.iter().copied()),
                sustainable_builder_share: sustainable as f64 / builders.len().max(1) as f64,
                exposure_gini_models: gini_over(&exp, &mut hub.downloads.keys().copied()),
            });
            round_ndcg = 0.0;
            round_n = 0;
        }
    }
    // Sums in key order: HashMap order differs between processes, and float
    // addition is not associative, so this keeps a run reproducible to the bit.
    let mut exp: Vec<(u64, f64)> = book.iter().map(|(k, a)| (*k, a.exposure)).collect();
    exp.sort_by_key(|(k, _)| *k);
    let total_exp: f64 = exp.iter().map(|(_, e)| e).sum();
    let tail = exp
        .iter()
        .filter(|(k, _)| !hub.model_heads.head.contains(k))
        .map(|(_, e)| e)
        .sum::<f64>();
    let top1_calls: u64 = calls
        .iter()
        .filter(|(k, _)| hub.model_heads.top_1pct.contains(k))
        .map(|(_, c)| c)
        .sum();
    let income_v: Vec<f64> = builders
        .iter()
        .map(|b| income.get(b).copied().unwrap_or(0.0))
        .collect();
    let exposure_v: Vec<f64> = builders
        .iter()
        .map(|b| exposure_b.get(b).copied().unwrap_or(0.0))
        .collect();
    let last = rounds.last().cloned();
    PolicyRun {
        policy: policy.kind(),
        lambda,
        ndcg10: ndcg_sum / visits.max(1) as f64,
        utility: useful_calls as f64 / visits.max(1) as f64,
        calls: total_calls,
        income_usd: total_income,
        exposure_gini_models: last.as_ref().map_or(0.0, |r| r.exposure_gini_models),
        exposure_gini_builders: gini(&exposure_v),
        income_gini_builders: gini(&income_v),
        top1pct_call_share: if total_calls > 0 {
            top1_calls as f64 / total_calls as f64
        } else {
            0.0
        },
        tail_exposure_share: if total_exp > 0.0 {
            tail / total_exp
        } else {
            0.0
        },
        sustainable_builder_share: last.as_ref().map_or(0.0, |r| r.sustainable_builder_share),
        rounds,
        lorenz_income: lorenz(&income_v, 100),
        lorenz_exposure: lorenz(&exposure_v, 100),
    }
}
