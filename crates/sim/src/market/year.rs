//! One simulated year's state and its day, phase by phase (docs/study.md,
//! One day): the day's visits each search, get a page, look and adopt at
//! most one model; then adoptions that ended stop calling, calls pay,
//! popularity moves, models that lose money exit, and tomorrow's entrants
//! are listed. [`super::sim::run`] drives it.

use super::sim::{
    fair_scores, look, median, quantiles, static_score, top, Day, Dice, EntrantFigures,
    IncomeFigures, Outcome, Regime, RunSpec, Scored, StudyPolicy, NEVER,
};
use super::world::{dedicated_month, serverless_cost, QueryType, World};
use super::StudyOptions;

/// Days of the trailing profit that decides viability and exits.
const WINDOW: usize = 30;
/// Most models one visitor looks at.
const MAX_LOOKED: usize = 16;

/// An adoption's stream of paid calls: its model and calls per day.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    model: u32,
    rate: f64,
}

/// A model a visitor looked at, with its logit weight.
#[derive(Debug, Clone, Copy, Default)]
struct Looked {
    model: u32,
    weight: f64,
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

/// What stays fixed over the year: money and utility per model, the
/// demand's CDF over query types, the page's looks.
#[derive(Debug)]
struct Terms {
    /// Real visits each simulated visit stands for.
    scale: f64,
    /// Popularity's decay per day.
    decay: f64,
    cost_call: Vec<f64>,
    fixed_day: Vec<f64>,
    /// Utility of each model's price.
    price_util: Vec<f64>,
    cdf: Vec<f64>,
    page_len: usize,
    /// Exposure and examination probability of each position.
    looks: Vec<f64>,
    /// Builders in the tail at the start.
    initial_tail: Vec<usize>,
}

impl Terms {
    fn new(world: &World, o: &StudyOptions, spec: &RunSpec) -> Terms {
        let (cost_call, fixed_day): (Vec<f64>, Vec<f64>) = world
            .models
            .iter()
            .map(|m| match spec.regime {
                Regime::Serverless => (serverless_cost(o, m.params_m), 0.0),
                Regime::Dedicated => (o.cost_per_call_usd, dedicated_month(o, m.params_m) / 30.0),
            })
            .unzip();
        let price_util = world
            .models
            .iter()
            .map(|m| -o.price_weight * (m.price / o.reference_price_usd).ln())
            .collect();
        let mut cdf = Vec::with_capacity(world.demand.len());
        let mut acc = 0.0;
        for d in &world.demand {
            acc += d;
            cdf.push(acc);
        }
        let page_len = o.page.max(1);
        Terms {
            scale: spec.traffic / spec.visits_per_day.max(1) as f64,
            decay: 0.5f64.powf(1.0 / o.popularity_half_life_days.max(1e-9)),
            cost_call,
            fixed_day,
            price_util,
            cdf,
            page_len,
            looks: (1..=page_len).map(look).collect(),
            initial_tail: (0..world.initial_builders)
                .filter(|&b| world.builders[b].tail)
                .collect(),
        }
    }
}

/// Per-model state.
#[derive(Debug)]
struct Models {
    active: Vec<bool>,
    exit_day: Vec<u32>,
    first_call: Vec<u32>,
    /// Popularity: 2022 downloads, decayed, plus calls (with feedback).
    pop: Vec<f64>,
    /// Popularity quantile among the listed (tail boost).
    quantile: Vec<f64>,
    /// Paid calls per day.
    rate: Vec<f64>,
    /// The last `WINDOW` days' profit, per model.
    ring: Vec<f64>,
    /// Profit over the last `WINDOW` days.
    trailing: Vec<f64>,
    income: Vec<f64>,
    exposure: Vec<f64>,
    /// FairCo's book: merit, calls (impact), and whether ever a candidate.
    merit: Vec<f64>,
    impact: Vec<f64>,
    seen: Vec<bool>,
}

impl Models {
    fn new(world: &World) -> Models {
        let n = world.models.len();
        Models {
            active: world.models.iter().map(|m| m.entry_day == 0).collect(),
            exit_day: vec![NEVER; n],
            first_call: vec![NEVER; n],
            pop: world.models.iter().map(|m| m.downloads).collect(),
            quantile: vec![0.0; n],
            rate: vec![0.0; n],
            ring: vec![0.0; n * WINDOW],
            trailing: vec![0.0; n],
            income: vec![0.0; n],
            exposure: vec![0.0; n],
            merit: vec![0.0; n],
            impact: vec![0.0; n],
            seen: vec![false; n],
        }
    }
}

/// Per-builder state, as of the end of the latest day.
#[derive(Debug)]
struct Builders {
    /// Trailing profit summed over the builder's listed models.
    trailing: Vec<f64>,
    /// Has a listed model.
    active: Vec<bool>,
    /// `trailing` per day (when the options keep it).
    profit_days: Vec<Vec<f64>>,
}

/// Running totals of the year.
#[derive(Debug, Default)]
struct Tally {
    /// Pages served (FairCo's rounds).
    pages: u64,
    calls: f64,
    ndcg_sum: f64,
    ndcg_n: u64,
    adoptions: u64,
    visits: u64,
    days: Vec<Day>,
}

/// Buffers reused from visit to visit.
#[derive(Debug, Default)]
struct Scratch {
    /// The day's visits: a query type each.
    order: Vec<usize>,
    scored: Vec<Scored>,
    /// The visit's page: indices into its type's candidates.
    page: Vec<u32>,
}

/// One year of `world` under `spec`, in progress.
pub(super) struct Year<'a> {
    world: &'a World,
    o: &'a StudyOptions,
    spec: &'a RunSpec,
    terms: Terms,
    models: Models,
    builders: Builders,
    types: Vec<TypeDay>,
    /// Per day, the streams that end that day.
    removals: Vec<Vec<Stream>>,
    tally: Tally,
    scratch: Scratch,
}

impl<'a> Year<'a> {
    pub(super) fn new(world: &'a World, o: &'a StudyOptions, spec: &'a RunSpec) -> Year<'a> {
        let nb = world.builders.len();
        let days = spec.days;
        let terms = Terms::new(world, o, spec);
        let page_len = terms.page_len;
        Year {
            world,
            o,
            spec,
            terms,
            models: Models::new(world),
            builders: Builders {
                trailing: vec![0.0; nb],
                active: vec![false; nb],
                profit_days: if o.keep_builder_days {
                    vec![Vec::with_capacity(days); nb]
                } else {
                    Vec::new()
                },
            },
            types: vec![
                TypeDay {
                    day: NEVER,
                    ..Default::default()
                };
                world.types.len()
            ],
            removals: vec![Vec::new(); days + 1],
            tally: Tally {
                days: Vec::with_capacity(days),
                ..Default::default()
            },
            scratch: Scratch {
                order: Vec::with_capacity(spec.visits_per_day),
                scored: Vec::new(),
                page: Vec::with_capacity(page_len),
            },
        }
    }

    /// Day `day`, every phase.
    pub(super) fn day(&mut self, day: usize) {
        self.sample_visits(day);
        if matches!(self.spec.policy, StudyPolicy::TailBoost { .. }) {
            let m = &mut self.models;
            quantiles(&m.pop, &m.active, &mut m.quantile);
        }
        let order = std::mem::take(&mut self.scratch.order);
        let mut adoptions = 0u64;
        for (vi, &qt) in order.iter().enumerate() {
            if self.visit(day, vi, qt) {
                adoptions += 1;
            }
        }
        self.scratch.order = order;
        self.tally.adoptions += adoptions;
        self.end_streams(day);
        self.settle_money(day);
        self.feed_popularity();
        let active_models = self.retire_losers(day);
        if self.o.keep_builder_days {
            let b = &mut self.builders;
            for (v, t) in b.profit_days.iter_mut().zip(&b.trailing) {
                v.push(*t);
            }
        }
        self.admit_entrants(day);
        self.record_day(adoptions, active_models);
    }

    // --- Visits and search

    /// The day's visits: systematic sampling of the demand (every type gets
    /// floor or ceil of its share), in shuffled order.
    fn sample_visits(&mut self, day: usize) {
        let mut dd = Dice::new(&[self.spec.behaviour_seed, day as u64, 1]);
        let v = self.spec.visits_per_day;
        let cdf = &self.terms.cdf;
        let order = &mut self.scratch.order;
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
    }

    /// One visit of query type `qt`: a page, its exposure, a look and at most
    /// one adoption (true if it adopted).
    fn visit(&mut self, day: usize, vi: usize, qt: usize) -> bool {
        if self.types[qt].day != day as u32 {
            self.refresh_type(qt, day as u32);
        }
        if self.types[qt].active.is_empty() {
            return false;
        }
        self.tally.visits += 1;
        let mut vd = Dice::new(&[self.spec.behaviour_seed, day as u64, vi as u64, 2]);
        self.fill_page(qt, day, vi);
        self.expose(qt);
        match self.choose(qt, &mut vd) {
            Some(m) => {
                self.adopt(m, day, &mut vd);
                true
            }
            None => false,
        }
    }

    /// Type `qt`'s state for day `d32`: its listed candidates, their ideal
    /// DCG and, for a static policy, the day's page.
    fn refresh_type(&mut self, qt: usize, d32: u32) {
        let ty = &self.world.types[qt];
        let td = &mut self.types[qt];
        let active = &self.models.active;
        let page_len = self.terms.page_len;
        td.day = d32;
        td.active.clear();
        td.active.extend(
            ty.cands
                .iter()
                .enumerate()
                .filter(|(_, c)| active[c.model as usize])
                .map(|(i, _)| i as u32),
        );
        td.idcg = ideal_dcg(ty, &td.active, page_len);
        if self.spec.policy.is_static() {
            let scored = &mut self.scratch.scored;
            scored.clear();
            for &i in &td.active {
                let c = &ty.cands[i as usize];
                let m = c.model as usize;
                let s = static_score(
                    &self.spec.policy,
                    c.relevance,
                    self.models.pop[m],
                    self.models.quantile[m],
                );
                scored.push(Scored {
                    score: s,
                    key: self.world.models[m].key,
                    item: i,
                });
            }
            top(scored, page_len);
            td.page.clear();
            td.page.extend(scored.iter().take(page_len).map(|x| x.item));
        }
    }

    /// The visit's page into `scratch.page`: FairCo's and the stochastic
    /// policy's are drawn per visit, the static ones' are the day's.
    fn fill_page(&mut self, qt: usize, day: usize, vi: usize) {
        let ty = &self.world.types[qt];
        let td = &self.types[qt];
        let page_len = self.terms.page_len;
        let Scratch { scored, page, .. } = &mut self.scratch;
        page.clear();
        match self.spec.policy {
            StudyPolicy::Fair { lambda } | StudyPolicy::FairImpact { lambda } => {
                let x = if matches!(self.spec.policy, StudyPolicy::Fair { .. }) {
                    &self.models.exposure
                } else {
                    &self.models.impact
                };
                scored.clear();
                for &i in &td.active {
                    let c = &ty.cands[i as usize];
                    scored.push(Scored {
                        score: c.relevance,
                        key: self.world.models[c.model as usize].key,
                        item: c.model,
                    });
                }
                let m = &self.models;
                fair_scores(scored, x, &m.merit, &m.seen, self.tally.pages, lambda);
                // Back from model to candidate index.
                for (s, &i) in scored.iter_mut().zip(&td.active) {
                    s.item = i;
                }
                top(scored, page_len);
                page.extend(scored.iter().take(page_len).map(|x| x.item));
            }
            StudyPolicy::Stochastic { temperature } => {
                let t = temperature.max(1e-6);
                let mut gd = Dice::new(&[self.spec.behaviour_seed, day as u64, vi as u64, 3]);
                scored.clear();
                for &i in &td.active {
                    let c = &ty.cands[i as usize];
                    let g = -(-gd.open().ln()).ln();
                    scored.push(Scored {
                        score: c.relevance / t + g,
                        key: self.world.models[c.model as usize].key,
                        item: i,
                    });
                }
                top(scored, page_len);
                page.extend(scored.iter().take(page_len).map(|x| x.item));
            }
            _ => page.extend_from_slice(&td.page),
        }
    }

    /// The page's exposure and nDCG@10 (and, for FairCo's book, merit and
    /// rounds).
    fn expose(&mut self, qt: usize) {
        let ty = &self.world.types[qt];
        let td = &self.types[qt];
        let m = &mut self.models;
        self.tally.pages += 1;
        if matches!(
            self.spec.policy,
            StudyPolicy::Fair { .. } | StudyPolicy::FairImpact { .. }
        ) {
            for &i in &td.active {
                let c = &ty.cands[i as usize];
                m.merit[c.model as usize] += c.relevance.max(0.0);
                m.seen[c.model as usize] = true;
            }
        }
        let mut dcg = 0.0;
        for (j, &i) in self.scratch.page.iter().enumerate() {
            let c = &ty.cands[i as usize];
            m.exposure[c.model as usize] += self.terms.looks[j];
            dcg += c.grade as f64 / ((j + 2) as f64).log2();
        }
        if td.idcg > 0.0 {
            self.tally.ndcg_sum += dcg / td.idcg;
            self.tally.ndcg_n += 1;
        }
    }

    // --- Adoption

    /// Look down the page, then choose at most one model (multinomial
    /// logit with an outside option).
    fn choose(&self, qt: usize, vd: &mut Dice) -> Option<u32> {
        let ty = &self.world.types[qt];
        let o = self.o;
        let mut total = o.outside_utility.exp();
        let mut looked = [Looked::default(); MAX_LOOKED];
        let mut n_looked = 0;
        for (j, &i) in self.scratch.page.iter().enumerate() {
            if vd.f64() < self.terms.looks[j] && n_looked < looked.len() {
                let c = &ty.cands[i as usize];
                let util = self.terms.price_util[c.model as usize];
                let weight = (o.grade_weight * c.grade as f64 + util).exp();
                total += weight;
                looked[n_looked] = Looked {
                    model: c.model,
                    weight,
                };
                n_looked += 1;
            }
        }
        let mut u = vd.f64() * total - o.outside_utility.exp();
        for l in &looked[..n_looked] {
            if u >= 0.0 && u < l.weight {
                return Some(l.model);
            }
            u -= l.weight;
        }
        None
    }

    /// Model `m` adopted on `day`: a stream of calls at a log-normal rate
    /// until the adopter churns.
    fn adopt(&mut self, m: u32, day: usize, vd: &mut Dice) {
        let o = self.o;
        let r = (o.calls_per_day_median.ln() + o.calls_per_day_sigma * vd.normal()).exp()
            * self.terms.scale;
        let life = if o.churn_per_day > 0.0 {
            1 + (vd.open().ln() / (1.0 - o.churn_per_day).ln()).floor() as usize
        } else {
            usize::MAX
        };
        self.models.rate[m as usize] += r;
        if let Some(end) = day.checked_add(life).filter(|e| *e < self.spec.days) {
            self.removals[end].push(Stream { model: m, rate: r });
        }
        if self.models.first_call[m as usize] == NEVER {
            self.models.first_call[m as usize] = day as u32;
        }
    }

    // --- Calls and money

    /// Streams ending today stop calling.
    fn end_streams(&mut self, day: usize) {
        let m = &mut self.models;
        for s in &self.removals[day] {
            let i = s.model as usize;
            if m.active[i] {
                m.rate[i] = (m.rate[i] - s.rate).max(0.0);
            }
        }
        self.removals[day] = Vec::new();
    }

    /// Today's calls of every listed model: income, profit and its trailing
    /// sum, calls for FairCo's impact.
    fn settle_money(&mut self, day: usize) {
        let fee = self.o.platform_fee;
        let t = &self.terms;
        let md = &mut self.models;
        for (m, model) in self.world.models.iter().enumerate() {
            if !md.active[m] {
                continue;
            }
            let calls = md.rate[m];
            let revenue = calls * model.price * (1.0 - fee);
            let profit = revenue - calls * t.cost_call[m] - t.fixed_day[m];
            let slot = m * WINDOW + day % WINDOW;
            md.trailing[m] += profit - md.ring[slot];
            md.ring[slot] = profit;
            md.income[m] += revenue;
            self.tally.calls += calls;
            md.impact[m] += calls;
        }
    }

    // --- Popularity feedback

    /// Popularity decays, and (with feedback) learns today's calls.
    fn feed_popularity(&mut self) {
        let decay = self.terms.decay;
        let md = &mut self.models;
        for ((pop, &active), &calls) in md.pop.iter_mut().zip(&md.active).zip(&md.rate) {
            if !active {
                continue;
            }
            *pop *= decay;
            if self.spec.feedback {
                *pop += calls;
            }
        }
    }

    // --- Exits and entrants

    /// Models losing money over the window exit with the day's probability;
    /// the builders' trailing profit of the rest. Returns the models listed.
    fn retire_losers(&mut self, day: usize) -> usize {
        let mut xd = Dice::new(&[self.spec.behaviour_seed, day as u64, 4]);
        let md = &mut self.models;
        let b = &mut self.builders;
        b.trailing.fill(0.0);
        b.active.fill(false);
        let mut active_models = 0usize;
        for (m, model) in self.world.models.iter().enumerate() {
            let u_exit = xd.f64();
            if !md.active[m] {
                continue;
            }
            let age = day + 1 - model.entry_day as usize;
            if age >= WINDOW && md.trailing[m] < 0.0 && u_exit < self.o.exit_probability {
                md.active[m] = false;
                md.exit_day[m] = day as u32;
                md.rate[m] = 0.0;
                continue;
            }
            active_models += 1;
            let owner = model.builder as usize;
            b.trailing[owner] += md.trailing[m];
            b.active[owner] = true;
        }
        active_models
    }

    /// Tomorrow's entrants are listed.
    fn admit_entrants(&mut self, day: usize) {
        for (m, model) in self.world.models.iter().enumerate() {
            if model.entry_day as usize == day + 1 {
                self.models.active[m] = true;
            }
        }
    }

    /// The day's figures.
    fn record_day(&mut self, adoptions: u64, active_models: usize) {
        let b = &self.builders;
        let viable = |i: usize| b.active[i] && b.trailing[i] > 0.0;
        let tail = &self.terms.initial_tail;
        let tail_viable = tail.iter().filter(|&&i| viable(i)).count();
        let n_active = b.active.iter().filter(|a| **a).count();
        let all_viable = (0..b.active.len()).filter(|&i| viable(i)).count();
        self.tally.days.push(Day {
            viable_tail_share: tail_viable as f64 / tail.len().max(1) as f64,
            viable_active_share: all_viable as f64 / n_active.max(1) as f64,
            active_models,
            adoptions,
        });
    }

    // --- The year's figures

    /// The figures of the year.
    pub(super) fn outcome(self) -> Outcome {
        let world = self.world;
        let md = self.models;
        let b = self.builders;
        let t = self.tally;
        let IncomeFigures {
            b_income,
            active_income,
            mut tail_profits,
            mut hhis,
        } = IncomeFigures::of(
            world,
            &md.income,
            &b.active,
            &b.trailing,
            &self.terms.initial_tail,
        );
        let EntrantFigures {
            survival,
            survival_90,
            mut waits,
            called_share,
        } = EntrantFigures::of(world, &md.exit_day, &md.first_call, self.spec.days);
        let total_exposure: f64 = md.exposure.iter().sum();
        let tail_exposure: f64 = world
            .models
            .iter()
            .zip(&md.exposure)
            .filter(|(m, _)| world.builders[m.builder as usize].tail)
            .map(|(_, x)| *x)
            .sum();
        Outcome {
            ndcg10: t.ndcg_sum / t.ndcg_n.max(1) as f64,
            adoptions_per_visit: t.adoptions as f64 / t.visits.max(1) as f64,
            tail_viable_share: t.days.last().map_or(0.0, |d| d.viable_tail_share),
            median_tail_profit_month: median(&mut tail_profits),
            income_gini_active: hubsearch_rank::gini(&active_income),
            income_gini_all: hubsearch_rank::gini(&b_income),
            top1pct_income_share: hubsearch_rank::concentration::top_fraction_share(
                &b_income, 0.01,
            ),
            median_task_hhi: median(&mut hhis),
            entrant_survival_90: survival_90,
            median_days_to_first_call: median(&mut waits),
            entrants_called_share: called_share,
            tail_exposure_share: if total_exposure > 0.0 {
                tail_exposure / total_exposure
            } else {
                0.0
            },
            income_usd: md.income.iter().sum(),
            calls: t.calls,
            days: t.days,
            entrant_survival: survival,
            lorenz_income: hubsearch_rank::lorenz(&b_income, 50),
            visits: t.visits,
            model_exposure: md.exposure,
            model_income: md.income,
            model_exit_day: md
                .exit_day
                .iter()
                .map(|&d| (d != NEVER).then_some(d))
                .collect(),
            builder_profit_days: b.profit_days,
        }
    }
}

/// The ideal DCG of a type's listed candidates on a page of `page_len`.
fn ideal_dcg(ty: &QueryType, active: &[u32], page_len: usize) -> f64 {
    let mut grades: Vec<u8> = active.iter().map(|&i| ty.cands[i as usize].grade).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    grades
        .iter()
        .take(page_len)
        .enumerate()
        .map(|(j, g)| *g as f64 / ((j + 2) as f64).log2())
        .sum()
}
