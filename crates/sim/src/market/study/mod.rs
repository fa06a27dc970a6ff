//! The whole study (docs/study.md, Design): knob sweeps, tuning to equal
//! relevance, the headline cells and the traffic x concentration grid.
//! Replications run in parallel (rayon), one world per seed shared by every
//! policy of that seed: common random numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::market::cache::{cached_frontier, cached_run, RunCache};
use crate::market::sim::{Outcome, Regime, RunSpec, StudyPolicy};
use crate::market::stats::estimate;
use crate::market::world::{Base, World};
use crate::market::StudyOptions;

mod results;
mod runtime;

pub use self::results::{
    Cell, Figures, GridPoint, Paired, PeriodEstimates, StudyResult, SupplyCell, SweepPoint, Tuned,
    Validation,
};
pub use self::runtime::{estimate_run_time, RunTimeEstimate};
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
    run_study_cached(base, o, None, progress)
}

/// Run the study, each run (and the upper bound) read from `cache` when it
/// has it and written to it when simulated (docs/study.md, The run cache).
/// The result is the same with or without the cache, but for the run-time
/// figures (`seconds`, `visits_per_second`, `stage_seconds`, `cached_runs`).
pub fn run_study_cached(
    base: &Base,
    o: &StudyOptions,
    cache: Option<&RunCache>,
    progress: &(dyn Fn(&str) + Sync),
) -> StudyResult {
    let threads = if o.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        o.threads
    };
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| study(base, o, cache, progress)),
        Err(_) => study(base, o, cache, progress),
    }
}

/// The hosting regimes of the sweeps and the headline cells.
pub const REGIMES: [Regime; 3] = [Regime::Serverless, Regime::Dedicated, Regime::Either];

/// A run to replicate: a policy under a hosting regime.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Job {
    policy: StudyPolicy,
    regime: Regime,
}

/// A batch of jobs, each replicated `seeds` times.
struct Batch<'b> {
    /// The options its worlds are sampled with.
    opts: &'b StudyOptions,
    jobs: &'b [Job],
    seeds: usize,
    /// Replication r: world seed `first_seed + r`, behaviour seed
    /// `first_seed + 1000 + r`.
    first_seed: u64,
    visits_per_day: usize,
    traffic: f64,
    /// Its name in the progress lines.
    what: &'b str,
}

/// Runs batches on the current pool (each run through the cache, when
/// there is one), counting runs and visits and telling progress.
struct Runner<'a> {
    base: &'a Base,
    o: &'a StudyOptions,
    cache: Option<&'a RunCache>,
    progress: &'a (dyn Fn(&str) + Sync),
    started: Instant,
    /// Visits of every run, and of the runs simulated (not cached).
    visits: AtomicU64,
    simulated_visits: AtomicU64,
    runs: AtomicU64,
    cached_runs: AtomicU64,
}

impl Runner<'_> {
    /// The run of job `job` in replication `r`.
    fn spec(&self, job: Job, r: usize, batch: &Batch) -> RunSpec {
        RunSpec {
            policy: job.policy,
            regime: job.regime,
            behaviour_seed: batch.first_seed + 1000 + r as u64,
            visits_per_day: batch.visits_per_day,
            traffic: batch.traffic,
            feedback: true,
            days: self.o.horizon_days(),
            pilot_days: self.o.pilot_days,
        }
    }

    /// The run of `spec` on the world of `world_seed` under `opts`: from
    /// the cache or simulated (and cached); counted. True if cached.
    fn run(&self, opts: &StudyOptions, world_seed: u64, spec: &RunSpec) -> (Outcome, bool) {
        let (out, cached) = cached_run(self.cache, self.base, opts, world_seed, spec);
        self.visits.fetch_add(out.visits, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
        if cached {
            self.cached_runs.fetch_add(1, Ordering::Relaxed);
        } else {
            self.simulated_visits
                .fetch_add(out.visits, Ordering::Relaxed);
        }
        (out, cached)
    }

    /// Runs every job for each replication, on that replication's world;
    /// per job, its outcomes over replications (in replication order).
    fn replicate(&self, batch: &Batch) -> Vec<Vec<Outcome>> {
        // Every (replication, job) pair is a task of its own (the pool
        // stays busy to the end); each samples its replication's world,
        // which is the same for every job of that replication (seeded),
        // unless its outcome is in the cache.
        let (done, from_cache) = (AtomicU64::new(0), AtomicU64::new(0));
        let (n, seeds, opts) = (batch.jobs.len(), batch.seeds, batch.opts);
        let mut flat: Vec<(usize, Outcome)> = (0..seeds * n)
            .into_par_iter()
            .map(|k| {
                let (r, j) = (k / n, k % n);
                let spec = self.spec(batch.jobs[j], r, batch);
                let (out, cached) = self.run(opts, batch.first_seed + r as u64, &spec);
                let c =
                    from_cache.fetch_add(u64::from(cached), Ordering::Relaxed) + u64::from(cached);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d as usize % n == 0 || d as usize == seeds * n {
                    let cache_note = if self.cache.is_some() {
                        format!(", {c} from the cache")
                    } else {
                        String::new()
                    };
                    (self.progress)(&format!(
                        "{}: {d} of {} runs{cache_note} ({:.0} s so far)",
                        batch.what,
                        seeds * n,
                        self.started.elapsed().as_secs_f64()
                    ));
                }
                (k, out)
            })
            .collect();
        flat.sort_by_key(|(k, _)| *k);
        let mut per_job: Vec<Vec<Outcome>> = (0..n).map(|_| Vec::with_capacity(seeds)).collect();
        for (k, out) in flat {
            per_job[k % n].push(out);
        }
        per_job
    }
}

fn study(
    base: &Base,
    o: &StudyOptions,
    cache: Option<&RunCache>,
    progress: &(dyn Fn(&str) + Sync),
) -> StudyResult {
    let runner = Runner {
        base,
        o,
        cache,
        progress,
        started: Instant::now(),
        visits: AtomicU64::new(0),
        simulated_visits: AtomicU64::new(0),
        runs: AtomicU64::new(0),
        cached_runs: AtomicU64::new(0),
    };
    let threads = rayon::current_num_threads();
    let mut stage_seconds: Vec<(String, f64)> = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str| {
        stage_seconds.push((name.to_string(), clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let sweep = sweep(&runner);
    lap("sweep");
    let tuned = tune(o, &sweep);
    progress(&format!(
        "tuned: {}",
        tuned
            .iter()
            .map(|t| format!("{} {}", t.regime.name(), t.policy.label()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let cells = headline(&runner, &tuned);
    lap("headline");
    let validation = validate(base, o, &cells);
    let supply = supply(&runner, &tuned);
    lap("strategic supply");
    let world0 = World::sample(base, o, o.seed);
    let upper = (o.upper_visits > 0).then(|| {
        progress(&format!(
            "upper bound: LP on a day of {} visits",
            o.upper_visits
        ));
        cached_frontier(cache, &world0, o, o.traffic, o.upper_threshold_usd)
    });
    lap("upper bound");
    let grid_regime = Regime::Either;
    let grid = grid(&runner, &tuned, grid_regime);
    lap("grid");
    let sensitivity = (o.sensitivity_trajectories > 0).then(|| {
        progress(&format!(
            "sensitivity: {} Morris trajectories",
            o.sensitivity_trajectories
        ));
        let screened = super::sensitivity::screen_with(
            o,
            o.sensitivity_trajectories,
            &|opts: &StudyOptions, world_seed: u64, spec: &RunSpec| {
                runner.run(opts, world_seed, spec).0
            },
        );
        progress(&format!(
            "sensitivity: done ({:.0} s so far)",
            runner.started.elapsed().as_secs_f64()
        ));
        screened
    });
    lap("sensitivity");
    let seconds = runner.started.elapsed().as_secs_f64();
    let visits = runner.visits.load(Ordering::Relaxed);
    let simulated_visits = runner.simulated_visits.load(Ordering::Relaxed);
    let entrants = &world0.models[world0.initial_models..];
    StudyResult {
        options: o.clone(),
        coverage: base.coverage(),
        initial_tail_builders: world0.builders[..world0.initial_builders]
            .iter()
            .filter(|b| b.tail)
            .count(),
        entrants_per_world: entrants.len() as f64,
        entrants_to_existing: entrants
            .iter()
            .filter(|m| (m.builder as usize) < world0.initial_builders)
            .count() as f64,
        sweep,
        tuned,
        cells,
        grid_regime,
        grid,
        supply,
        upper,
        validation,
        stage_seconds,
        sensitivity,
        visits,
        seconds,
        visits_per_second: simulated_visits as f64 / seconds.max(1e-9),
        threads,
        runs: runner.runs.load(Ordering::Relaxed),
        cached_runs: runner.cached_runs.load(Ordering::Relaxed),
    }
}

/// 1. The sweeps (and relevance), in each hosting regime, on the tuning
///    seeds (disjoint from the reported replications).
fn sweep(runner: &Runner) -> Vec<SweepPoint> {
    let o = runner.o;
    let mut jobs = Vec::new();
    for regime in REGIMES {
        jobs.push(Job {
            policy: StudyPolicy::Relevance,
            regime,
        });
        for f in families(o) {
            jobs.extend(f.into_iter().map(|policy| Job { policy, regime }));
        }
    }
    let outs = runner.replicate(&Batch {
        opts: o,
        jobs: &jobs,
        seeds: o.sweep_seeds.max(1),
        first_seed: o.seed + o.tune_seed_offset,
        visits_per_day: o.visits_per_day,
        traffic: o.traffic,
        what: "knob sweep (tuning seeds)",
    });
    jobs.iter()
        .zip(&outs)
        .map(|(job, outs)| SweepPoint {
            policy: job.policy,
            regime: job.regime,
            ndcg10: finite_mean(outs, |o| o.ndcg10),
            welfare: finite_mean(outs, |o| o.welfare),
            adoptions_per_visit: finite_mean(outs, |o| o.adoptions_per_visit),
            tail_viable_share: finite_mean(outs, |o| o.tail_viable_share),
            tail_exposure_share: finite_mean(outs, |o| o.tail_exposure_share),
        })
        .collect()
}

/// 2. Tune each family per regime to one one-sided target: the knob where
///    its welfare loss against relevance's first reaches `target_loss`,
///    interpolated along the family's sweep (knob 0 is relevance, loss 0).
fn tune(o: &StudyOptions, sweep: &[SweepPoint]) -> Vec<Tuned> {
    let mut tuned: Vec<Tuned> = Vec::new();
    for g in REGIMES {
        let reference = sweep
            .iter()
            .find(|s| s.regime == g && s.policy == StudyPolicy::Relevance)
            .map_or(f64::MIN_POSITIVE, |s| s.welfare.max(f64::MIN_POSITIVE));
        for f in families(o) {
            let mut points: Vec<(f64, f64)> = sweep
                .iter()
                .filter(|s| s.regime == g && f.contains(&s.policy))
                .map(|s| (knob(s), 1.0 - s.welfare / reference))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (k, between, binding) = interpolate_knob(&points, o.target_loss);
            tuned.push(Tuned {
                policy: f[0].with_knob(k),
                regime: g,
                between,
                binding,
            });
        }
    }
    tuned
}

/// Along `points` (knob, loss), sorted by knob, from (0, 0): the knob where
/// the loss first reaches `target`, linear in the knob from 0 and in its
/// logarithm between swept values; none reaching it, the largest knob.
pub fn interpolate_knob(points: &[(f64, f64)], target: f64) -> (f64, (f64, f64), bool) {
    let mut prev = (0.0, 0.0);
    for &(k, loss) in points {
        if loss > target {
            let frac = ((target - prev.1) / (loss - prev.1)).clamp(0.0, 1.0);
            let at = if prev.0 <= 0.0 {
                k * frac
            } else {
                prev.0 * (k / prev.0).powf(frac)
            };
            return (at, (prev.0, k), true);
        }
        prev = (k, loss);
    }
    (prev.0, (prev.0, prev.0), false)
}

/// 3. The headline cells on the reported replications: per regime,
///    relevance, the hub's default and the tuned policies.
fn headline(runner: &Runner, tuned: &[Tuned]) -> Vec<Cell> {
    let o = runner.o;
    let mut policies: Vec<(Job, bool)> = Vec::new();
    for regime in REGIMES {
        let job = |policy| Job { policy, regime };
        policies.push((job(StudyPolicy::Relevance), false));
        if !tuned
            .iter()
            .any(|t| t.regime == regime && t.policy == HUB_DEFAULT)
        {
            policies.push((job(HUB_DEFAULT), false));
        }
        policies.extend(
            tuned
                .iter()
                .filter(|t| t.regime == regime)
                .map(|t| (job(t.policy), true)),
        );
    }
    let jobs: Vec<Job> = policies.iter().map(|(job, _)| *job).collect();
    let outs = runner.replicate(&Batch {
        opts: o,
        jobs: &jobs,
        seeds: o.seeds.max(1),
        first_seed: o.seed,
        visits_per_day: o.visits_per_day,
        traffic: o.traffic,
        what: "headline",
    });
    policies
        .iter()
        .zip(&outs)
        .map(|(&(job, tuned), runs)| {
            let reference = jobs
                .iter()
                .position(|j| j.regime == job.regime && j.policy == StudyPolicy::Relevance)
                .map_or(runs, |i| &outs[i]);
            cell_of(o, job, tuned, runs, reference)
        })
        .collect()
}

/// The cell of `job`: its figures and curves over its replications `runs`.
fn cell_of(
    o: &StudyOptions,
    job: Job,
    tuned: bool,
    runs: &[Outcome],
    reference: &[Outcome],
) -> Cell {
    let refs: Vec<&Outcome> = runs.iter().collect();
    let days = o.horizon_days();
    let by_day = (0..days)
        .map(|d| mean_of(runs.iter().map(|r| r.days[d].viable_tail_share)))
        .collect();
    let survival = (0..days)
        .map(|a| mean_of(runs.iter().map(|r| r.entrant_survival[a])))
        .collect();
    // Replications differ in how many builders they end with, so their
    // curves have different points: each is read on one grid of population
    // shares before averaging.
    let lorenz = (0..=LORENZ_GRID)
        .map(|i| {
            let x = i as f64 / LORENZ_GRID as f64;
            (
                x,
                mean_of(runs.iter().map(|r| lorenz_at(&r.lorenz_income, x))),
            )
        })
        .collect();
    let n_periods = runs.iter().map(|r| r.periods.len()).min().unwrap_or(0);
    Cell {
        policy: job.policy,
        regime: job.regime,
        tuned,
        figures: Figures::of(&refs),
        periods: (0..n_periods)
            .map(|k| PeriodEstimates::of(runs, k))
            .collect(),
        vs_relevance: Paired::of(runs, reference),
        last_change: (n_periods >= 2).then(|| {
            let v = |r: &Outcome, k: usize| {
                r.periods[k]
                    .tail_viable
                    .first()
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            estimate(
                &runs
                    .iter()
                    .map(|r| v(r, n_periods - 1) - v(r, n_periods - 2))
                    .collect::<Vec<_>>(),
            )
        }),
        viable_tail_by_day: by_day,
        entrant_survival: survival,
        lorenz_income: lorenz,
    }
}

/// The validation target: the top 1% of models' share of 2022 downloads
/// (the index's models with a task) against their share of simulated calls
/// under the hub's default popularity ranking, `either` hosting.
fn validate(base: &Base, o: &StudyOptions, cells: &[Cell]) -> Option<Validation> {
    let downloads: Vec<f64> = base.models.iter().map(|m| m.downloads).collect();
    let target = hubsearch_rank::concentration::top_fraction_share(&downloads, 0.01);
    let cell = cells
        .iter()
        .find(|c| c.regime == Regime::Either && c.policy == HUB_DEFAULT)?;
    let simulated = cell.figures.top1pct_model_call_share;
    Some(Validation {
        target,
        simulated,
        policy: cell.policy,
        regime: cell.regime,
        tolerance: o.validation_tolerance,
        pass: simulated.mean.is_finite()
            && (simulated.mean - target).abs() <= o.validation_tolerance,
    })
}

/// The policies of the strategic comparison and the grid: relevance, the
/// hub's default and the tuned fair of `regime`.
fn compared(tuned: &[Tuned], regime: Regime) -> Vec<StudyPolicy> {
    let mut v = vec![StudyPolicy::Relevance, HUB_DEFAULT];
    v.extend(
        tuned
            .iter()
            .find(|t| t.regime == regime && matches!(t.policy, StudyPolicy::Fair { .. }))
            .map(|t| t.policy),
    );
    v
}

/// 4. Strategic against non-strategic supply (`either` hosting, the first
///    `strategic_seeds` reported seeds): fixed prices or repricing builders,
///    copying or profit-seeking entrants, each policy paired with itself
///    under fixed prices and copying entrants.
fn supply(runner: &Runner, tuned: &[Tuned]) -> Vec<SupplyCell> {
    let o = runner.o;
    if o.strategic_seeds == 0 {
        return Vec::new();
    }
    let regime = Regime::Either;
    let jobs: Vec<Job> = compared(tuned, regime)
        .into_iter()
        .map(|policy| Job { policy, regime })
        .collect();
    let variants = [(false, false), (true, false), (false, true), (true, true)];
    let mut runs: Vec<Vec<Vec<Outcome>>> = Vec::new();
    for &(repricing, seeking) in &variants {
        let opts = StudyOptions {
            reprice_days: if repricing {
                o.strategic_reprice_days
            } else {
                0
            },
            entry_seeking: if seeking {
                o.strategic_entry_seeking
            } else {
                o.entry_seeking
            },
            ..o.clone()
        };
        runs.push(runner.replicate(&Batch {
            opts: &opts,
            jobs: &jobs,
            seeds: o.strategic_seeds.min(o.seeds.max(1)),
            first_seed: o.seed,
            visits_per_day: o.visits_per_day,
            traffic: o.traffic,
            what: &format!("strategic supply (repricing {repricing}, seeking entrants {seeking})"),
        }));
    }
    let mut cells = Vec::new();
    for (v, &(repricing, seeking)) in variants.iter().enumerate() {
        for (j, job) in jobs.iter().enumerate() {
            let r = &runs[v][j];
            let n_periods = r.iter().map(|x| x.periods.len()).min().unwrap_or(0);
            if n_periods == 0 {
                continue;
            }
            cells.push(SupplyCell {
                policy: job.policy,
                regime,
                repricing,
                seeking_entrants: seeking,
                end: PeriodEstimates::of(r, n_periods - 1),
                welfare: estimate(&r.iter().map(|x| x.welfare).collect::<Vec<_>>()),
                ndcg10: estimate(&r.iter().map(|x| x.ndcg10).collect::<Vec<_>>()),
                vs_fixed: Paired::of(r, &runs[0][j]),
            });
        }
    }
    cells
}

/// 5. The grid: traffic x demand concentration x margin (the markup
///    prior's median), under `grid_regime`; fair re-tuned in every cell on
///    the tuning seeds (unless `grid_retune` is off).
fn grid(runner: &Runner, tuned: &[Tuned], grid_regime: Regime) -> Vec<GridPoint> {
    let o = runner.o;
    let headline_policies = compared(tuned, grid_regime);
    let mut grid = Vec::new();
    let markups = if o.grid_markups.is_empty() {
        vec![o.markup_median]
    } else {
        o.grid_markups.clone()
    };
    for &mk in &markups {
        for &c in &o.grid_concentration {
            for &t in &o.grid_traffic {
                let opts = StudyOptions {
                    concentration: c,
                    markup_median: mk,
                    ..o.clone()
                };
                let visits_per_day = o.grid_visits_per_day.min(t.max(1.0) as usize).max(1);
                let mut policies = headline_policies.clone();
                let mut tuned_here = false;
                if o.grid_retune && !o.fair_lambdas.is_empty() {
                    let mut jobs = vec![Job {
                        policy: StudyPolicy::Relevance,
                        regime: grid_regime,
                    }];
                    jobs.extend(o.fair_lambdas.iter().map(|&lambda| Job {
                        policy: StudyPolicy::Fair { lambda },
                        regime: grid_regime,
                    }));
                    let outs = runner.replicate(&Batch {
                        opts: &opts,
                        jobs: &jobs,
                        seeds: o.sweep_seeds.max(1),
                        first_seed: o.seed + o.tune_seed_offset,
                        visits_per_day,
                        traffic: t,
                        what: &format!("grid tuning: traffic {t} concentration {c} markup {mk}"),
                    });
                    let reference = finite_mean(&outs[0], |x| x.welfare).max(f64::MIN_POSITIVE);
                    let points: Vec<(f64, f64)> = o
                        .fair_lambdas
                        .iter()
                        .zip(&outs[1..])
                        .map(|(&l, r)| (l, 1.0 - finite_mean(r, |x| x.welfare) / reference))
                        .collect();
                    let mut points = points;
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let (k, _, _) = interpolate_knob(&points, o.target_loss);
                    policies.retain(|p| !matches!(p, StudyPolicy::Fair { .. }));
                    policies.push(StudyPolicy::Fair { lambda: k });
                    tuned_here = true;
                }
                let jobs: Vec<Job> = policies
                    .iter()
                    .map(|&policy| Job {
                        policy,
                        regime: grid_regime,
                    })
                    .collect();
                let outs = runner.replicate(&Batch {
                    opts: &opts,
                    jobs: &jobs,
                    seeds: o.grid_seeds.max(1),
                    first_seed: o.seed,
                    visits_per_day,
                    traffic: t,
                    what: &format!("grid traffic {t} concentration {c} markup {mk}"),
                });
                for (job, runs) in jobs.iter().zip(&outs) {
                    let last = |r: &Outcome| r.periods.last().cloned().unwrap_or_default();
                    let est = |g: &dyn Fn(&Outcome) -> f64| {
                        estimate(&runs.iter().map(g).collect::<Vec<_>>())
                    };
                    let paired = |g: &dyn Fn(&Outcome) -> f64| {
                        estimate(
                            &runs
                                .iter()
                                .zip(&outs[0])
                                .map(|(a, b)| g(a) - g(b))
                                .collect::<Vec<_>>(),
                        )
                    };
                    let thresholds = o.thresholds_usd.len();
                    grid.push(GridPoint {
                        policy: job.policy,
                        traffic: t,
                        concentration: c,
                        markup: mk,
                        tuned_here: tuned_here && matches!(job.policy, StudyPolicy::Fair { .. }),
                        welfare: est(&|r| r.welfare),
                        ndcg10: est(&|r| r.ndcg10),
                        welfare_ratio: estimate(
                            &runs
                                .iter()
                                .zip(&outs[0])
                                .map(|(a, b)| a.welfare / b.welfare - 1.0)
                                .collect::<Vec<_>>(),
                        ),
                        tail_viable: (0..thresholds)
                            .map(|k| {
                                est(&|r| last(r).tail_viable.get(k).copied().unwrap_or(f64::NAN))
                            })
                            .collect(),
                        tail_covers_dedicated: est(&|r| last(r).tail_covers_dedicated),
                        viable_active_share: est(&|r| last(r).viable_active_share),
                        vs_relevance: paired(&|r| r.tail_viable_share),
                    });
                }
            }
        }
    }
    grid
}

/// Mean of `g` over `xs`, its non-finite values left out (0 when none).
fn finite_mean(xs: &[Outcome], g: fn(&Outcome) -> f64) -> f64 {
    let v: Vec<f64> = xs.iter().map(g).filter(|x| x.is_finite()).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn knob(p: &SweepPoint) -> f64 {
    p.policy.knob().map_or(0.0, |(_, v)| v)
}

/// Points of the averaged Lorenz curve, past its origin.
const LORENZ_GRID: usize = 50;

/// A Lorenz curve's income share at population share `x`, linear between
/// its points (a curve runs from (0, 0) to (1, 1)).
fn lorenz_at(curve: &[(f64, f64)], x: f64) -> f64 {
    let Some(j) = curve.iter().position(|p| p.0 >= x) else {
        return curve.last().map_or(f64::NAN, |p| p.1);
    };
    if j == 0 {
        return curve[0].1;
    }
    let ((x0, y0), (x1, y1)) = (curve[j - 1], curve[j]);
    if x1 <= x0 {
        y1
    } else {
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

fn mean_of(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tuned knob: where the loss first crosses the target, by the
    /// straight line from knob 0 or the log-linear one between swept values;
    /// a later dip below the target does not count (one-sided, first crossing).
    #[test]
    fn the_knob_is_interpolated_at_the_first_crossing() {
        // From 0: loss 0.04 at knob 0.1, target 0.02: half-way, 0.05.
        let (k, between, binding) = interpolate_knob(&[(0.1, 0.04), (1.0, 0.01)], 0.02);
        assert!((k - 0.05).abs() < 1e-12 && binding && between == (0.0, 0.1));
        // Between 0.01 (loss 0.01) and 1 (loss 0.03): log-midpoint 0.1.
        let (k, between, _) = interpolate_knob(&[(0.01, 0.01), (1.0, 0.03), (10.0, 0.0)], 0.02);
        assert!((k - 0.1).abs() < 1e-12, "{k}");
        assert_eq!(between, (0.01, 1.0));
        // Never crossing: the largest knob, not binding.
        let (k, _, binding) = interpolate_knob(&[(0.1, -0.05), (1.0, 0.01)], 0.02);
        assert_eq!((k, binding), (1.0, false));
    }

    /// Curves of different lengths are read on one grid: at their own
    /// points they give their own shares, between them the straight line.
    #[test]
    fn lorenz_curves_of_any_length_read_on_one_grid() {
        let a = hubsearch_rank::lorenz(&[1.0, 1.0, 2.0, 4.0], 50);
        let b = hubsearch_rank::lorenz(&[0.0, 3.0, 5.0], 50);
        assert_ne!(a.len(), b.len());
        for c in [&a, &b] {
            for &(x, y) in c {
                assert!((lorenz_at(c, x) - y).abs() < 1e-12);
            }
            assert_eq!(lorenz_at(c, 0.0), 0.0);
            assert!((lorenz_at(c, 1.0) - 1.0).abs() < 1e-12);
        }
        // Halfway between (0.25, 0.125) and (0.5, 0.25) of `a`.
        assert!((lorenz_at(&a, 0.375) - 0.1875).abs() < 1e-12);
    }
}
