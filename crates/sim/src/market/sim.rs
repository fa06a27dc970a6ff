//! One simulated year of the pay-per-call hub under one policy
//! (docs/study.md, One day): visits search, look with position bias, adopt
//! at most one model by a multinomial logit with an outside option; an
//! adoption is a stream of paid calls over the following days; builders
//! retire models that lose money; popularity moves every day.

use hubsearch_core::PolicyKind;
use serde::{Deserialize, Serialize};

pub use super::figures::PeriodFigures;
use super::world::World;
use super::year::Year;
use super::StudyOptions;

/// A ranking policy of the study, with its knob (docs/study.md, Policies).
/// The scores are the engine's (`hubsearch_rank::rank`; a test checks the
/// pages agree), computed here on flat arrays for speed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum StudyPolicy {
    Relevance,
    Popularity {
        alpha: f64,
    },
    TailBoost {
        beta: f64,
    },
    /// FairCo Fair-E over models, global rounds.
    Fair {
        lambda: f64,
    },
    /// FairCo Fair-I over models: paid calls per merit.
    FairImpact {
        lambda: f64,
    },
    Stochastic {
        temperature: f64,
    },
}

impl StudyPolicy {
    /// The family, as the engine names it.
    pub fn kind(&self) -> PolicyKind {
        match self {
            StudyPolicy::Relevance => PolicyKind::Relevance,
            StudyPolicy::Popularity { .. } => PolicyKind::Popularity,
            StudyPolicy::TailBoost { .. } => PolicyKind::TailBoost,
            StudyPolicy::Fair { .. } => PolicyKind::Fair,
            StudyPolicy::FairImpact { .. } => PolicyKind::FairImpact,
            StudyPolicy::Stochastic { .. } => PolicyKind::Stochastic,
        }
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The knob's name and value (none for `relevance`).
    pub fn knob(&self) -> Option<(&'static str, f64)> {
        match *self {
            StudyPolicy::Relevance => None,
            StudyPolicy::Popularity { alpha } => Some(("alpha", alpha)),
            StudyPolicy::TailBoost { beta } => Some(("beta", beta)),
            StudyPolicy::Fair { lambda } | StudyPolicy::FairImpact { lambda } => {
                Some(("lambda", lambda))
            }
            StudyPolicy::Stochastic { temperature } => Some(("temperature", temperature)),
        }
    }

    /// The same family with knob `k`.
    pub fn with_knob(self, k: f64) -> StudyPolicy {
        match self {
            StudyPolicy::Relevance => StudyPolicy::Relevance,
            StudyPolicy::Popularity { .. } => StudyPolicy::Popularity { alpha: k },
            StudyPolicy::TailBoost { .. } => StudyPolicy::TailBoost { beta: k },
            StudyPolicy::Fair { .. } => StudyPolicy::Fair { lambda: k },
            StudyPolicy::FairImpact { .. } => StudyPolicy::FairImpact { lambda: k },
            StudyPolicy::Stochastic { .. } => StudyPolicy::Stochastic { temperature: k },
        }
    }

    /// A label: `fair (lambda=0.001)`.
    pub fn label(&self) -> String {
        match self.knob() {
            None => self.name().to_string(),
            Some((n, v)) => format!("{} ({n}={})", self.name(), fmt_knob(v)),
        }
    }

    /// The engine's policy of the same definition.
    pub fn to_rank(&self) -> hubsearch_rank::Policy {
        use hubsearch_core::Rounds;
        use hubsearch_rank::Policy;
        match *self {
            StudyPolicy::Relevance => Policy::Relevance,
            StudyPolicy::Popularity { alpha } => Policy::Popularity { alpha },
            StudyPolicy::TailBoost { beta } => Policy::TailBoost { beta },
            StudyPolicy::Fair { lambda } => Policy::Fair {
                lambda,
                rounds: Rounds::Global,
            },
            StudyPolicy::FairImpact { lambda } => Policy::FairImpact {
                lambda,
                rounds: Rounds::Global,
            },
            StudyPolicy::Stochastic { temperature } => Policy::Stochastic { temperature },
        }
    }

    /// Whether the page is the same for every visit of a type within a day.
    pub(super) fn is_static(&self) -> bool {
        matches!(
            self,
            StudyPolicy::Relevance | StudyPolicy::Popularity { .. } | StudyPolicy::TailBoost { .. }
        )
    }
}

/// A knob value, short.
pub fn fmt_knob(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 0.01 {
        format!("{}", (v * 1000.0).round() / 1000.0)
    } else {
        format!("{v:.0e}")
    }
}

/// How models are hosted (docs/study.md, Money).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Pay per call to a serverless host: cost per call by size, no fixed cost.
    Serverless,
    /// A dedicated instance: a monthly fixed cost by size.
    Dedicated,
    /// Each model on whichever of the two its expected calls make cheaper
    /// (docs/study.md, Builders), switching as its volume moves.
    Either,
}

impl Regime {
    pub fn name(&self) -> &'static str {
        match self {
            Regime::Serverless => "serverless",
            Regime::Dedicated => "dedicated",
            Regime::Either => "either",
        }
    }
}

/// One run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunSpec {
    pub policy: StudyPolicy,
    pub regime: Regime,
    /// Seed of the users' dice (queries, looks, choices, streams) and exits.
    pub behaviour_seed: u64,
    /// Visits simulated per day.
    pub visits_per_day: usize,
    /// Real visits per day each day's simulated visits stand for.
    pub traffic: f64,
    /// Popularity learns from calls (off: 2022 downloads, decayed, only).
    pub feedback: bool,
    /// Days counted (after the pilot).
    pub days: usize,
    /// Days of the warm-start pilot before them (0: a cold start).
    pub pilot_days: usize,
}

/// One day's figures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Day {
    /// Initial tail builders that are viable: a model still listed and
    /// positive profit over the trailing 30 days.
    pub viable_tail_share: f64,
    /// Active builders that are viable.
    pub viable_active_share: f64,
    pub active_models: usize,
    pub adoptions: u64,
    /// Paid calls that day (real ones).
    pub calls: f64,
}

/// What one run measured (docs/study.md, Figures).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// nDCG@10 against every candidate that has entered (lost supply
    /// counts), over every visit whose type has a graded candidate.
    pub ndcg10: f64,
    /// nDCG@10 against the listed candidates, over visits with one.
    pub ndcg10_listed: f64,
    /// Users' expected surplus per visit over the outside option (utils).
    pub welfare: f64,
    pub adoptions_per_visit: f64,
    pub tail_viable_share: f64,
    pub median_tail_profit_month: f64,
    pub income_gini_active: f64,
    pub income_gini_all: f64,
    pub top1pct_income_share: f64,
    pub median_task_hhi: f64,
    pub entrant_survival_90: f64,
    pub median_days_to_first_call: f64,
    pub entrants_called_share: f64,
    pub tail_exposure_share: f64,
    pub income_usd: f64,
    pub calls: f64,
    /// The figures at the end of each period.
    pub periods: Vec<PeriodFigures>,
    pub days: Vec<Day>,
    /// Share of entrants still listed at each age (days).
    pub entrant_survival: Vec<f64>,
    /// Builders' income, Lorenz curve.
    pub lorenz_income: Vec<(f64, f64)>,
    pub visits: u64,
    /// Per model, for tests and plots: exposure and income.
    #[serde(skip)]
    pub model_exposure: Vec<f64>,
    #[serde(skip)]
    pub model_income: Vec<f64>,
    /// Each model's price at the end (it moves only when builders reprice).
    #[serde(skip)]
    pub model_price: Vec<f64>,
    /// The top 1% of models' share of paid calls over the run (models
    /// entered by its end): the validation target's simulated side.
    pub top1pct_model_call_share: f64,
    #[serde(skip)]
    pub model_exit_day: Vec<Option<u32>>,
    #[serde(skip)]
    pub builder_profit_days: Vec<Vec<f64>>,
}

/// A small, fast generator (SplitMix64) for the per-visit dice.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(parts: &[u64]) -> Dice {
        let mut s = 0x243F_6A88_85A3_08D3u64;
        for p in parts {
            s = mix(s ^ p.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        Dice(s)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in (0, 1).
    pub fn open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open(), self.f64());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Position `j`'s (1-based) exposure and examination probability:
/// `1 / log2(1 + j)`.
pub fn look(j: usize) -> f64 {
    1.0 / ((1 + j) as f64).log2()
}

/// A candidate with its score: `key` breaks ties (smaller first); `item`
/// names the model or the candidate, as the caller needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub key: u64,
    pub item: u32,
}

/// Simulate `world` under `spec`: the pilot, then `spec.days` days.
pub fn run(world: &World, o: &StudyOptions, spec: &RunSpec) -> Outcome {
    let mut year = Year::new(world, o, spec);
    for g in 0..year.total_days() {
        year.day(g);
    }
    year.outcome()
}

/// The score of the policies whose page is fixed for a day
/// (docs/ranking.md, Policies): relevance, `r * (1 + alpha * ln(1 + pop))`,
/// `r * (1 + beta * (1 - quantile))`.
pub fn static_score(policy: &StudyPolicy, relevance: f64, pop: f64, quantile: f64) -> f64 {
    match *policy {
        StudyPolicy::Popularity { alpha } => relevance * (1.0 + alpha * pop.max(0.0).ln_1p()),
        StudyPolicy::TailBoost { beta } => {
            relevance * (1.0 + beta * (1.0 - quantile.clamp(0.0, 1.0)))
        }
        _ => relevance,
    }
}

/// FairCo's scores with global rounds (docs/ranking.md, `fair`): each
/// candidate in `cands` (`item` its model) gets `score + lambda * pages *
/// max(0, max_G x/merit - x_i/merit_i)`, the max over the candidates seen
/// before with merit; `x` is exposure (Fair-E) or calls (Fair-I). `ratios`
/// is a buffer (its contents are replaced), so each candidate's book is
/// read once (the study's path, on every visit).
pub fn fair_scores_with(
    cands: &mut [Scored],
    x: &[f64],
    merit: &[f64],
    seen: &[bool],
    pages: u64,
    lambda: f64,
    ratios: &mut Vec<Option<f64>>,
) {
    ratios.clear();
    let mut max = f64::NEG_INFINITY;
    for c in cands.iter() {
        let m = c.item as usize;
        let r = (seen[m] && merit[m] > 0.0).then(|| x[m] / merit[m]);
        if let Some(r) = r {
            max = f64::max(max, r);
        }
        ratios.push(r);
    }
    let tau = pages as f64;
    for (c, r) in cands.iter_mut().zip(ratios.iter()) {
        let err = r.map_or(0.0, |r| tau * (max - r).max(0.0));
        c.score += lambda * err;
    }
}

/// Keep the best `k` of `xs` (score desc, then key asc) first, in order.
pub fn top(xs: &mut [Scored], k: usize) {
    let cmp = |a: &Scored, b: &Scored| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key));
    if xs.len() > k {
        xs.select_nth_unstable_by(k, cmp);
        xs[..k].sort_unstable_by(cmp);
    } else {
        xs.sort_unstable_by(cmp);
    }
}

/// The best `k` candidates offered one by one (score desc, then key asc,
/// as [`top`] orders them), most turned away by one comparison: an offer at
/// or above the threshold is held, and when enough are held the threshold
/// rises to the `k`-th best score held (a score below it has `k` better
/// ones and can never be among the best `k`). Under keys that are distinct
/// [`TopK::finish`] gives exactly what [`top`] keeps of the same
/// candidates, in the same order, whatever order they come in.
#[derive(Debug, Default)]
pub struct TopK {
    k: usize,
    /// Scores below this (in `f64::total_cmp`'s order) are turned away.
    threshold: i64,
    /// Held offers: the score's order and the candidate.
    held: Vec<(i64, u32)>,
    /// Held offers that make the threshold rise.
    limit: usize,
}

impl TopK {
    /// Start a selection of the best `k`.
    pub fn start(&mut self, k: usize) {
        self.k = k;
        self.threshold = i64::MIN;
        self.held.clear();
        self.limit = 4 * k.max(1);
        self.held.reserve(self.limit + 1);
    }

    /// Offer candidate `j` of score `score`.
    #[inline]
    pub fn offer(&mut self, score: f64, j: u32) {
        let o = total_order(score);
        if o >= self.threshold {
            self.held.push((o, j));
            if self.held.len() >= self.limit {
                self.raise();
            }
        }
    }

    /// The threshold up to the `k`-th best held score; the rest let go.
    fn raise(&mut self) {
        let (n, k) = (self.held.len(), self.k);
        if k == 0 {
            self.held.clear();
            self.threshold = i64::MAX;
            return;
        }
        if n > k {
            let (_, &mut (t, _), _) = self.held.select_nth_unstable_by_key(n - k, |e| e.0);
            self.threshold = t;
            self.held.retain(|e| e.0 >= t);
        }
        // Many ties at the threshold: hold more before the next rise.
        self.limit = self.limit.max(2 * self.held.len());
    }

    /// The best `k` offered into `best`, in order; `make(j)` is candidate
    /// `j` (its `score` the one offered).
    pub fn finish(&mut self, best: &mut Vec<Scored>, make: impl FnMut(u32) -> Scored) {
        self.raise();
        best.clear();
        best.extend(self.held.iter().map(|e| e.1).map(make));
        best.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
        best.truncate(self.k);
    }
}

/// `f64::total_cmp`'s order as an integer's.
fn total_order(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// Popularity quantiles (mid-rank) of the listed models.
pub(super) fn quantiles(pop: &[f64], active: &[bool], out: &mut [f64]) {
    let mut sorted: Vec<f64> = pop
        .iter()
        .zip(active)
        .filter(|(_, a)| **a)
        .map(|(p, _)| *p)
        .collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    for (m, p) in pop.iter().enumerate() {
        let lo = sorted.partition_point(|x| x < p);
        let hi = sorted.partition_point(|x| x <= p);
        out[m] = (lo + hi) as f64 / 2.0 / n;
    }
}

/// No day: a model not exited, or never called.
pub(super) const NEVER: u32 = u32::MAX;

/// Per task with income, the Herfindahl index of builders' shares of it.
pub(super) fn task_hhis(world: &World, income: &[f64]) -> Vec<f64> {
    let mut task_income: Vec<std::collections::BTreeMap<u32, f64>> =
        vec![Default::default(); world.tasks.len()];
    for (md, &x) in world.models.iter().zip(income) {
        if x > 0.0 {
            *task_income[md.task as usize].entry(md.builder).or_default() += x;
        }
    }
    task_income
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| {
            let total: f64 = t.values().sum();
            let mut shares: Vec<f64> = t.values().map(|v| v / total).collect();
            shares.sort_by(f64::total_cmp);
            shares.iter().map(|s| s * s).sum()
        })
        .collect()
}

/// How the year's entrants fared.
pub(super) struct EntrantFigures {
    /// Share still listed at each age (days).
    pub(super) survival: Vec<f64>,
    /// Of those 90 days old by the end, share listed at 90 days.
    pub(super) survival_90: f64,
    /// Days from entry to the first paid call, of those called.
    pub(super) waits: Vec<f64>,
    /// Share of entrants ever called.
    pub(super) called_share: f64,
}

impl EntrantFigures {
    /// `exit_day` and `first_call` per model, [`NEVER`] for none.
    pub(super) fn of(
        world: &World,
        exit_day: &[u32],
        first_call: &[u32],
        days: usize,
    ) -> EntrantFigures {
        let entry = |m: usize| world.models[m].entry_day as usize;
        let entrants: Vec<usize> = (world.initial_models..world.models.len()).collect();
        let survived = |m: usize, age: usize| -> bool {
            exit_day[m] == NEVER || exit_day[m] as usize >= entry(m) + age
        };
        let old_enough: Vec<usize> = entrants
            .iter()
            .copied()
            .filter(|&m| entry(m) + 90 <= days)
            .collect();
        let survival = (0..days)
            .map(|age| {
                let at_risk: Vec<usize> = entrants
                    .iter()
                    .copied()
                    .filter(|&m| entry(m) + age < days)
                    .collect();
                if at_risk.is_empty() {
                    f64::NAN
                } else {
                    at_risk.iter().filter(|&&m| survived(m, age)).count() as f64
                        / at_risk.len() as f64
                }
            })
            .collect();
        let waits: Vec<f64> = entrants
            .iter()
            .filter(|&&m| first_call[m] != NEVER)
            .map(|&m| (first_call[m] - world.models[m].entry_day) as f64)
            .collect();
        EntrantFigures {
            survival,
            survival_90: if old_enough.is_empty() {
                f64::NAN
            } else {
                old_enough.iter().filter(|&&m| survived(m, 90)).count() as f64
                    / old_enough.len() as f64
            },
            called_share: if entrants.is_empty() {
                f64::NAN
            } else {
                waits.len() as f64 / entrants.len() as f64
            },
            waits,
        }
    }
}

/// Median (NaN when empty); sorts `xs`.
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}
