//! The study's results: every figure of a cell, period or grid point as a
//! mean over replications with its bootstrap interval, paired differences,
//! and the whole study's result (docs/study.md, Figures). Statistics over
//! run outcomes only: nothing here changes a run.

use serde::Serialize;

use crate::market::sim::{Outcome, PeriodFigures, Regime, StudyPolicy};
use crate::market::stats::{estimate, Estimate};
use crate::market::world::Coverage;
use crate::market::StudyOptions;

/// Every headline figure of one cell, each a mean over replications with its
/// 95% bootstrap interval.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub ndcg10: Estimate,
    pub ndcg10_listed: Estimate,
    pub welfare: Estimate,
    pub adoptions_per_visit: Estimate,
    pub tail_viable_share: Estimate,
    pub median_tail_profit_month: Estimate,
    pub income_gini_active: Estimate,
    pub income_gini_all: Estimate,
    pub top1pct_income_share: Estimate,
    pub median_task_hhi: Estimate,
    pub entrant_survival_90: Estimate,
    pub median_days_to_first_call: Estimate,
    pub entrants_called_share: Estimate,
    pub tail_exposure_share: Estimate,
    /// The top 1% of models' share of paid calls (the validation target).
    pub top1pct_model_call_share: Estimate,
}

impl Figures {
    pub(super) fn of(outcomes: &[&Outcome]) -> Figures {
        let f =
            |g: fn(&Outcome) -> f64| estimate(&outcomes.iter().map(|o| g(o)).collect::<Vec<_>>());
        Figures {
            ndcg10: f(|o| o.ndcg10),
            ndcg10_listed: f(|o| o.ndcg10_listed),
            welfare: f(|o| o.welfare),
            adoptions_per_visit: f(|o| o.adoptions_per_visit),
            tail_viable_share: f(|o| o.tail_viable_share),
            median_tail_profit_month: f(|o| o.median_tail_profit_month),
            income_gini_active: f(|o| o.income_gini_active),
            income_gini_all: f(|o| o.income_gini_all),
            top1pct_income_share: f(|o| o.top1pct_income_share),
            median_task_hhi: f(|o| o.median_task_hhi),
            entrant_survival_90: f(|o| o.entrant_survival_90),
            median_days_to_first_call: f(|o| o.median_days_to_first_call),
            entrants_called_share: f(|o| o.entrants_called_share),
            tail_exposure_share: f(|o| o.tail_exposure_share),
            top1pct_model_call_share: f(|o| o.top1pct_model_call_share),
        }
    }
}

/// One period's end, over replications (docs/study.md, Figures).
#[derive(Debug, Clone, Serialize)]
pub struct PeriodEstimates {
    pub day: usize,
    /// Per threshold of `thresholds_usd`.
    pub tail_viable: Vec<Estimate>,
    pub tail_covers_dedicated: Estimate,
    pub tail_profit_p50: Estimate,
    pub tail_profit_p90: Estimate,
    pub tail_profit_p99: Estimate,
    pub welfare: Estimate,
    pub ndcg10: Estimate,
    pub income_gini_all: Estimate,
    pub top1pct_income_share: Estimate,
    pub top10pct_income_share: Estimate,
    pub listed_share: Estimate,
    pub dedicated_share: Estimate,
    pub median_markup: Estimate,
    pub at_cap_share: Estimate,
}

impl PeriodEstimates {
    pub(super) fn of(runs: &[Outcome], k: usize) -> PeriodEstimates {
        let f = |g: &dyn Fn(&PeriodFigures) -> f64| {
            estimate(&runs.iter().map(|r| g(&r.periods[k])).collect::<Vec<_>>())
        };
        let thresholds = runs.first().map_or(0, |r| r.periods[k].tail_viable.len());
        PeriodEstimates {
            day: runs.first().map_or(0, |r| r.periods[k].day),
            tail_viable: (0..thresholds).map(|t| f(&|p| p.tail_viable[t])).collect(),
            tail_covers_dedicated: f(&|p| p.tail_covers_dedicated),
            tail_profit_p50: f(&|p| p.tail_profit_p50),
            tail_profit_p90: f(&|p| p.tail_profit_p90),
            tail_profit_p99: f(&|p| p.tail_profit_p99),
            welfare: f(&|p| p.welfare),
            ndcg10: f(&|p| p.ndcg10),
            income_gini_all: f(&|p| p.income_gini_all),
            top1pct_income_share: f(&|p| p.top1pct_income_share),
            top10pct_income_share: f(&|p| p.top10pct_income_share),
            listed_share: f(&|p| p.listed_share),
            dedicated_share: f(&|p| p.dedicated_share),
            median_markup: f(&|p| p.median_markup),
            at_cap_share: f(&|p| p.at_cap_share),
        }
    }
}

/// A policy's difference from relevance, paired by replication (the same
/// world and dice), with a bootstrap interval over replications.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    /// Tail viable at the end, per threshold of `thresholds_usd`.
    pub tail_viable: Vec<Estimate>,
    pub welfare: Estimate,
    pub ndcg10: Estimate,
    /// Welfare relative to relevance's, per replication (-0.02: 2% less).
    pub welfare_ratio: Estimate,
}

impl Paired {
    pub(super) fn of(runs: &[Outcome], reference: &[Outcome]) -> Paired {
        let d = |g: &dyn Fn(&Outcome) -> f64| {
            estimate(
                &runs
                    .iter()
                    .zip(reference)
                    .map(|(a, b)| g(a) - g(b))
                    .collect::<Vec<_>>(),
            )
        };
        let last = |r: &Outcome, t: usize| r.periods.last().map_or(f64::NAN, |p| p.tail_viable[t]);
        let thresholds = runs
            .first()
            .and_then(|r| r.periods.last())
            .map_or(0, |p| p.tail_viable.len());
        Paired {
            tail_viable: (0..thresholds).map(|t| d(&|r| last(r, t))).collect(),
            welfare: d(&|r| r.welfare),
            ndcg10: d(&|r| r.ndcg10),
            welfare_ratio: estimate(
                &runs
                    .iter()
                    .zip(reference)
                    .map(|(a, b)| a.welfare / b.welfare - 1.0)
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

/// One headline cell: a policy under a hosting regime.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub policy: StudyPolicy,
    pub regime: Regime,
    /// Tuned to the welfare target on the tuning seeds (false: the hub's
    /// default or relevance, shown as they are).
    pub tuned: bool,
    /// Over the whole run (welfare, nDCG) and at its end (the rest).
    pub figures: Figures,
    /// At the end of each period.
    pub periods: Vec<PeriodEstimates>,
    /// Its difference from relevance in the same regime, paired.
    pub vs_relevance: Paired,
    /// The tail share making a profit: its change over the last period,
    /// paired by replication (none with one period).
    pub last_change: Option<Estimate>,
    /// Mean over replications, per day.
    pub viable_tail_by_day: Vec<f64>,
    /// Mean over replications, per age in days.
    pub entrant_survival: Vec<f64>,
    /// Mean Lorenz curve of builders' income.
    pub lorenz_income: Vec<(f64, f64)>,
}

/// One point of a knob sweep (mean over the tuning replications).
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub policy: StudyPolicy,
    pub regime: Regime,
    pub ndcg10: f64,
    pub welfare: f64,
    pub adoptions_per_visit: f64,
    pub tail_viable_share: f64,
    pub tail_exposure_share: f64,
}

/// A family's tuned knob.
#[derive(Debug, Clone, Serialize)]
pub struct Tuned {
    pub policy: StudyPolicy,
    pub regime: Regime,
    /// The sweep's knob values it lies between (the lower may be 0, where
    /// every family is relevance).
    pub between: (f64, f64),
    /// Whether the target binds in the sweep (false: no swept value loses
    /// as much welfare; the largest is kept).
    pub binding: bool,
}

/// One point of the traffic x concentration x margin grid.
#[derive(Debug, Clone, Serialize)]
pub struct GridPoint {
    pub policy: StudyPolicy,
    pub traffic: f64,
    pub concentration: f64,
    /// The markup prior's median (the margin axis).
    pub markup: f64,
    /// Whether the policy was tuned in this cell (on the tuning seeds).
    pub tuned_here: bool,
    pub welfare: Estimate,
    pub ndcg10: Estimate,
    /// Welfare relative to relevance's at the same point, paired.
    pub welfare_ratio: Estimate,
    /// Per threshold of `thresholds_usd`.
    pub tail_viable: Vec<Estimate>,
    pub tail_covers_dedicated: Estimate,
    pub viable_active_share: Estimate,
    /// Tail viable ($0) minus relevance's at the same point, paired.
    pub vs_relevance: Estimate,
}

/// One policy under one kind of supply (docs/study.md, Strategic builders).
#[derive(Debug, Clone, Serialize)]
pub struct SupplyCell {
    pub policy: StudyPolicy,
    pub regime: Regime,
    /// Builders reprice toward profit (else prices stay fixed).
    pub repricing: bool,
    /// Entrants choose niches by opportunity (else they copy at random).
    pub seeking_entrants: bool,
    /// At the end of the last period.
    pub end: PeriodEstimates,
    pub welfare: Estimate,
    pub ndcg10: Estimate,
    /// Against the same policy with fixed prices and copying entrants,
    /// paired by replication.
    pub vs_fixed: Paired,
}

/// The validation target (docs/study.md, Calibration): the simulated
/// concentration of calls under the popularity-era ranking against the
/// 2022 snapshot's concentration of downloads.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// The top 1% of models' share of 2022 downloads (models with a task).
    pub target: f64,
    /// The top 1% of models' share of simulated calls.
    pub simulated: Estimate,
    pub policy: StudyPolicy,
    pub regime: Regime,
    pub tolerance: f64,
    pub pass: bool,
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct StudyResult {
    pub options: StudyOptions,
    pub coverage: Coverage,
    pub initial_tail_builders: usize,
    pub entrants_per_world: f64,
    /// Entrants that went to an existing builder, in world 0.
    pub entrants_to_existing: f64,
    pub sweep: Vec<SweepPoint>,
    pub tuned: Vec<Tuned>,
    pub cells: Vec<Cell>,
    pub grid_regime: Regime,
    pub grid: Vec<GridPoint>,
    /// Strategic against non-strategic supply.
    pub supply: Vec<SupplyCell>,
    /// The LP upper bound (serverless), when asked for.
    pub upper: Option<crate::market::upper::Frontier>,
    pub validation: Option<Validation>,
    /// Seconds per stage, for the run-time estimate.
    pub stage_seconds: Vec<(String, f64)>,
    /// The Morris screening of the priors (when asked for).
    pub sensitivity: Option<crate::market::sensitivity::Sensitivity>,
    pub visits: u64,
    pub seconds: f64,
    /// Visits simulated by this invocation (cached runs' not counted) per
    /// second.
    pub visits_per_second: f64,
    pub threads: usize,
    /// Runs in all, and those read from the run cache instead of simulated.
    pub runs: u64,
    pub cached_runs: u64,
}
