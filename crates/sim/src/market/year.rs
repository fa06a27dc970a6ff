//! One simulated run's state and its day, phase by phase (docs/study.md,
//! One day): a pilot without exits or entrants measures each model's
//! adoption inflow and tops its adopters up to the long-run level; then each
//! day's visits search, get a page, look and adopt at most one model
//! (`visit`); adoptions that ended stop calling, calls pay, popularity
//! moves, builders choose their hosting and retire models whose expected
//! profit is negative, retired models may come back, and tomorrow's
//! entrants are listed. [`super::sim::run`] drives it.

mod state;
mod visit;

use state::{Models, Terms};

use super::figures::{period, PeriodFigures, Snapshot, Visits};
use super::money::Ewma;
use super::sim::{
    median, quantiles, task_hhis, Day, EntrantFigures, Outcome, RunSpec, Scored, StudyPolicy, TopK,
    NEVER,
};
use super::world::World;
use super::StudyOptions;

/// Days of the trailing profit that decides viability; a model's grace
/// period before it may exit.
const WINDOW: usize = 30;

/// An adoption's stream of paid calls: its model, calls per day, and the
/// model's listing it belongs to (a retired model's streams end with it).
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    model: u32,
    rate: f64,
    epoch: u32,
}

/// Per-type state of one day.
#[derive(Debug, Clone, Default)]
struct TypeDay {
    day: u32,
    /// No two of the type's candidates share a tie key (so no model is a
    /// candidate twice): a page is the same by any exact top-k, and
    /// FairCo's merit can be booked in the pass that reads it (the fast
    /// path of `fill_page`). Set on the type's first day.
    distinct: bool,
    /// Indices into the type's candidates of the models listed today.
    active: Vec<u32>,
    /// Beside `active`: each listed candidate's model, relevance and tie
    /// key, read on every visit of a per-visit policy without a look into
    /// the world's models.
    listed: Vec<Listed>,
    /// Static policies: today's page.
    page: Vec<u32>,
    /// Ideal DCG over the listed candidates, and over every candidate that
    /// has entered (listed or retired: lost supply counts).
    idcg: f64,
    idcg_full: f64,
}

/// A listed candidate of a type, as a per-visit policy reads it: its
/// relevance, tie key and its model's place in FairCo's book.
#[derive(Debug, Clone, Copy, Default)]
struct Listed {
    relevance: f64,
    key: u64,
    slot: u32,
}

/// FairCo's book of one model, side by side (one look-up a candidate):
/// its merit, and what it is kept fair in, `x` (under `fair` its exposure,
/// the same sums as `Models::exposure`; under `fair_impact` its paid calls).
/// A model with merit has been a candidate (merit grows only when it is
/// one), so FairCo's "seen, with merit" is "merit > 0".
#[derive(Debug, Clone, Copy, Default)]
struct Book {
    merit: f64,
    x: f64,
}

/// Each model's place in FairCo's book and the exposure: the models in the
/// order the query types list them, the most demanded types first, so that
/// the candidates of the types most visited sit side by side (a memory
/// layout only).
fn book_slots(world: &World) -> Vec<u32> {
    let mut order: Vec<usize> = (0..world.types.len()).collect();
    order.sort_by(|&a, &b| {
        let d = |t: usize| world.demand.get(t).copied().unwrap_or(0.0);
        d(b).total_cmp(&d(a)).then(a.cmp(&b))
    });
    let mut slot = vec![u32::MAX; world.models.len()];
    let mut next = 0u32;
    let models = order
        .iter()
        .flat_map(|&t| world.types[t].cands.iter().map(|c| c.model as usize))
        .chain(0..world.models.len());
    for m in models {
        if slot[m] == u32::MAX {
            slot[m] = next;
            next += 1;
        }
    }
    slot
}

/// Per-builder state, as of the end of the latest day.
#[derive(Debug)]
struct Builders {
    /// Trailing profit over the builder's listed initial models, and over
    /// all its listed models.
    initial: Vec<(bool, f64)>,
    all: Vec<(bool, f64)>,
    /// `all`'s profit per day (when the options keep it).
    profit_days: Vec<Vec<f64>>,
}

/// Running totals.
#[derive(Debug, Default)]
struct Tally {
    /// Pages served (FairCo's rounds).
    pages: u64,
    calls: f64,
    /// Today's calls.
    day_calls: f64,
    total: Visits,
    period: Visits,
    days: Vec<Day>,
    periods: Vec<PeriodFigures>,
}

/// Buffers reused from visit to visit.
#[derive(Debug, Default)]
struct Scratch {
    /// The day's visits: a query type each.
    order: Vec<usize>,
    scored: Vec<Scored>,
    /// The visit's page: indices into its type's candidates.
    page: Vec<u32>,
    /// FairCo's exposure-to-merit ratio per candidate of the visit.
    ratios: Vec<Option<f64>>,
    /// The same on the fast path, NaN for none, then each candidate's score.
    ratio: Vec<f64>,
    /// The general path's book of the visit's candidates (by position).
    book_x: Vec<f64>,
    book_merit: Vec<f64>,
    book_seen: Vec<bool>,
    /// The fast path's selection of the page.
    topk: TopK,
}

/// One run of `world` under `spec`, in progress.
pub(super) struct Year<'a> {
    world: &'a World,
    o: &'a StudyOptions,
    spec: &'a RunSpec,
    terms: Terms,
    models: Models,
    builders: Builders,
    types: Vec<TypeDay>,
    /// Per simulated day, the streams that end that day.
    removals: Vec<Vec<Stream>>,
    tally: Tally,
    scratch: Scratch,
}

impl<'a> Year<'a> {
    pub(super) fn new(world: &'a World, o: &'a StudyOptions, spec: &'a RunSpec) -> Year<'a> {
        let nb = world.builders.len();
        let terms = Terms::new(world, o, spec);
        let total_days = spec.days + terms.pilot;
        let page_len = terms.page_len;
        let models = Models::new(world, terms.fixed_hosting);
        Year {
            world,
            o,
            spec,
            terms,
            models,
            builders: Builders {
                initial: vec![(false, 0.0); nb],
                all: vec![(false, 0.0); nb],
                profit_days: if o.keep_builder_days {
                    vec![Vec::with_capacity(spec.days); nb]
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
            removals: vec![Vec::new(); total_days + 1],
            tally: Tally {
                days: Vec::with_capacity(spec.days),
                ..Default::default()
            },
            scratch: Scratch {
                order: Vec::with_capacity(spec.visits_per_day),
                scored: Vec::new(),
                page: Vec::with_capacity(page_len),
                ratios: Vec::new(),
                ratio: Vec::new(),
                topk: TopK::default(),
                book_x: Vec::new(),
                book_merit: Vec::new(),
                book_seen: Vec::new(),
            },
        }
    }

    /// Simulated days in all: the pilot's and the study's.
    pub(super) fn total_days(&self) -> usize {
        self.terms.pilot + self.spec.days
    }

    /// Simulated day `g` (the pilot's days first), every phase.
    pub(super) fn day(&mut self, g: usize) {
        let counting = g >= self.terms.pilot;
        self.sample_visits(g);
        if matches!(self.spec.policy, StudyPolicy::TailBoost { .. }) {
            let m = &mut self.models;
            quantiles(&m.pop, &m.active, &mut m.quantile);
        }
        let order = std::mem::take(&mut self.scratch.order);
        let mut adoptions = 0u64;
        for (vi, &qt) in order.iter().enumerate() {
            if self.visit(g, vi, qt) {
                adoptions += 1;
            }
        }
        self.scratch.order = order;
        self.end_streams(g);
        self.settle_money(g, counting);
        self.learn_inflow(counting);
        if !counting {
            if g + 1 == self.terms.pilot {
                self.warm_start();
            }
            return;
        }
        let d = g - self.terms.pilot;
        let active_models = self.exits_and_hosting(g, d);
        if self.o.keep_builder_days {
            let b = &mut self.builders;
            for (v, t) in b.profit_days.iter_mut().zip(&b.all) {
                v.push(t.1);
            }
        }
        let r = self.o.reprice_days;
        if r > 0 && (d + 1) % r == 0 {
            self.reprice(g);
        }
        self.record_day(adoptions, active_models);
        if (d + 1) % self.o.days.max(1) == 0 || d + 1 == self.spec.days {
            self.close_period(d + 1);
        }
        self.admit_entrants(g, d);
    }

    // --- Calls and money

    /// Streams ending today stop calling.
    fn end_streams(&mut self, g: usize) {
        let m = &mut self.models;
        for s in &self.removals[g] {
            let i = s.model as usize;
            if m.active[i] && m.epoch[i] == s.epoch {
                m.rate[i] = (m.rate[i] - s.rate).max(0.0);
            }
        }
        self.removals[g] = Vec::new();
    }

    /// Today's calls of every listed model: income, profit and the trailing
    /// books, calls for FairCo's impact; popularity decays and (with
    /// feedback) learns today's calls; fluid blocks then lose today's
    /// churners.
    fn settle_money(&mut self, g: usize, counting: bool) {
        let t = &self.terms;
        let feedback = self.spec.feedback;
        let md = &mut self.models;
        let n = self.world.models.len();
        let day_slots = (g % WINDOW) * n;
        for m in 0..n {
            if !md.active[m] {
                continue;
            }
            let calls = md.rate[m] + md.fluid[m];
            let revenue = calls * t.money[m].net_price;
            let (per_call, fixed) = t.costs(m, md.dedicated[m]);
            let today = [revenue - calls * per_call - fixed, revenue, calls];
            let slot = &mut md.ring[day_slots + m];
            for k in 0..3 {
                md.trailing[m][k] += today[k] - slot[k];
            }
            *slot = today;
            md.spell_profit[m] += today[0];
            if counting {
                md.calls_total[m] += calls;
                md.income[m] += revenue;
                md.income_period[m] += revenue;
                self.tally.calls += calls;
                self.tally.day_calls += calls;
            }
            if t.book_calls {
                md.book[t.slot[m] as usize].x += calls;
            }
            md.pop[m] = md.pop[m] * t.decay + if feedback { calls } else { 0.0 };
            md.fluid[m] *= t.q;
            // A block's last fraction of an adopter is no adopter at all.
            if md.fluid[m] < t.fluid_floor {
                md.fluid[m] = 0.0;
            }
        }
    }

    /// Each listed model's estimate of its adoption inflow learns today's.
    fn learn_inflow(&mut self, counting: bool) {
        let k = self.terms.inflow_k;
        let md = &mut self.models;
        for m in 0..md.inflow.len() {
            let x = std::mem::take(&mut md.new_today[m]);
            if !md.active[m] {
                continue;
            }
            if counting {
                md.inflow[m].push(x, k);
            } else {
                md.pilot_inflow[m] += x;
            }
        }
    }

    /// The pilot's end: each model's inflow is its pilot mean, its adopters
    /// are topped up to the long-run level (`a / churn` adopters for `a`
    /// adoptions a day; the pilot built `a (1 - q^P) / churn` of them), and
    /// the books start empty. Single adopters (scale <= 1) are drawn:
    /// Poisson many, each with its own calls and remaining (geometric) life;
    /// blocks (scale > 1) are topped up fluidly.
    fn warm_start(&mut self) {
        let g = self.terms.pilot;
        let p = g as f64;
        let q = self.terms.q;
        let o = self.o;
        let scale = self.terms.scale;
        for m in 0..self.models.active.len() {
            if !self.models.active[m] {
                continue;
            }
            let a = self.models.pilot_inflow[m] / p.max(1.0);
            self.models.inflow[m] = Ewma::settled(a);
            self.models.clear_books(m);
            if q >= 1.0 {
                continue;
            }
            if scale > 1.0 {
                self.models.fluid[m] += a * q.powf(p) / (1.0 - q);
                continue;
            }
            let mut sd = super::sim::Dice::new(&[self.spec.behaviour_seed, m as u64, 5]);
            let count = self.models.pilot_adoptions[m] as f64 / p.max(1.0);
            for _ in 0..poisson(count * q.powf(p) / (1.0 - q), &mut sd) {
                let r = (o.calls_per_day_median.ln() + o.calls_per_day_sigma * sd.normal()).exp()
                    * scale;
                let life = 1 + (sd.open().ln() / q.ln()).floor() as usize;
                self.models.rate[m] += r;
                if let Some(end) = g.checked_add(life).filter(|e| *e < self.removals.len()) {
                    self.removals[end].push(Stream {
                        model: m as u32,
                        rate: r,
                        epoch: self.models.epoch[m],
                    });
                }
            }
        }
        let md = &mut self.models;
        md.exposure_pilot.clone_from(&md.exposure);
    }

    // --- Builders' decisions

    /// Per listed model: its hosting (under `either`), then its exit if its
    /// expected profit over the horizon is negative (after the grace
    /// period, with the day's probability); retired models may come back.
    /// The builders' books of the rest. Returns the models listed.
    fn exits_and_hosting(&mut self, g: usize, d: usize) -> usize {
        let mut xd = super::sim::Dice::new(&[self.spec.behaviour_seed, g as u64, 4]);
        let (o, t) = (self.o, &self.terms);
        let md = &mut self.models;
        let b = &mut self.builders;
        b.initial.fill((false, 0.0));
        b.all.fill((false, 0.0));
        let mut active_models = 0usize;
        for (m, model) in self.world.models.iter().enumerate() {
            let (u_exit, u_back) = (xd.f64(), xd.f64());
            if !md.active[m] {
                if md.epoch[m] > 0 && u_back < o.reentry_per_day {
                    md.active[m] = true;
                    md.listed[m] = g as u32 + 1;
                    md.dedicated[m] = t.fixed_hosting.unwrap_or(false);
                    md.inflow[m] = Ewma::default();
                    md.pop[m] = 0.0;
                }
                continue;
            }
            let calls = t.hz.calls(md.rate[m] + md.fluid[m], md.inflow[m].get());
            if t.fixed_hosting.is_none() {
                md.dedicated[m] =
                    t.money[m].choose_dedicated(calls, md.dedicated[m], &t.hz, o.switch_hysteresis);
            }
            let age = g + 1 - md.listed[m] as usize;
            let expected = t.money[m].profit(calls, md.dedicated[m], &t.hz);
            if age >= WINDOW && expected < 0.0 && u_exit < o.exit_probability {
                md.active[m] = false;
                if md.exit_day[m] == NEVER {
                    md.exit_day[m] = d as u32;
                }
                md.epoch[m] += 1;
                md.rate[m] = 0.0;
                md.fluid[m] = 0.0;
                md.clear_books(m);
                continue;
            }
            active_models += 1;
            let owner = model.builder as usize;
            let profit = md.trailing[m][0];
            b.all[owner] = (true, b.all[owner].1 + profit);
            if m < self.world.initial_models {
                b.initial[owner] = (true, b.initial[owner].1 + profit);
            }
        }
        active_models
    }

    /// Builders reprice (docs/study.md, Strategic builders): every listed
    /// model at least one spell old compares the profit of the spell just
    /// ended with the one before (at the previous price); a fall reverses
    /// its direction, a spell without calls after one without calls points
    /// it down (no sales: cut the price); then it moves its price by the
    /// step in that direction, within its floor and cap. A finite-difference
    /// sign-gradient step on realised profit.
    fn reprice(&mut self, g: usize) {
        let o = self.o;
        let step = o.reprice_step.max(1.0);
        let span = o.reprice_days as u32;
        for m in 0..self.models.active.len() {
            let md = &mut self.models;
            if !md.active[m] {
                md.spell_profit[m] = 0.0;
                md.last_spell[m] = f64::NAN;
                continue;
            }
            let now = std::mem::take(&mut md.spell_profit[m]);
            if (g as u32 + 1).saturating_sub(md.listed[m]) < span {
                continue;
            }
            let before = md.last_spell[m];
            if before.is_finite() {
                if now < before {
                    md.direction[m] = -md.direction[m];
                } else if now == 0.0 && before == 0.0 {
                    md.direction[m] = -1.0;
                }
            }
            md.last_spell[m] = now;
            let (lo, hi) = self.terms.price_bounds[m];
            let p = (md.price[m] * step.powf(md.direction[m])).clamp(lo, hi);
            md.price[m] = p;
            self.terms.set_price(m, p, o);
        }
    }

    /// Tomorrow's entrants are listed (serverless under `either`: they
    /// have no volume yet).
    fn admit_entrants(&mut self, g: usize, d: usize) {
        let md = &mut self.models;
        for (m, model) in self.world.models.iter().enumerate() {
            if model.entry_day as usize == d + 1 {
                md.active[m] = true;
                md.listed[m] = g as u32 + 1;
                md.dedicated[m] = self.terms.fixed_hosting.unwrap_or(false);
            }
        }
    }

    /// The day's figures.
    fn record_day(&mut self, adoptions: u64, active_models: usize) {
        let b = &self.builders;
        let tail = &self.terms.initial_tail;
        let tail_viable = tail
            .iter()
            .filter(|&&i| b.initial[i].0 && b.initial[i].1 > 0.0)
            .count();
        let n_active = b.all.iter().filter(|a| a.0).count();
        let all_viable = b.all.iter().filter(|a| a.0 && a.1 > 0.0).count();
        self.tally.days.push(Day {
            viable_tail_share: tail_viable as f64 / tail.len().max(1) as f64,
            viable_active_share: all_viable as f64 / n_active.max(1) as f64,
            active_models,
            adoptions,
            calls: std::mem::take(&mut self.tally.day_calls),
        });
    }

    /// The end of a period of `day` days: its figures; its tallies restart.
    fn close_period(&mut self, day: usize) {
        let md = &self.models;
        let t = &self.terms;
        let figures = period(&Snapshot {
            world: self.world,
            day,
            active: &md.active,
            dedicated: &md.dedicated,
            trailing: &md.trailing,
            income: &md.income_period,
            dedicated_month: &t.dedicated_month,
            overhead: self.o.cost_per_call_usd,
            initial_tail: &t.initial_tail,
            thresholds: &self.o.thresholds_usd,
            visits: self.tally.period,
        });
        let mut figures = figures;
        let (mut markups, mut at_cap) = (Vec::new(), 0usize);
        for m in 0..md.active.len() {
            if md.active[m] {
                let (lo, hi) = t.price_bounds[m];
                let cost = lo * (1.0 - self.o.platform_fee);
                markups.push(md.price[m] / cost.max(f64::MIN_POSITIVE));
                at_cap += usize::from(md.price[m] >= hi * (1.0 - 1e-9));
            }
        }
        markups.sort_by(f64::total_cmp);
        figures.median_markup = super::figures::quantile(&markups, 0.5);
        figures.at_cap_share = at_cap as f64 / markups.len().max(1) as f64;
        self.tally.periods.push(figures);
        self.tally.period = Visits::default();
        self.models.income_period.fill(0.0);
    }

    // --- The run's figures

    /// The figures of the run: those of the last period, and every period's.
    pub(super) fn outcome(self) -> Outcome {
        let world = self.world;
        let md = self.models;
        let b = self.builders;
        let t = self.tally;
        let mut hhis = task_hhis(world, &md.income);
        let EntrantFigures {
            survival,
            survival_90,
            mut waits,
            called_share,
        } = EntrantFigures::of(world, &md.exit_day, &md.first_call, self.spec.days);
        let exposure: Vec<f64> = self
            .terms
            .slot
            .iter()
            .map(|&k| md.exposure[k as usize] - md.exposure_pilot[k as usize])
            .collect();
        let total_exposure: f64 = exposure.iter().sum();
        let tail_exposure: f64 = world
            .models
            .iter()
            .zip(&exposure)
            .filter(|(m, _)| world.builders[m.builder as usize].tail)
            .map(|(_, x)| *x)
            .sum();
        let last = t.periods.last().cloned().unwrap_or_default();
        let v = t.total;
        let mut b_income = vec![0.0; world.builders.len()];
        for (m, x) in world.models.iter().zip(&md.income) {
            b_income[m.builder as usize] += x;
        }
        Outcome {
            ndcg10: v.ndcg_sum / v.ndcg_n.max(1) as f64,
            ndcg10_listed: v.listed_sum / v.listed_n.max(1) as f64,
            welfare: v.welfare_sum / v.visits.max(1) as f64,
            adoptions_per_visit: v.adoptions as f64 / v.visits.max(1) as f64,
            tail_viable_share: last.tail_viable.first().copied().unwrap_or(0.0),
            median_tail_profit_month: last.tail_profit_p50,
            income_gini_active: last.income_gini_active,
            income_gini_all: last.income_gini_all,
            top1pct_income_share: last.top1pct_income_share,
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
            periods: t.periods,
            days: t.days,
            entrant_survival: survival,
            lorenz_income: hubsearch_rank::lorenz(&b_income, 50),
            visits: v.visits,
            model_exposure: exposure,
            model_price: md.price.clone(),
            model_income: md.income,
            top1pct_model_call_share: {
                let entered: Vec<f64> = world
                    .models
                    .iter()
                    .zip(&md.calls_total)
                    .filter(|(m, _)| (m.entry_day as usize) < self.spec.days)
                    .map(|(_, c)| *c)
                    .collect();
                hubsearch_rank::concentration::top_fraction_share(&entered, 0.01)
            },
            model_exit_day: md
                .exit_day
                .iter()
                .map(|&d| (d != NEVER).then_some(d))
                .collect(),
            builder_profit_days: b.profit_days,
        }
    }
}

/// A Poisson draw of mean `lambda`: by counting uniforms' product (Knuth)
/// below 30, by the rounded normal approximation above.
pub(super) fn poisson(lambda: f64, d: &mut super::sim::Dice) -> u64 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda >= 30.0 {
        return (lambda + lambda.sqrt() * d.normal()).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let mut k = 0u64;
    let mut prod = d.f64();
    while prod > limit {
        k += 1;
        prod *= d.f64();
    }
    k
}

#[cfg(test)]
mod tests {
    use super::super::sim::Dice;
    use super::poisson;

    /// Mean and variance of the draws match lambda, on both branches.
    #[test]
    fn poisson_draws_have_the_right_mean_and_variance() {
        for lambda in [0.3, 4.0, 29.0, 120.0] {
            let mut d = Dice::new(&[7, lambda as u64]);
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| poisson(lambda, &mut d) as f64).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let se = (lambda / n as f64).sqrt();
            assert!(
                (mean - lambda).abs() < 5.0 * se,
                "lambda {lambda}: mean {mean}"
            );
            assert!(
                (var / lambda - 1.0).abs() < 0.05,
                "lambda {lambda}: var {var}"
            );
        }
        assert_eq!(poisson(0.0, &mut Dice::new(&[1])), 0);
    }
}
