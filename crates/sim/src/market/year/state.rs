//! What a run keeps of its world: the terms fixed over the run
//! ([`Terms`]) and each model's state ([`Models`]), read and written by the
//! day's phases in `year.rs` and the visits in `visit.rs`.

use super::super::money::{self, Ewma, Horizon};
use super::super::sim::{look, Regime, RunSpec, StudyPolicy, NEVER};
use super::super::world::{dedicated_month, serverless_cost, World};
use super::super::StudyOptions;
use super::{book_slots, Book, WINDOW};

/// What stays fixed over the run.
#[derive(Debug)]
pub(super) struct Terms {
    /// What FairCo's book keeps in `x`: exposure (`fair`), paid calls
    /// (`fair_impact`), or nothing (no FairCo policy).
    pub(super) book_exposure: bool,
    pub(super) book_calls: bool,
    /// Each model's place in FairCo's book and in `Models::exposure`.
    pub(super) slot: Vec<u32>,
    /// Each model's tie key and entry day (the world's, dense).
    pub(super) keys: Vec<u64>,
    pub(super) entry_day: Vec<u32>,
    /// Real visits each simulated visit stands for.
    pub(super) scale: f64,
    /// Popularity's decay per day.
    pub(super) decay: f64,
    /// The inflow estimate's decay per day.
    pub(super) inflow_k: f64,
    /// An adopter stays another day with probability `q`.
    pub(super) q: f64,
    pub(super) hz: Horizon,
    pub(super) money: Vec<money::Terms>,
    pub(super) dedicated_month: Vec<f64>,
    /// Hosting fixed by the regime (`None`: each model chooses).
    pub(super) fixed_hosting: Option<bool>,
    /// Utility of each model's price.
    pub(super) price_util: Vec<f64>,
    pub(super) cdf: Vec<f64>,
    pub(super) page_len: usize,
    /// Exposure and examination probability of each position.
    pub(super) looks: Vec<f64>,
    /// Each position's DCG discount, `log2(j + 2)` (j from 0).
    pub(super) discount: Vec<f64>,
    /// Builders in the tail at the start.
    pub(super) initial_tail: Vec<usize>,
    pub(super) pilot: usize,
    /// Fluid calls below half a median adopter's are dropped.
    pub(super) fluid_floor: f64,
    /// Repricing: each model's price floor (break-even net of the fee on
    /// serverless) and cap (`reprice_cap_markup` x its serverless cost).
    pub(super) price_bounds: Vec<(f64, f64)>,
}

impl Terms {
    pub(super) fn new(world: &World, o: &StudyOptions, spec: &RunSpec) -> Terms {
        let money = world
            .models
            .iter()
            .map(|m| money::Terms {
                net_price: m.price * (1.0 - o.platform_fee),
                serverless_cost: serverless_cost(o, m.params_m),
                dedicated_cost: o.cost_per_call_usd,
                dedicated_day: dedicated_month(o, m.params_m) / 30.0,
            })
            .collect();
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
        let half = |h: f64| 0.5f64.powf(1.0 / h.max(1e-9));
        Terms {
            book_exposure: matches!(spec.policy, StudyPolicy::Fair { .. }),
            book_calls: matches!(spec.policy, StudyPolicy::FairImpact { .. }),
            slot: book_slots(world),
            keys: world.models.iter().map(|m| m.key).collect(),
            entry_day: world.models.iter().map(|m| m.entry_day).collect(),
            scale: spec.traffic / spec.visits_per_day.max(1) as f64,
            decay: half(o.popularity_half_life_days),
            inflow_k: half(o.inflow_half_life_days),
            q: 1.0 - o.churn_per_day.clamp(0.0, 1.0),
            hz: Horizon::new(o.churn_per_day, o.exit_horizon_days),
            money,
            dedicated_month: world
                .models
                .iter()
                .map(|m| dedicated_month(o, m.params_m))
                .collect(),
            fixed_hosting: match spec.regime {
                Regime::Serverless => Some(false),
                Regime::Dedicated => Some(true),
                Regime::Either => None,
            },
            price_util,
            cdf,
            page_len,
            looks: (1..=page_len).map(look).collect(),
            discount: (0..page_len).map(|j| ((j + 2) as f64).log2()).collect(),
            initial_tail: (0..world.initial_builders)
                .filter(|&b| world.builders[b].tail)
                .collect(),
            pilot: spec.pilot_days,
            fluid_floor: 0.5 * o.calls_per_day_median,
            price_bounds: world
                .models
                .iter()
                .map(|m| {
                    let c = serverless_cost(o, m.params_m);
                    let floor = c / (1.0 - o.platform_fee).max(1e-9);
                    (floor, (c * o.reprice_cap_markup).max(floor))
                })
                .collect(),
        }
    }

    /// Model `m` now charges `price`: its net price and its utility follow.
    pub(super) fn set_price(&mut self, m: usize, price: f64, o: &StudyOptions) {
        self.money[m].net_price = price * (1.0 - o.platform_fee);
        self.price_util[m] = -o.price_weight * (price / o.reference_price_usd).ln();
    }

    /// A model's cost per call and fixed cost per day on its hosting.
    pub(super) fn costs(&self, m: usize, dedicated: bool) -> (f64, f64) {
        let t = &self.money[m];
        if dedicated {
            (t.dedicated_cost, t.dedicated_day)
        } else {
            (t.serverless_cost, 0.0)
        }
    }
}

/// Per-model state.
#[derive(Debug)]
pub(super) struct Models {
    pub(super) active: Vec<bool>,
    /// Study day of the first exit, of the first paid call.
    pub(super) exit_day: Vec<u32>,
    pub(super) first_call: Vec<u32>,
    /// Listings ended so far (a stream of an earlier listing no longer counts).
    pub(super) epoch: Vec<u32>,
    /// Simulated day the current listing began.
    pub(super) listed: Vec<u32>,
    pub(super) dedicated: Vec<bool>,
    /// Popularity: 2022 downloads, decayed, plus calls (with feedback).
    pub(super) pop: Vec<f64>,
    /// Popularity quantile among the listed (tail boost).
    pub(super) quantile: Vec<f64>,
    /// Paid calls per day of single adopters' streams, and of fluid blocks
    /// of adopters (which decay by `q` a day).
    pub(super) rate: Vec<f64>,
    pub(super) fluid: Vec<f64>,
    /// New calls per day adopted today; its estimate; its pilot total.
    pub(super) new_today: Vec<f64>,
    pub(super) inflow: Vec<Ewma>,
    pub(super) pilot_inflow: Vec<f64>,
    /// Adoptions in the pilot.
    pub(super) pilot_adoptions: Vec<u32>,
    /// The last `WINDOW` days' profit, revenue and calls: day `g`'s of
    /// model `m` at `(g % WINDOW) * n + m` (a day's slots side by side).
    pub(super) ring: Vec<[f64; 3]>,
    pub(super) trailing: Vec<[f64; 3]>,
    pub(super) income: Vec<f64>,
    pub(super) income_period: Vec<f64>,
    /// Exposure, by place (`Terms::slot`).
    pub(super) exposure: Vec<f64>,
    /// Exposure at the end of the pilot (the figures leave it out).
    pub(super) exposure_pilot: Vec<f64>,
    /// FairCo's book, by place (`Terms::slot`).
    pub(super) book: Vec<Book>,
    /// Paid calls over the counted days (the validation's concentration).
    pub(super) calls_total: Vec<f64>,
    /// Repricing: the price now, the direction of the next move (+1 up,
    /// -1 down), the profit of the current spell and of the last one.
    pub(super) price: Vec<f64>,
    pub(super) direction: Vec<f64>,
    pub(super) spell_profit: Vec<f64>,
    pub(super) last_spell: Vec<f64>,
}

impl Models {
    pub(super) fn new(world: &World, fixed_hosting: Option<bool>) -> Models {
        let n = world.models.len();
        let z = || vec![0.0; n];
        Models {
            active: world.models.iter().map(|m| m.entry_day == 0).collect(),
            exit_day: vec![NEVER; n],
            first_call: vec![NEVER; n],
            epoch: vec![0; n],
            listed: vec![0; n],
            dedicated: vec![fixed_hosting.unwrap_or(false); n],
            pop: world.models.iter().map(|m| m.downloads).collect(),
            quantile: z(),
            rate: z(),
            fluid: z(),
            new_today: z(),
            inflow: vec![Ewma::default(); n],
            pilot_inflow: z(),
            pilot_adoptions: vec![0; n],
            ring: vec![[0.0; 3]; n * WINDOW],
            trailing: vec![[0.0; 3]; n],
            income: z(),
            income_period: z(),
            exposure: z(),
            exposure_pilot: z(),
            book: vec![Book::default(); n],
            calls_total: z(),
            price: world.models.iter().map(|m| m.price).collect(),
            direction: vec![1.0; n],
            spell_profit: z(),
            last_spell: vec![f64::NAN; n],
        }
    }

    /// Model `m`'s money books emptied (a new listing starts afresh).
    pub(super) fn clear_books(&mut self, m: usize) {
        let n = self.trailing.len();
        for k in 0..WINDOW {
            self.ring[k * n + m] = [0.0; 3];
        }
        self.trailing[m] = [0.0; 3];
        self.spell_profit[m] = 0.0;
        self.last_spell[m] = f64::NAN;
    }
}
