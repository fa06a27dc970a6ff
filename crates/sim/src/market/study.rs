//! The whole study (docs/study.md, Design): knob sweeps, tuning to equal
//! relevance, the headline cells and the traffic x concentration grid.
//! Replications run in parallel (rayon), one world per seed shared by every
//! policy of that seed: common random numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::sim::{run, Outcome, Regime, RunSpec, StudyPolicy};
use super::stats::{estimate, Estimate};
use super::world::{Base, Coverage, World};
use super::StudyOptions;

/// Every headline figure of one cell, each a mean over replications with its
/// 95% bootstrap interval.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub ndcg10: Estimate,
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
}

impl Figures {
    fn of(outcomes: &[&Outcome]) -> Figures {
        let f =
            |g: fn(&Outcome) -> f64| estimate(&outcomes.iter().map(|o| g(o)).collect::<Vec<_>>());
        Figures {
            ndcg10: f(|o| o.ndcg10),
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
        }
    }
}

/// One headline cell: a policy under a hosting regime.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub policy: StudyPolicy,
    pub regime: Regime,
    /// Tuned to nDCG@10 within the target of relevance's (false: the hub's
    /// default, shown for reference; or no knob value reached the target).
    pub equal_relevance: bool,
    pub figures: Figures,
    /// Mean over replications, per day.
    pub viable_tail_by_day: Vec<f64>,
    /// Mean over replications, per age in days.
    pub entrant_survival: Vec<f64>,
    /// Mean Lorenz curve of builders' income.
    pub lorenz_income: Vec<(f64, f64)>,
}

/// One point of a knob sweep (mean over the sweep's replications).
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub policy: StudyPolicy,
    pub regime: Regime,
    pub ndcg10: f64,
    pub adoptions_per_visit: f64,
    pub tail_viable_share: f64,
    pub tail_exposure_share: f64,
}

/// A family's tuned knob.
#[derive(Debug, Clone, Serialize)]
pub struct Tuned {
    pub policy: StudyPolicy,
    pub regime: Regime,
    /// Its sweep nDCG@10 over relevance's.
    pub ndcg_ratio: f64,
    /// Whether it met the target.
    pub within: bool,
}

/// One point of the traffic x concentration grid.
#[derive(Debug, Clone, Serialize)]
pub struct GridPoint {
    pub policy: StudyPolicy,
    pub traffic: f64,
    pub concentration: f64,
    pub tail_viable_share: Estimate,
    pub viable_active_share: Estimate,
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct StudyResult {
    pub options: StudyOptions,
    pub coverage: Coverage,
    pub initial_tail_builders: usize,
    pub entrants_per_world: f64,
    pub sweep: Vec<SweepPoint>,
    pub tuned: Vec<Tuned>,
    pub cells: Vec<Cell>,
    pub grid_regime: Regime,
    pub grid: Vec<GridPoint>,
    pub visits: u64,
    pub seconds: f64,
    pub visits_per_second: f64,
    pub threads: usize,
}

/// The sweep's families, each with its grid of knob values.
fn families(o: &StudyOptions) -> Vec<Vec<StudyPolicy>> {
    let fam = |p: StudyPolicy, ks: &[f64]| ks.iter().map(|&k| p.with_knob(k)).collect::<Vec<_>>();
    vec![
        fam(StudyPolicy::Popularity { alpha: 0.0 }, &o.alphas),
        fam(StudyPolicy::TailBoost { beta: 0.0 }, &o.betas),
        fam(StudyPolicy::Fair { lambda: 0.0 }, &o.fair_lambdas),
        fam(StudyPolicy::FairImpact { lambda: 0.0 }, &o.impact_lambdas),
        fam(
            StudyPolicy::Stochastic { temperature: 0.0 },
            &o.temperatures,
        ),
    ]
}

/// The hub's default popularity policy (`ranking.alpha` = 1).
pub const HUB_DEFAULT: StudyPolicy = StudyPolicy::Popularity { alpha: 1.0 };

/// Run the study.
pub fn run_study(base: &Base, o: &StudyOptions, progress: &(dyn Fn(&str) + Sync)) -> StudyResult {
    let threads = if o.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        o.threads
    };
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| study(base, o, progress)),
        Err(_) => study(base, o, progress),
    }
}

fn study(base: &Base, o: &StudyOptions, progress: &(dyn Fn(&str) + Sync)) -> StudyResult {
    let started = Instant::now();
    let visits = AtomicU64::new(0);
    let threads = rayon::current_num_threads();
    let spec = |policy, regime, r: usize, vpd: usize, traffic: f64| RunSpec {
        policy,
        regime,
        behaviour_seed: o.seed + 1000 + r as u64,
        visits_per_day: vpd,
        traffic,
        feedback: true,
        days: o.days,
    };
    // Runs every (policy, regime) for each replication, on that replication's world.
    let replicate = |opts: &StudyOptions,
                     jobs: &[(StudyPolicy, Regime)],
                     seeds: usize,
                     vpd: usize,
                     traffic: f64,
                     what: &str|
     -> Vec<Vec<Outcome>> {
        // Every (replication, job) pair is a task of its own (the pool
        // stays busy to the end); each samples its replication's world,
        // which is the same for every job of that replication (seeded).
        let done = AtomicU64::new(0);
        let n = jobs.len();
        let mut flat: Vec<(usize, Outcome)> = (0..seeds * n)
            .into_par_iter()
            .map(|k| {
                let (r, j) = (k / n, k % n);
                let world = World::sample(base, opts, opts.seed + r as u64);
                let (p, g) = jobs[j];
                let out = run(&world, opts, &spec(p, g, r, vpd, traffic));
                visits.fetch_add(out.visits, Ordering::Relaxed);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if (d as usize).is_multiple_of(n) || d as usize == seeds * n {
                    progress(&format!(
                        "{what}: {d} of {} runs ({:.0} s so far)",
                        seeds * n,
                        started.elapsed().as_secs_f64()
                    ));
                }
                (k, out)
            })
            .collect();
        flat.sort_by_key(|(k, _)| *k);
        // Per job, its outcomes over replications.
        let mut per_job: Vec<Vec<Outcome>> = (0..n).map(|_| Vec::with_capacity(seeds)).collect();
        for (k, out) in flat {
            per_job[k % n].push(out);
        }
        per_job
    };

    // 1. The sweeps (and relevance), in each hosting regime (exits differ,
    //    so the candidate pools and the knob that keeps 98% differ too).
    let regimes = [Regime::Serverless, Regime::Dedicated];
    let mut sweep_jobs = Vec::new();
    for g in regimes {
        sweep_jobs.push((StudyPolicy::Relevance, g));
        for f in families(o) {
            sweep_jobs.extend(f.into_iter().map(|p| (p, g)));
        }
    }
    let sweep_out = replicate(
        o,
        &sweep_jobs,
        o.sweep_seeds.max(1),
        o.visits_per_day,
        o.traffic,
        "knob sweep",
    );
    let mean = |xs: &[Outcome], g: fn(&Outcome) -> f64| -> f64 {
        let v: Vec<f64> = xs.iter().map(g).filter(|x| x.is_finite()).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let sweep: Vec<SweepPoint> = sweep_jobs
        .iter()
        .zip(&sweep_out)
        .map(|((p, g), outs)| SweepPoint {
            policy: *p,
            regime: *g,
            ndcg10: mean(outs, |o| o.ndcg10),
            adoptions_per_visit: mean(outs, |o| o.adoptions_per_visit),
            tail_viable_share: mean(outs, |o| o.tail_viable_share),
            tail_exposure_share: mean(outs, |o| o.tail_exposure_share),
        })
        .collect();
    // 2. Tune each family per regime: the strongest knob value whose
    //    nDCG@10 is within the target of relevance's (either side); none:
    //    the mildest.
    let tolerance = 1.0 - o.target_ratio;
    let mut tuned: Vec<Tuned> = Vec::new();
    for g in regimes {
        let reference = sweep
            .iter()
            .find(|s| s.regime == g && s.policy == StudyPolicy::Relevance)
            .map_or(f64::MIN_POSITIVE, |s| s.ndcg10.max(f64::MIN_POSITIVE));
        for f in families(o) {
            let mut points: Vec<&SweepPoint> = sweep
                .iter()
                .filter(|s| s.regime == g && f.contains(&s.policy))
                .collect();
            points.sort_by(|a, b| knob(a).total_cmp(&knob(b)));
            let ok = |p: &SweepPoint| (p.ndcg10 / reference - 1.0).abs() <= tolerance + 1e-12;
            let (p, within) = match points.iter().rev().find(|p| ok(p)) {
                Some(p) => (*p, true),
                None => (
                    *points.first().expect("every family has a knob value"),
                    false,
                ),
            };
            tuned.push(Tuned {
                policy: p.policy,
                regime: g,
                ndcg_ratio: p.ndcg10 / reference,
                within,
            });
        }
    }
    progress(&format!(
        "tuned: {}",
        tuned
            .iter()
            .map(|t| format!(
                "{} {} ({:.3})",
                t.regime.name(),
                t.policy.label(),
                t.ndcg_ratio
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // 3. The headline cells: per regime, relevance, the hub's default and
    //    the tuned policies.
    let mut policies: Vec<(StudyPolicy, Regime, bool)> = Vec::new();
    for g in regimes {
        policies.push((StudyPolicy::Relevance, g, true));
        if !tuned
            .iter()
            .any(|t| t.regime == g && t.policy == HUB_DEFAULT)
        {
            policies.push((HUB_DEFAULT, g, false));
        }
        policies.extend(
            tuned
                .iter()
                .filter(|t| t.regime == g)
                .map(|t| (t.policy, g, t.within)),
        );
    }
    let jobs: Vec<(StudyPolicy, Regime)> = policies.iter().map(|(p, g, _)| (*p, *g)).collect();
    let outs = replicate(
        o,
        &jobs,
        o.seeds.max(1),
        o.visits_per_day,
        o.traffic,
        "headline",
    );
    let cells: Vec<Cell> = jobs
        .iter()
        .zip(&outs)
        .map(|(&(p, g), runs)| {
            let refs: Vec<&Outcome> = runs.iter().collect();
            let by_day = (0..o.days)
                .map(|d| mean_of(runs.iter().map(|r| r.days[d].viable_tail_share)))
                .collect();
            let survival = (0..o.days)
                .map(|a| mean_of(runs.iter().map(|r| r.entrant_survival[a])))
                .collect();
            let lorenz = (0..runs[0].lorenz_income.len())
                .map(|i| {
                    (
                        runs[0].lorenz_income[i].0,
                        mean_of(runs.iter().map(|r| r.lorenz_income[i].1)),
                    )
                })
                .collect();
            Cell {
                policy: p,
                regime: g,
                equal_relevance: policies.iter().any(|(q, r, ok)| *q == p && *r == g && *ok),
                figures: Figures::of(&refs),
                viable_tail_by_day: by_day,
                entrant_survival: survival,
                lorenz_income: lorenz,
            }
        })
        .collect();
    // 4. The grid: traffic x demand concentration.
    let grid_regime = Regime::Dedicated;
    let fair = tuned
        .iter()
        .find(|t| t.regime == grid_regime && matches!(t.policy, StudyPolicy::Fair { .. }))
        .map(|t| t.policy);
    let mut grid_policies = vec![StudyPolicy::Relevance, HUB_DEFAULT];
    grid_policies.extend(fair);
    let mut grid = Vec::new();
    for &c in &o.grid_concentration {
        for &t in &o.grid_traffic {
            let opts = StudyOptions {
                concentration: c,
                ..o.clone()
            };
            let jobs: Vec<(StudyPolicy, Regime)> =
                grid_policies.iter().map(|p| (*p, grid_regime)).collect();
            let vpd = o.grid_visits_per_day.min(t.max(1.0) as usize).max(1);
            let outs = replicate(
                &opts,
                &jobs,
                o.grid_seeds.max(1),
                vpd,
                t,
                &format!("grid traffic {t} concentration {c}"),
            );
            for ((p, _), runs) in jobs.iter().zip(&outs) {
                grid.push(GridPoint {
                    policy: *p,
                    traffic: t,
                    concentration: c,
                    tail_viable_share: estimate(
                        &runs.iter().map(|r| r.tail_viable_share).collect::<Vec<_>>(),
                    ),
                    viable_active_share: estimate(
                        &runs
                            .iter()
                            .map(|r| r.days.last().map_or(0.0, |d| d.viable_active_share))
                            .collect::<Vec<_>>(),
                    ),
                });
            }
        }
    }
    let world0 = World::sample(base, o, o.seed);
    let seconds = started.elapsed().as_secs_f64();
    let visits = visits.load(Ordering::Relaxed);
    StudyResult {
        options: o.clone(),
        coverage: base.coverage(),
        initial_tail_builders: world0.builders[..world0.initial_builders]
            .iter()
            .filter(|b| b.tail)
            .count(),
        entrants_per_world: (world0.models.len() - world0.initial_models) as f64,
        sweep,
        tuned,
        cells,
        grid_regime,
        grid,
        visits,
        seconds,
        visits_per_second: visits as f64 / seconds.max(1e-9),
        threads,
    }
}

fn knob(p: &SweepPoint) -> f64 {
    p.policy.knob().map_or(0.0, |(_, v)| v)
}

fn mean_of(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}
