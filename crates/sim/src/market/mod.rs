//! The pay-per-call study (docs/study.md): does per-call income sustain the
//! long tail of small builders, and which ranking policy changes the answer,
//! at what cost to the people searching?
//!
//! [`world`] builds the hub and its query types from the real index,
//! [`sim`] runs one policy under one hosting regime (a warm-start pilot,
//! then periods of days; the day's phases in `year`, builders' expected
//! profit and hosting choice in [`money`]), and [`study`] runs the whole
//! design: policies tuned on separate seeds to lose at most 2% of users'
//! welfare, 20 replications per cell with separate world and behaviour
//! seeds and common random numbers across policies, paired bootstrap
//! differences from relevance, strategic against non-strategic supply
//! (repricing builders, profit-seeking entrants), the LP upper bound in
//! [`upper`], the traffic x demand-concentration x margin grid re-tuned per
//! cell, the validation target and (on request) the Morris screening in
//! [`sensitivity`]; [`report`] writes REPORT.md, its answer generated from
//! the figures, and its plots. [`cache`] keeps every finished run's outcome
//! on disk, keyed by all that decides it, so a stopped study resumes.

mod answer;
pub mod cache;
mod figures;
pub mod money;
mod plots;
pub mod report;
pub mod sensitivity;
pub mod sim;
pub mod stats;
pub mod study;
pub mod upper;
pub mod world;
mod year;

use serde::Serialize;

pub use cache::RunCache;
pub use sim::{Outcome, Regime, RunSpec, StudyPolicy};
pub use study::{
    estimate_run_time, run_study, run_study_cached, Cell, GridPoint, StudyResult, SweepPoint,
};
pub use world::{Base, World};

/// Every parameter of the study (docs/study.md lists them with their sources).
#[derive(Debug, Clone, Serialize)]
pub struct StudyOptions {
    // --- world
    /// Candidates retrieved per query type.
    pub depth: usize,
    /// Candidates retrieved per name query (a person who names a model
    /// looks at the first results).
    pub name_depth: usize,
    /// Share of visits that name a model (the rest state a need).
    pub navigational_share: f64,
    /// Parameters (millions) assumed when the card does not say.
    pub prior_params_m: f64,
    /// Demand per query type ~ (1 + its models' 2022 downloads)^concentration.
    pub concentration: f64,
    /// New models per day, as a share of the initial models.
    pub entry_rate: f64,
    /// Share of new models from a new builder (else an existing one).
    pub new_builder_share: f64,
    /// Entrants copy a template in proportion to its opportunity (demand
    /// per candidate of its need types) to this power (0: uniformly).
    pub entry_seeking: f64,
    /// Price = serverless cost per call x markup, markup log-normal.
    pub markup_median: f64,
    pub markup_sigma: f64,
    // --- money
    /// Serverless cost per call: this + per-million-parameters x size.
    pub cost_per_call_usd: f64,
    pub cost_per_call_per_m_params_usd: f64,
    /// Dedicated hosting per month: up to 400M, up to 3B, larger.
    pub dedicated_month_usd: [f64; 3],
    /// The platform's share of every paid call.
    pub platform_fee: f64,
    // --- users
    pub page: usize,
    /// Utility of adopting nothing.
    pub outside_utility: f64,
    /// Utility per relevance grade.
    pub grade_weight: f64,
    /// Utility per unit of ln(price / reference price), subtracted.
    pub price_weight: f64,
    pub reference_price_usd: f64,
    /// An adoption's calls per day: log-normal (median, sigma).
    pub calls_per_day_median: f64,
    pub calls_per_day_sigma: f64,
    /// Probability per day that an adopter stops calling.
    pub churn_per_day: f64,
    // --- builders and popularity
    /// Daily probability that a model whose expected profit over the
    /// horizon is negative is retired (a builder's inertia).
    pub exit_probability: f64,
    /// The horizon of the expected profit that decides exits and hosting,
    /// days (90: an adopter's mean life at churn 1/90).
    pub exit_horizon_days: f64,
    /// Half-life of a model's estimate of its adoption inflow, days.
    pub inflow_half_life_days: f64,
    /// Daily probability that a retired model is listed again (cold).
    pub reentry_per_day: f64,
    /// A model under `either` hosting switches only when the other regime
    /// gains more than this share of a dedicated instance's cost over the
    /// horizon (hysteresis: no daily flapping).
    pub switch_hysteresis: f64,
    /// Days of the warm-start pilot (no exits, no entrants, nothing
    /// counted) that measures each model's adoption inflow; its adopters
    /// are then topped up to the long-run level (0: a cold start).
    pub pilot_days: usize,
    /// Half-life of popularity (downloads and calls), days.
    pub popularity_half_life_days: f64,
    // --- design
    /// Days of one reported period ("year"); figures at the end of each.
    pub days: usize,
    /// Periods simulated (figures at the end of each show whether they settle).
    pub years: usize,
    /// Builders' monthly profit thresholds of the viability table, USD.
    pub thresholds_usd: Vec<f64>,
    pub visits_per_day: usize,
    /// Real visits per day (each simulated visit stands for traffic / visits_per_day).
    pub traffic: f64,
    /// Replications per headline cell.
    pub seeds: usize,
    /// Replications per point of the knob sweeps (tuning and frontier).
    pub sweep_seeds: usize,
    /// Policies are tuned to lose at most this share of relevance's
    /// user welfare (one-sided), interpolated along each family's sweep.
    pub target_loss: f64,
    /// The sweeps run on world seeds `seed + tune_seed_offset + r`
    /// (behaviour `+ 1000`), disjoint from the reported replications.
    pub tune_seed_offset: u64,
    pub alphas: Vec<f64>,
    pub betas: Vec<f64>,
    pub fair_lambdas: Vec<f64>,
    pub impact_lambdas: Vec<f64>,
    pub temperatures: Vec<f64>,
    /// The grid of traffic x demand concentration.
    pub grid_traffic: Vec<f64>,
    pub grid_concentration: Vec<f64>,
    pub grid_seeds: usize,
    pub grid_visits_per_day: usize,
    /// First seed; replication r uses world seed `seed + r` and behaviour
    /// seed `seed + 1000 + r`.
    pub seed: u64,
    /// Morris trajectories of the sensitivity screening (0: none).
    pub sensitivity_trajectories: usize,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    // --- strategic supply
    /// Builders reprice every this many days (0: prices fixed): each listed
    /// model moves its price by `reprice_step` (multiplicatively) in the
    /// direction that raised its realised profit over the last such spell,
    /// between break-even net of the fee and `reprice_cap_markup` x its
    /// serverless cost (docs/study.md, Strategic builders).
    pub reprice_days: usize,
    pub reprice_step: f64,
    /// The price cap, as a markup on the serverless cost (the 95th
    /// percentile of the markup prior, rounded: no builder charges more
    /// than the dearest twentieth do under the prior).
    pub reprice_cap_markup: f64,
    /// Replications of the strategic-supply comparison (0: none); the
    /// reported seeds' first ones.
    pub strategic_seeds: usize,
    /// Its repricing period and its profit-seeking entrants' exponent.
    pub strategic_reprice_days: usize,
    pub strategic_entry_seeking: f64,
    // --- the upper bound
    /// Simulated visits of the day the upper bound's LP shares out (0: no bound).
    pub upper_visits: usize,
    /// Its welfare floors, as shares of relevance's.
    pub upper_welfare_ratios: Vec<f64>,
    /// Its viability threshold, USD a month.
    pub upper_threshold_usd: f64,
    // --- the grid's margin axis and re-tuning
    /// Markup medians of the grid (its margin axis).
    pub grid_markups: Vec<f64>,
    /// Re-tune fair in every grid cell on the tuning seeds (else the
    /// headline's tuned knob everywhere).
    pub grid_retune: bool,
    // --- validation
    /// The validation target passes when the simulated top-1% share of
    /// calls is within this many points (as a share) of the 2022 snapshot's
    /// top-1% share of downloads.
    pub validation_tolerance: f64,
    /// Keep each builder's trailing profit per day (tests).
    #[serde(skip)]
    pub keep_builder_days: bool,
    /// Rank every page the general way (`sim::fair_scores_with` or every
    /// candidate's score, then `sim::top`) instead of by the fast path; the
    /// pages are the same bit for bit (tests check it).
    #[serde(skip)]
    pub slow_pages: bool,
}

impl Default for StudyOptions {
    fn default() -> Self {
        StudyOptions {
            depth: 200,
            name_depth: 20,
            navigational_share: 0.15,
            prior_params_m: 110.0,
            concentration: 1.0,
            entry_rate: 0.002,
            new_builder_share: 0.5,
            entry_seeking: 0.0,
            markup_median: 3.0,
            markup_sigma: 0.75,
            cost_per_call_usd: 0.000_02,
            cost_per_call_per_m_params_usd: 0.000_000_5,
            dedicated_month_usd: [36.0, 180.0, 600.0],
            platform_fee: 0.2,
            page: 10,
            outside_utility: 4.0,
            grade_weight: 1.5,
            price_weight: 0.5,
            reference_price_usd: 0.001,
            calls_per_day_median: 20.0,
            calls_per_day_sigma: 1.5,
            churn_per_day: 1.0 / 90.0,
            exit_probability: 0.1,
            exit_horizon_days: 90.0,
            inflow_half_life_days: 30.0,
            reentry_per_day: 1.0 / 365.0,
            switch_hysteresis: 0.1,
            pilot_days: 90,
            popularity_half_life_days: 30.0,
            days: 365,
            years: 3,
            thresholds_usd: vec![0.0, 10.0, 100.0, 1000.0],
            visits_per_day: 10_000,
            traffic: 10_000.0,
            seeds: 20,
            sweep_seeds: 3,
            target_loss: 0.02,
            tune_seed_offset: 500,
            alphas: vec![0.01, 0.03, 0.1, 0.3, 1.0],
            betas: vec![0.1, 0.3, 1.0, 3.0],
            fair_lambdas: vec![1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
            impact_lambdas: vec![1e-11, 1e-10, 1e-9, 1e-8],
            temperatures: vec![0.01, 0.03, 0.1, 0.3],
            grid_traffic: vec![1e3, 1e4, 1e5, 1e6],
            grid_concentration: vec![0.5, 1.0, 1.5],
            grid_seeds: 10,
            grid_visits_per_day: 2_500,
            seed: 1,
            sensitivity_trajectories: 0,
            reprice_days: 0,
            reprice_step: 1.25,
            reprice_cap_markup: 10.0,
            strategic_seeds: 10,
            strategic_reprice_days: 30,
            strategic_entry_seeking: 1.0,
            upper_visits: 10_000,
            upper_welfare_ratios: vec![
                1.5, 1.3, 1.2, 1.1, 1.05, 1.0, 0.98, 0.95, 0.9, 0.8, 0.5, 0.0,
            ],
            upper_threshold_usd: 100.0,
            grid_markups: vec![2.0, 3.0, 4.5],
            grid_retune: true,
            validation_tolerance: 0.1,
            threads: 0,
            keep_builder_days: false,
            slow_pages: false,
        }
    }
}

impl StudyOptions {
    /// Days simulated after the pilot: `days x years`.
    pub fn horizon_days(&self) -> usize {
        self.days * self.years.max(1)
    }

    /// The CI preset: three periods of 45 days after a 20-day pilot, 1,000 visits a day, 3
    /// replications, one sweep seed, a 2 x 2 grid of 2 replications.
    pub fn quick() -> StudyOptions {
        StudyOptions {
            days: 45,
            pilot_days: 20,
            visits_per_day: 1_000,
            traffic: 10_000.0,
            seeds: 3,
            sweep_seeds: 1,
            alphas: vec![0.1, 1.0],
            betas: vec![0.3, 3.0],
            fair_lambdas: vec![1e-2, 1.0],
            impact_lambdas: vec![1e-10, 1e-8],
            temperatures: vec![0.03, 0.3],
            grid_traffic: vec![1e3, 1e5],
            grid_concentration: vec![0.5, 1.0],
            grid_seeds: 2,
            grid_visits_per_day: 500,
            grid_markups: vec![3.0],
            strategic_seeds: 2,
            upper_visits: 300,
            upper_welfare_ratios: vec![1.2, 1.0, 0.95, 0.0],
            ..StudyOptions::default()
        }
    }

    /// A whole study, every stage (sweep, headline, strategic supply, the
    /// upper bound, the grid with its re-tuning, the sensitivity
    /// screening), tiny: for tests here and in `tests/`.
    #[doc(hidden)]
    pub fn tiny() -> StudyOptions {
        StudyOptions {
            days: 31,
            years: 2,
            pilot_days: 5,
            visits_per_day: 20,
            traffic: 40.0,
            seeds: 2,
            grid_seeds: 1,
            grid_visits_per_day: 10,
            grid_traffic: vec![20.0],
            grid_concentration: vec![1.0],
            upper_visits: 20,
            upper_threshold_usd: 0.01,
            threads: 2,
            sensitivity_trajectories: 1,
            entry_rate: 0.01,
            ..StudyOptions::quick()
        }
    }
}
