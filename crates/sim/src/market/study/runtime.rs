//! How long the full study takes, extrapolated from one timed run of each
//! kind (docs/study.md, Run time).

use std::time::Instant;

use serde::Serialize;

use super::REGIMES;
use crate::market::sim::{run, Regime, RunSpec, StudyPolicy};
use crate::market::world::{Base, World};
use crate::market::StudyOptions;

/// The full study's run time, extrapolated from one timed run of each kind
/// (docs/study.md, Run time).
#[derive(Debug, Clone, Serialize)]
pub struct RunTimeEstimate {
    /// Per stage: its runs of each kind, seconds per run, seconds in all
    /// on one thread.
    pub stages: Vec<(String, usize, f64, f64)>,
    /// Threads the runs would share.
    pub threads: usize,
    /// Wall-clock seconds on them (runs spread evenly over the threads).
    pub seconds: f64,
}

/// Time one run of each kind the study is made of under `o` (a static
/// policy and FairCo at the headline's size, both again at the grid's, one
/// LP day), on one thread, and extrapolate to the design's run counts.
pub fn estimate_run_time(
    base: &Base,
    o: &StudyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> RunTimeEstimate {
    let world = World::sample(base, o, o.seed);
    let timed = |policy: StudyPolicy, visits_per_day: usize, traffic: f64| -> f64 {
        let spec = RunSpec {
            policy,
            regime: Regime::Either,
            behaviour_seed: o.seed + 1000,
            visits_per_day,
            traffic,
            feedback: true,
            days: o.horizon_days(),
            pilot_days: o.pilot_days,
        };
        let t = Instant::now();
        let _ = run(&world, o, &spec);
        let secs = t.elapsed().as_secs_f64();
        progress(&format!(
            "timed one run: {} at {visits_per_day} visits a day: {secs:.1} s",
            policy.label()
        ));
        secs
    };
    let fair = StudyPolicy::Fair { lambda: 1e-3 };
    let stat = timed(StudyPolicy::Relevance, o.visits_per_day, o.traffic);
    let dynm = timed(fair, o.visits_per_day, o.traffic);
    let gvis = o.grid_visits_per_day.max(1);
    let g_traffic = o.grid_traffic.iter().copied().fold(o.traffic, f64::max);
    let g_stat = timed(StudyPolicy::Relevance, gvis, g_traffic);
    let g_dyn = timed(fair, gvis, g_traffic);
    let lp = {
        let t = Instant::now();
        if o.upper_visits > 0 {
            let f = crate::market::upper::frontier(&world, o, o.traffic, o.upper_threshold_usd);
            progress(&format!(
                "timed the LP: {} columns, {} floors: {:.1} s",
                f.columns,
                f.points.len(),
                f.seconds
            ));
        }
        t.elapsed().as_secs_f64()
    };
    let regimes = REGIMES.len();
    let static_sweep = 1 + o.alphas.len() + o.betas.len();
    let dynamic_sweep = o.fair_lambdas.len() + o.impact_lambdas.len() + o.temperatures.len();
    let sweep_s = regimes * o.sweep_seeds.max(1);
    let seeds = o.seeds.max(1);
    let strategic = o.strategic_seeds.min(seeds);
    let cells = o.grid_markups.len().max(1) * o.grid_concentration.len() * o.grid_traffic.len();
    let retune = if o.grid_retune { 1 } else { 0 };
    let mut stages: Vec<(String, usize, f64, f64)> = vec![
        (
            "sweep, static policies".into(),
            static_sweep * sweep_s,
            stat,
            0.0,
        ),
        (
            "sweep, per-visit policies".into(),
            dynamic_sweep * sweep_s,
            dynm,
            0.0,
        ),
        // Relevance, the hub's default, tuned popularity and tail boost
        // (static); tuned fair, fair-impact and stochastic (per visit).
        ("headline, static".into(), regimes * 4 * seeds, stat, 0.0),
        ("headline, per-visit".into(), regimes * 3 * seeds, dynm, 0.0),
        (
            "strategic supply, static".into(),
            4 * 2 * strategic,
            stat,
            0.0,
        ),
        (
            "strategic supply, per-visit".into(),
            4 * strategic,
            dynm,
            0.0,
        ),
        ("upper bound LP".into(), 1, lp, 0.0),
        (
            "grid, static (and tuning's relevance)".into(),
            cells * (2 * o.grid_seeds.max(1) + retune * o.sweep_seeds.max(1)),
            g_stat,
            0.0,
        ),
        (
            "grid, per-visit (and fair's re-tuning)".into(),
            cells * (o.grid_seeds.max(1) + retune * o.fair_lambdas.len() * o.sweep_seeds.max(1)),
            g_dyn,
            0.0,
        ),
        (
            "sensitivity".into(),
            o.sensitivity_trajectories * (crate::market::sensitivity::factors().len() + 1),
            stat,
            0.0,
        ),
    ];
    for st in &mut stages {
        st.3 = st.1 as f64 * st.2;
    }
    let threads = if o.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        o.threads
    };
    let lp_total = lp;
    let parallel: f64 = stages.iter().map(|s| s.3).sum::<f64>() - lp_total;
    RunTimeEstimate {
        seconds: parallel / threads as f64 + lp_total,
        stages,
        threads,
    }
}
