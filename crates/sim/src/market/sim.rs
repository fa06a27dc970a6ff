//! One simulated year of the pay-per-call hub under one policy
//! (docs/study.md, One day): visits search, look with position bias, adopt
//! at most one model by a multinomial logit with an outside option; an
//! adoption is a stream of paid calls over the following days; builders
//! retire models that lose money; popularity moves every day.

use serde::{Deserialize, Serialize};

use super::world::{dedicated_month, serverless_cost, World};
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
    /// The family's name.
    pub fn name(&self) -> &'static str {
        match self {
            StudyPolicy::Relevance => "relevance",
            StudyPolicy::Popularity { .. } => "popularity",
            StudyPolicy::TailBoost { .. } => "tail_boost",
            StudyPolicy::Fair { .. } => "fair",
            StudyPolicy::FairImpact { .. } => "fair_impact",
            StudyPolicy::Stochastic { .. } => "stochastic",
        }
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
    fn is_static(&self) -> bool {
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
}

impl Regime {
    pub fn name(&self) -> &'static str {
        match self {
            Regime::Serverless => "serverless",
            Regime::Dedicated => "dedicated",
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
    pub days: usize,
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
}

/// What one run measured (docs/study.md, Figures).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub ndcg10: f64,
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

/// Per-type state of one day.
#[derive(Debug, Clone, Default)]
struct TypeDay {
    day: u32,
    /// Indices into the type's candidates of the models listed today.
    active: Vec<u32>,
    /// Static policies: today's page.
    page: Vec<u32>,
    idcg: f64,
}

const NEVER: u32 = u32::MAX;
const WINDOW: usize = 30;

/// Simulate one year of `world` under `spec`.
pub fn run(world: &World, o: &StudyOptions, spec: &RunSpec) -> Outcome {
    let n = world.models.len();
    let nb = world.builders.len();
    let days = spec.days;
    let scale = spec.traffic / spec.visits_per_day.max(1) as f64;
    let decay = 0.5f64.powf(1.0 / o.popularity_half_life_days.max(1e-9));
    let fee = o.platform_fee;
    let (cost_call, fixed_day): (Vec<f64>, Vec<f64>) = world
        .models
        .iter()
        .map(|m| match spec.regime {
            Regime::Serverless => (serverless_cost(o, m.params_m), 0.0),
            Regime::Dedicated => (o.cost_per_call_usd, dedicated_month(o, m.params_m) / 30.0),
        })
        .unzip();
    let price_util: Vec<f64> = world
        .models
        .iter()
        .map(|m| -o.price_weight * (m.price / o.reference_price_usd).ln())
        .collect();
    let mut active: Vec<bool> = world.models.iter().map(|m| m.entry_day == 0).collect();
    let mut exit_day = vec![NEVER; n];
    let mut first_call = vec![NEVER; n];
    let mut pop: Vec<f64> = world.models.iter().map(|m| m.downloads).collect();
    let mut quantile = vec![0.0; n];
    let mut rate = vec![0.0f64; n];
    let mut ring = vec![0.0f64; n * WINDOW];
    let mut trailing = vec![0.0f64; n];
    let mut income = vec![0.0f64; n];
    let mut calls_total = 0.0;
    let mut exposure = vec![0.0f64; n];
    let mut merit = vec![0.0f64; n];
    let mut impact = vec![0.0f64; n];
    let mut seen = vec![false; n];
    let mut pages: u64 = 0;
    let mut removals: Vec<Vec<(u32, f64)>> = vec![Vec::new(); days + 1];
    let mut type_day: Vec<TypeDay> = vec![
        TypeDay {
            day: NEVER,
            ..Default::default()
        };
        world.types.len()
    ];
    let mut cdf = Vec::with_capacity(world.demand.len());
    let mut acc = 0.0;
    for d in &world.demand {
        acc += d;
        cdf.push(acc);
    }
    let page_len = o.page.max(1);
    let looks: Vec<f64> = (1..=page_len).map(look).collect();
    let mut day_figures = Vec::with_capacity(days);
    let (mut ndcg_sum, mut ndcg_n, mut adoptions_total, mut visits_total) = (0.0, 0u64, 0u64, 0u64);
    let mut builder_profit_days: Vec<Vec<f64>> = if o.keep_builder_days {
        vec![Vec::with_capacity(days); nb]
    } else {
        Vec::new()
    };
    let initial_tail: Vec<usize> = (0..world.initial_builders)
        .filter(|&b| world.builders[b].tail)
        .collect();
    let mut order: Vec<usize> = Vec::with_capacity(spec.visits_per_day);
    let mut scratch: Vec<(f64, u64, u32)> = Vec::new();
    let mut page: Vec<u32> = Vec::with_capacity(page_len);
    let mut builder_trailing = vec![0.0f64; nb];
    let mut builder_active = vec![false; nb];
    for day in 0..days {
        let d32 = day as u32;
        // The day's visits: systematic sampling of the demand (every type
        // gets floor or ceil of its share), in shuffled order.
        let mut dd = Dice::new(&[spec.behaviour_seed, day as u64, 1]);
        let v = spec.visits_per_day;
        order.clear();
        let u0 = dd.f64();
        let mut t = 0usize;
        for k in 0..v {
            let x = (u0 + k as f64) / v as f64;
            while t + 1 < cdf.len() && cdf[t] <= x {
                t += 1;
            }
            order.push(t);
        }
        for i in (1..order.len()).rev() {
            let j = (dd.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        if matches!(spec.policy, StudyPolicy::TailBoost { .. }) {
            quantiles(&pop, &active, &mut quantile);
        }
        let mut adoptions_today = 0u64;
        for (vi, &qt) in order.iter().enumerate() {
            let ty = &world.types[qt];
            let td = &mut type_day[qt];
            if td.day != d32 {
                td.day = d32;
                td.active.clear();
                td.active.extend(
                    ty.cands
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| active[c.model as usize])
                        .map(|(i, _)| i as u32),
                );
                let mut grades: Vec<u8> = td
                    .active
                    .iter()
                    .map(|&i| ty.cands[i as usize].grade)
                    .collect();
                grades.sort_unstable_by(|a, b| b.cmp(a));
                td.idcg = grades
                    .iter()
                    .take(page_len)
                    .enumerate()
                    .map(|(j, g)| *g as f64 / ((j + 2) as f64).log2())
                    .sum();
                if spec.policy.is_static() {
                    scratch.clear();
                    for &i in &td.active {
                        let c = &ty.cands[i as usize];
                        let m = c.model as usize;
                        let s = static_score(&spec.policy, c.relevance, pop[m], quantile[m]);
                        scratch.push((s, world.models[m].key, i));
                    }
                    top(&mut scratch, page_len);
                    td.page.clear();
                    td.page.extend(scratch.iter().take(page_len).map(|x| x.2));
                }
            }
            if td.active.is_empty() {
                continue;
            }
            visits_total += 1;
            page.clear();
            let mut vd = Dice::new(&[spec.behaviour_seed, day as u64, vi as u64, 2]);
            match spec.policy {
                StudyPolicy::Fair { lambda } | StudyPolicy::FairImpact { lambda } => {
                    let x = if matches!(spec.policy, StudyPolicy::Fair { .. }) {
                        &exposure
                    } else {
                        &impact
                    };
                    scratch.clear();
                    for &i in &td.active {
                        let c = &ty.cands[i as usize];
                        scratch.push((c.relevance, world.models[c.model as usize].key, c.model));
                    }
                    fair_scores(&mut scratch, x, &merit, &seen, pages, lambda);
                    // Back from model to candidate index.
                    for (s, &i) in scratch.iter_mut().zip(&td.active) {
                        s.2 = i;
                    }
                    top(&mut scratch, page_len);
                    page.extend(scratch.iter().take(page_len).map(|x| x.2));
                }
                StudyPolicy::Stochastic { temperature } => {
                    let t = temperature.max(1e-6);
                    let mut gd = Dice::new(&[spec.behaviour_seed, day as u64, vi as u64, 3]);
                    scratch.clear();
                    for &i in &td.active {
                        let c = &ty.cands[i as usize];
                        let g = -(-gd.open().ln()).ln();
                        scratch.push((c.relevance / t + g, world.models[c.model as usize].key, i));
                    }
                    top(&mut scratch, page_len);
                    page.extend(scratch.iter().take(page_len).map(|x| x.2));
                }
                _ => page.extend_from_slice(&td.page),
            }
            // Exposure (and, for the book, merit and rounds).
            pages += 1;
            if matches!(
                spec.policy,
                StudyPolicy::Fair { .. } | StudyPolicy::FairImpact { .. }
            ) {
                for &i in &td.active {
                    let c = &ty.cands[i as usize];
                    merit[c.model as usize] += c.relevance.max(0.0);
                    seen[c.model as usize] = true;
                }
            }
            let mut dcg = 0.0;
            for (j, &i) in page.iter().enumerate() {
                let c = &ty.cands[i as usize];
                exposure[c.model as usize] += looks[j];
                dcg += c.grade as f64 / ((j + 2) as f64).log2();
            }
            if td.idcg > 0.0 {
                ndcg_sum += dcg / td.idcg;
                ndcg_n += 1;
            }
            // Look, then choose at most one (multinomial logit, outside option).
            let mut total = o.outside_utility.exp();
            let mut chosen: [(u32, f64); 16] = [(0, 0.0); 16];
            let mut n_looked = 0;
            for (j, &i) in page.iter().enumerate() {
                if vd.f64() < looks[j] && n_looked < chosen.len() {
                    let c = &ty.cands[i as usize];
                    let w = (o.grade_weight * c.grade as f64 + price_util[c.model as usize]).exp();
                    total += w;
                    chosen[n_looked] = (c.model, w);
                    n_looked += 1;
                }
            }
            let mut u = vd.f64() * total - o.outside_utility.exp();
            let mut adopted = None;
            for &(m, w) in &chosen[..n_looked] {
                if u >= 0.0 && u < w {
                    adopted = Some(m);
                    break;
                }
                u -= w;
            }
            if let Some(m) = adopted {
                adoptions_today += 1;
                let r = (o.calls_per_day_median.ln() + o.calls_per_day_sigma * vd.normal()).exp()
                    * scale;
                let life = if o.churn_per_day > 0.0 {
                    1 + (vd.open().ln() / (1.0 - o.churn_per_day).ln()).floor() as usize
                } else {
                    usize::MAX
                };
                rate[m as usize] += r;
                if let Some(end) = day.checked_add(life).filter(|e| *e < days) {
                    removals[end].push((m, r));
                }
                if first_call[m as usize] == NEVER {
                    first_call[m as usize] = d32;
                }
            }
        }
        adoptions_total += adoptions_today;
        // The day's calls, money and exits.
        for &(m, r) in &removals[day] {
            if active[m as usize] {
                rate[m as usize] = (rate[m as usize] - r).max(0.0);
            }
        }
        removals[day] = Vec::new();
        let mut xd = Dice::new(&[spec.behaviour_seed, day as u64, 4]);
        builder_trailing.iter_mut().for_each(|x| *x = 0.0);
        builder_active.iter_mut().for_each(|x| *x = false);
        let mut active_models = 0usize;
        for m in 0..n {
            let u_exit = xd.f64();
            if !active[m] {
                continue;
            }
            let calls = rate[m];
            let revenue = calls * world.models[m].price * (1.0 - fee);
            let profit = revenue - calls * cost_call[m] - fixed_day[m];
            let slot = m * WINDOW + day % WINDOW;
            trailing[m] += profit - ring[slot];
            ring[slot] = profit;
            income[m] += revenue;
            calls_total += calls;
            impact[m] += calls;
            pop[m] *= decay;
            if spec.feedback {
                pop[m] += calls;
            }
            let age = day + 1 - world.models[m].entry_day as usize;
            if age >= WINDOW && trailing[m] < 0.0 && u_exit < o.exit_probability {
                active[m] = false;
                exit_day[m] = d32;
                rate[m] = 0.0;
                continue;
            }
            active_models += 1;
            let b = world.models[m].builder as usize;
            builder_trailing[b] += trailing[m];
            builder_active[b] = true;
        }
        if o.keep_builder_days {
            for (b, v) in builder_profit_days.iter_mut().enumerate() {
                v.push(builder_trailing[b]);
            }
        }
        // Tomorrow's entrants.
        for (m, model) in world.models.iter().enumerate() {
            if model.entry_day as usize == day + 1 {
                active[m] = true;
            }
        }
        let viable = |b: usize| builder_active[b] && builder_trailing[b] > 0.0;
        let tail_viable = initial_tail.iter().filter(|&&b| viable(b)).count();
        let n_active = builder_active.iter().filter(|a| **a).count();
        day_figures.push(Day {
            viable_tail_share: tail_viable as f64 / initial_tail.len().max(1) as f64,
            viable_active_share: (0..nb).filter(|&b| viable(b)).count() as f64
                / n_active.max(1) as f64,
            active_models,
            adoptions: adoptions_today,
        });
    }
    // Figures of the year.
    let mut b_income = vec![0.0f64; nb];
    for m in 0..n {
        b_income[world.models[m].builder as usize] += income[m];
    }
    let active_income: Vec<f64> = (0..nb)
        .filter(|&b| builder_active[b])
        .map(|b| b_income[b])
        .collect();
    let mut tail_profits: Vec<f64> = initial_tail
        .iter()
        .filter(|&&b| builder_active[b])
        .map(|&b| builder_trailing[b])
        .collect();
    let mut task_income: Vec<std::collections::BTreeMap<u32, f64>> =
        vec![Default::default(); world.tasks.len()];
    for (md, &x) in world.models.iter().zip(&income) {
        if x > 0.0 {
            *task_income[md.task as usize].entry(md.builder).or_default() += x;
        }
    }
    let mut hhis: Vec<f64> = task_income
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| {
            let total: f64 = t.values().sum();
            let mut shares: Vec<f64> = t.values().map(|v| v / total).collect();
            shares.sort_by(f64::total_cmp);
            shares.iter().map(|s| s * s).sum()
        })
        .collect();
    let entrants: Vec<usize> = (world.initial_models..n).collect();
    let survived = |m: usize, age: usize| -> bool {
        exit_day[m] == NEVER || exit_day[m] as usize >= world.models[m].entry_day as usize + age
    };
    let old_enough: Vec<usize> = entrants
        .iter()
        .copied()
        .filter(|&m| world.models[m].entry_day as usize + 90 <= days)
        .collect();
    let entrant_survival: Vec<f64> = (0..days)
        .map(|age| {
            let at_risk: Vec<usize> = entrants
                .iter()
                .copied()
                .filter(|&m| world.models[m].entry_day as usize + age < days)
                .collect();
            if at_risk.is_empty() {
                f64::NAN
            } else {
                at_risk.iter().filter(|&&m| survived(m, age)).count() as f64 / at_risk.len() as f64
            }
        })
        .collect();
    let mut waits: Vec<f64> = entrants
        .iter()
        .filter(|&&m| first_call[m] != NEVER)
        .map(|&m| (first_call[m] - world.models[m].entry_day) as f64)
        .collect();
    let total_exposure: f64 = exposure.iter().sum();
    let tail_exposure: f64 = (0..n)
        .filter(|&m| world.builders[world.models[m].builder as usize].tail)
        .map(|m| exposure[m])
        .sum();
    Outcome {
        ndcg10: ndcg_sum / ndcg_n.max(1) as f64,
        adoptions_per_visit: adoptions_total as f64 / visits_total.max(1) as f64,
        tail_viable_share: day_figures.last().map_or(0.0, |d| d.viable_tail_share),
        median_tail_profit_month: median(&mut tail_profits),
        income_gini_active: hubsearch_rank::gini(&active_income),
        income_gini_all: hubsearch_rank::gini(&b_income),
        top1pct_income_share: hubsearch_rank::concentration::top_fraction_share(&b_income, 0.01),
        median_task_hhi: median(&mut hhis),
        entrant_survival_90: if old_enough.is_empty() {
            f64::NAN
        } else {
            old_enough.iter().filter(|&&m| survived(m, 90)).count() as f64 / old_enough.len() as f64
        },
        median_days_to_first_call: median(&mut waits),
        entrants_called_share: if entrants.is_empty() {
            f64::NAN
        } else {
            waits.len() as f64 / entrants.len() as f64
        },
        tail_exposure_share: if total_exposure > 0.0 {
            tail_exposure / total_exposure
        } else {
            0.0
        },
        income_usd: income.iter().sum(),
        calls: calls_total,
        days: day_figures,
        entrant_survival,
        lorenz_income: hubsearch_rank::lorenz(&b_income, 50),
        visits: visits_total,
        model_exposure: exposure,
        model_income: income,
        model_exit_day: exit_day
            .iter()
            .map(|&d| (d != NEVER).then_some(d))
            .collect(),
        builder_profit_days,
    }
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
/// `(relevance, key, model)` in `cands` gets `relevance + lambda * pages *
/// max(0, max_G x/merit - x_i/merit_i)`, the max over the candidates seen
/// before with merit; `x` is exposure (Fair-E) or calls (Fair-I).
pub fn fair_scores(
    cands: &mut [(f64, u64, u32)],
    x: &[f64],
    merit: &[f64],
    seen: &[bool],
    pages: u64,
    lambda: f64,
) {
    let ratio = |m: usize| (seen[m] && merit[m] > 0.0).then(|| x[m] / merit[m]);
    let max = cands
        .iter()
        .filter_map(|c| ratio(c.2 as usize))
        .fold(f64::NEG_INFINITY, f64::max);
    let tau = pages as f64;
    for c in cands.iter_mut() {
        let err = ratio(c.2 as usize).map_or(0.0, |r| tau * (max - r).max(0.0));
        c.0 += lambda * err;
    }
}

/// Keep the best `k` of `xs` (score desc, then key asc) first, in order.
pub fn top(xs: &mut [(f64, u64, u32)], k: usize) {
    let cmp = |a: &(f64, u64, u32), b: &(f64, u64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if xs.len() > k {
        xs.select_nth_unstable_by(k, cmp);
        xs[..k].sort_unstable_by(cmp);
    } else {
        xs.sort_unstable_by(cmp);
    }
}

/// Popularity quantiles (mid-rank) of the listed models.
fn quantiles(pop: &[f64], active: &[bool], out: &mut [f64]) {
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
