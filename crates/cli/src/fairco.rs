//! `hubsearch fairco`: FairCo's synthetic news experiment (docs/ranking.md,
//! Convergence), written as a Markdown report with SVG plots. The
//! experiment and the report are `hubsearch_sim::fairco`'s; this parses the
//! flags and writes the files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_sim::fairco::report::{news_report, ReportOptions};

use crate::cli::AnyError;

#[derive(Args, Debug)]
pub struct FaircoArgs {
    /// Directory for fairco.md, fairco-unfairness.svg and fairco-utility.svg
    #[arg(long, default_value = "eval/reports")]
    pub out: PathBuf,
    /// Users (rounds) per trial
    #[arg(long, default_value_t = 10_000)]
    pub rounds: usize,
    /// Independent trials, averaged
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Random seed
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// lambda of FairCo in the curves (the reference code's default)
    #[arg(long, default_value_t = 0.01)]
    pub lambda: f64,
    /// lambda of the bounded controller in the curves
    #[arg(long, default_value_t = 1.0)]
    pub bounded_lambda: f64,
    /// lambdas of the sweep, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.0001,0.001,0.01,0.1,1,10"
    )]
    pub lambdas: Vec<f64>,
    /// 1,000 rounds, 2 trials (CI)
    #[arg(long)]
    pub quick: bool,
}

pub fn run(a: FaircoArgs) -> Result<ExitCode, AnyError> {
    let o = ReportOptions {
        rounds: a.rounds,
        trials: a.trials,
        seed: a.seed,
        lambda: a.lambda,
        bounded_lambda: a.bounded_lambda,
        lambdas: a.lambdas,
        quick: a.quick,
    };
    let start = std::time::Instant::now();
    let log = |m: &str| eprintln!("[{:>6.1}s] {m}", start.elapsed().as_secs_f64());
    let report = news_report(&o, &log);
    std::fs::create_dir_all(&a.out)?;
    for p in &report.plots {
        std::fs::write(a.out.join(p.file), &p.svg)?;
    }
    std::fs::write(a.out.join("fairco.md"), &report.markdown)?;
    print!("{}", report.markdown);
    Ok(ExitCode::SUCCESS)
}
