//! Simulated logs where the truth is known (docs/metrics.md, Off-policy
//! estimates, Validation): a `stochastic` logger over synthetic candidate
//! sets, calls drawn from a known position-based model, and the coverage of
//! each estimator's 95% interval for a tail-promoting target over many
//! seeds.
//!
//! The user model (this module's own, shared with no estimator): a page
//! context is one of `contexts` candidate sets of `candidates` items, each
//! with relevance `r` and popularity quantile `q` uniform in [0, 1]; the
//! item at 0-based rank `k` is examined with probability
//! `theta_k = 1 / log2(k + 2)` and, if examined, called with probability
//! `gamma = 0.05 + 0.6 r^2 + 0.1 (1 - q)` (tail items a little more wanted).
//! A page shows ranks 1-5 (80%) or 6-10 (20%, a second page).

use std::collections::HashMap;

use hubsearch_core::{BuilderKey, ModelKey};
use hubsearch_engine::ledger::codec::derived_logits;
use hubsearch_engine::ledger::{Book, LoggedCandidate, PageLog, ShownLog};
use hubsearch_rank::{rank, Attention, Candidate, ExposureBook, Policy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::offpolicy::{estimate, Estimator, Options};

/// The simulation's size.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub contexts: usize,
    pub candidates: usize,
    pub pages: usize,
    pub per_page: usize,
    /// The logger's temperature.
    pub temperature: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            contexts: 40,
            candidates: 30,
            pages: 2_000,
            per_page: 5,
            temperature: 0.3,
        }
    }
}

fn theta(k: usize) -> f64 {
    1.0 / ((k + 2) as f64).log2()
}

fn gamma(c: &LoggedCandidate) -> f64 {
    0.05 + 0.6 * c.relevance * c.relevance + 0.1 * (1.0 - c.quantile)
}

/// A simulated log: the pages, calls by (page, 1-based rank), and the
/// target's true expected calls per page.
pub fn simulate(
    seed: u64,
    cfg: &SimConfig,
    target: &Policy,
) -> (Vec<PageLog>, HashMap<(u64, u64), f64>, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f32v = |rng: &mut ChaCha8Rng| f64::from(rng.gen::<f32>());
    let contexts: Vec<Vec<LoggedCandidate>> = (0..cfg.contexts)
        .map(|_| {
            (0..cfg.candidates)
                .map(|_| {
                    let relevance = f32v(&mut rng);
                    LoggedCandidate {
                        model: ModelKey(rng.gen()),
                        builder: BuilderKey(rng.gen_range(0..8)),
                        relevance,
                        merit: relevance,
                        calls: 0.0,
                        quantile: f32v(&mut rng),
                    }
                })
                .collect()
        })
        .collect();
    let cands = |ctx: &[LoggedCandidate]| -> Vec<Candidate> {
        ctx.iter().map(|c| c.candidate(c.model.0)).collect()
    };
    let book = ExposureBook::new();
    let logger = Policy::Stochastic {
        temperature: cfg.temperature,
    };
    let l = cfg.per_page;
    // The truth: every context equally likely, first pages 80%.
    let truth = contexts
        .iter()
        .map(|ctx| {
            let order = rank(target, &cands(ctx), &book, 0);
            let value = |from: usize| -> f64 {
                (from..from + l)
                    .map(|k| theta(k) * gamma(&ctx[order[k].index]))
                    .sum()
            };
            0.8 * value(0) + 0.2 * value(l)
        })
        .sum::<f64>()
        / contexts.len() as f64;
    let mut pages = Vec::with_capacity(cfg.pages);
    let mut calls = HashMap::new();
    for page in 0..cfg.pages as u64 {
        let ctx = &contexts[rng.gen_range(0..contexts.len())];
        let draw: u64 = rng.gen();
        let order = rank(&logger, &cands(ctx), &book, draw);
        let ranked: Vec<LoggedCandidate> = order.iter().map(|r| ctx[r.index]).collect();
        let first = if rng.gen_bool(0.8) { 0 } else { l };
        let mut shown = Vec::with_capacity(l);
        for (k, c) in ranked.iter().enumerate().skip(first).take(l) {
            let p = theta(k) * gamma(c);
            if rng.gen_bool(p.clamp(0.0, 1.0)) {
                calls.insert((page, k as u64 + 1), 1.0);
            }
            shown.push(ShownLog {
                model: format!("m/{:x}", c.model.0).into(),
                builder: format!("b{}", c.builder.0),
                rank: k + 1,
                relevance: c.relevance,
                ..Default::default()
            });
        }
        let params = [("temperature".to_string(), cfg.temperature)].into();
        let logits = derived_logits(&ranked, &params, "stochastic");
        pages.push(PageLog {
            page,
            query: "q".into(),
            mode: "hybrid".into(),
            policy: "stochastic".into(),
            params,
            group: "model".into(),
            seed: draw,
            candidates: ranked.len(),
            shown,
            logits,
            first_rank: first + 1,
            book: Book::Search,
            attention: Some(Attention::Log),
            ranked,
            ..Default::default()
        });
    }
    (pages, calls, truth)
}

/// One estimator's record over seeds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Coverage {
    /// Share of seeds whose 95% interval holds the truth.
    pub coverage: f64,
    pub mean_width: f64,
    /// Mean (estimate - truth), and its root mean square.
    pub bias: f64,
    pub rmse: f64,
    pub mean_ess: f64,
}

/// Run `seeds` simulated logs (seeds 1..=seeds) and score every estimator
/// against the truth. Returns (estimator, coverage) and the mean truth.
pub fn coverage(
    seeds: u64,
    cfg: &SimConfig,
    target: &Policy,
    opts: &Options,
) -> Result<(Vec<(String, Coverage)>, f64), String> {
    let mut acc: Vec<(String, Coverage)> = Estimator::ALL
        .iter()
        .map(|e| (e.as_str().to_string(), Coverage::default()))
        .collect();
    let mut truths = 0.0;
    for seed in 1..=seeds {
        let (pages, calls, truth) = simulate(seed, cfg, target);
        truths += truth;
        let r = estimate(&pages, &calls, target, &Estimator::ALL, opts)?;
        for ((_, c), (_, e)) in acc.iter_mut().zip(&r.estimates) {
            c.coverage += f64::from(u8::from(e.lo <= truth && truth <= e.hi));
            c.mean_width += e.hi - e.lo;
            c.bias += e.value - truth;
            c.rmse += (e.value - truth).powi(2);
            c.mean_ess += e.ess;
        }
    }
    let n = seeds.max(1) as f64;
    for (_, c) in &mut acc {
        c.coverage /= n;
        c.mean_width /= n;
        c.bias /= n;
        c.rmse = (c.rmse / n).sqrt();
        c.mean_ess /= n;
    }
    Ok((acc, truths / n))
}
