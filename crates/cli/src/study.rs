//! `hubsearch study`: the pay-per-call study (docs/study.md), written as
//! REPORT.md with a JSON file of every figure and SVG plots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_sim::market::report::{report, write_plots};
use hubsearch_sim::market::{
    estimate_run_time, run_study_cached, Base, RunCache, StudyOptions, StudyResult,
};

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct StudyArgs {
    /// Output directory (REPORT.md, study.json, *.svg)
    #[arg(long, default_value = "eval/studies/pay-per-call")]
    pub out: PathBuf,
    /// The CI preset: 3 periods of 45 days, 1,000 visits a day, 3 replications
    #[arg(long)]
    pub quick: bool,
    /// Replications per headline cell [default: 20; quick: 3]
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Tuning replications per knob value of the sweeps, on seeds disjoint
    /// from the reported ones [default: 3; quick: 1]
    #[arg(long)]
    pub sweep_seeds: Option<usize>,
    /// Days of one reported period [default: 365; quick: 45]
    #[arg(long)]
    pub days: Option<usize>,
    /// Periods simulated, figures at the end of each [default: 3]
    #[arg(long)]
    pub years: Option<usize>,
    /// Morris trajectories of the sensitivity screening of the priors
    /// (0: none; each is 10 runs) [default: 0]
    #[arg(long)]
    pub sensitivity: Option<usize>,
    /// Days of the warm-start pilot (0: a cold start) [default: 90; quick: 20]
    #[arg(long)]
    pub pilot_days: Option<usize>,
    /// Simulated visits per day [default: 10000; quick: 1000]
    #[arg(long)]
    pub visits_per_day: Option<usize>,
    /// Real visits per day the simulated ones stand for [default: 10000]
    #[arg(long)]
    pub traffic: Option<f64>,
    /// Replications of the strategic-supply comparison (repricing builders,
    /// profit-seeking entrants; 0: none) [default: 10; quick: 2]
    #[arg(long)]
    pub strategic_seeds: Option<usize>,
    /// Replications per cell of the traffic x concentration x margin grid
    /// [default: 10; quick: 2]
    #[arg(long)]
    pub grid_seeds: Option<usize>,
    /// Simulated visits of the day the upper bound's LP shares out (0: no
    /// bound) [default: 10000; quick: 300]
    #[arg(long)]
    pub upper_visits: Option<usize>,
    /// Time one run of each kind (one thread each) and print the whole
    /// study's estimated run time under these options; runs nothing else
    #[arg(long)]
    pub estimate: bool,
    /// First seed (replication r: world seed + r, behaviour seed + 1000 + r;
    /// tuning replications from seed + 500)
    #[arg(long)]
    pub seed: Option<u64>,
    /// The run cache: every finished run's outcome, keyed by the code, the
    /// index's worlds, the options and the run; the same command run again
    /// reads the runs it finished (a stopped study resumes; docs/study.md,
    /// The run cache). Git-ignored wherever it is
    #[arg(long, default_value = "target/study-cache")]
    pub cache: PathBuf,
    /// Neither read nor write the run cache
    #[arg(long)]
    pub no_cache: bool,
}

pub fn run(g: &Global, a: StudyArgs) -> Result<ExitCode, AnyError> {
    let config = load_config(g)?;
    let o = options(&a)?;
    let start = std::time::Instant::now();
    let log = |m: &str| eprintln!("[{:>7.1}s] {m}", start.elapsed().as_secs_f64());
    let engine = Engine::open_with(config.clone(), LedgerMode::Ephemeral, false)?;
    let base = Base::from_engine(&engine, &o, &log)?;
    let cov = base.coverage();
    log(&format!(
        "world: {} models with a task ({} reachable, {} by a need), {} builders, {} query types ({} names)",
        cov.models_with_task,
        cov.models_covered,
        cov.models_covered_by_needs,
        cov.builders,
        cov.query_types,
        cov.name_types
    ));
    if base.types.is_empty() {
        return Err("the index has no model with a task: nothing to search for".into());
    }
    if a.estimate {
        print_estimate(&base, &o, &log);
        return Ok(ExitCode::SUCCESS);
    }
    let cache = open_cache(&a, &base, &log)?;
    let result = run_study_cached(&base, &o, cache.as_ref(), &log);
    if let Some(c) = &cache {
        let n = c.counts();
        log(&format!(
            "run cache: {} runs read, {} simulated and written{}",
            n.read,
            n.written,
            if n.failed > 0 {
                format!(", {} writes failed", n.failed)
            } else {
                String::new()
            }
        ));
    }
    write_outputs(&a, &config.index.dir, &result)?;
    log(&format!(
        "{} visits in {:.0} s ({:.0} visits/s on {} threads); wrote {}/{{REPORT.md,study.json,*.svg}}",
        result.visits,
        result.seconds,
        result.visits_per_second,
        result.threads,
        a.out.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// The study's options: the preset (`--quick` or the full run) with the
/// flags given on top, checked.
fn options(a: &StudyArgs) -> Result<StudyOptions, AnyError> {
    let mut o = if a.quick {
        StudyOptions::quick()
    } else {
        StudyOptions::default()
    };
    if let Some(s) = a.seeds {
        o.seeds = s.max(1);
    }
    if let Some(s) = a.sweep_seeds {
        o.sweep_seeds = s.max(1);
    }
    if let Some(d) = a.days {
        if d < 31 {
            return Err("--days must be at least 31 (profits are judged over 30 days)".into());
        }
        o.days = d;
    }
    if let Some(y) = a.years {
        o.years = y.max(1);
    }
    if let Some(t) = a.sensitivity {
        o.sensitivity_trajectories = t;
    }
    if let Some(n) = a.strategic_seeds {
        o.strategic_seeds = n;
    }
    if let Some(n) = a.grid_seeds {
        o.grid_seeds = n.max(1);
    }
    if let Some(n) = a.upper_visits {
        o.upper_visits = n;
    }
    if let Some(p) = a.pilot_days {
        o.pilot_days = p;
    }
    if o.seeds as u64 > o.tune_seed_offset {
        return Err("--seeds must be at most 500 (tuning replications start at seed + 500)".into());
    }
    if let Some(v) = a.visits_per_day {
        o.visits_per_day = v.max(1);
    }
    if let Some(t) = a.traffic {
        if !(t.is_finite() && t > 0.0) {
            return Err("--traffic must be a positive number of visits per day".into());
        }
        o.traffic = t;
    }
    if let Some(s) = a.seed {
        o.seed = s;
    }
    Ok(o)
}

/// `--estimate`: time one run of each kind and print the whole study's
/// estimated run time.
fn print_estimate(base: &Base, o: &StudyOptions, log: &(dyn Fn(&str) + Sync)) {
    let e = estimate_run_time(base, o, log);
    for (stage, runs, per, total) in &e.stages {
        println!("{stage}: {runs} runs x {per:.1} s = {total:.0} s");
    }
    println!(
        "estimated run time on {} threads: {:.0} s ({:.1} h)",
        e.threads,
        e.seconds,
        e.seconds / 3600.0
    );
}

/// The run cache at `--cache` for this index's worlds (`None` with
/// `--no-cache`).
fn open_cache(
    a: &StudyArgs,
    base: &Base,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Option<RunCache>, AnyError> {
    if a.no_cache {
        return Ok(None);
    }
    let c = RunCache::open(&a.cache, base)
        .map_err(|e| format!("the run cache {}: {e}", a.cache.display()))?;
    log(&format!(
        "run cache: {} (code {}, worlds {})",
        a.cache.display(),
        &hubsearch_sim::market::cache::SOURCE[..12],
        &c.base()[..12]
    ));
    Ok(Some(c))
}

/// Write study.json, the plots and REPORT.md into `--out`.
fn write_outputs(a: &StudyArgs, index: &Path, result: &StudyResult) -> Result<(), AnyError> {
    std::fs::create_dir_all(&a.out)?;
    let rev = crate::cli::git_revision();
    let doc = serde_json::json!({
        "git_revision": rev,
        "index": index,
        "quick": a.quick,
        "study": result,
    });
    std::fs::write(
        a.out.join("study.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    write_plots(result, &a.out)?;
    let command = if a.quick {
        "hubsearch study --quick"
    } else {
        "hubsearch study"
    };
    std::fs::write(
        a.out.join("REPORT.md"),
        report(result, &rev, index, command),
    )?;
    Ok(())
}
