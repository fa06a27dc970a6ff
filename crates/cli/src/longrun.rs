//! `hubsearch longrun`: a million pages or more of mixed real-corpus
//! traffic under each policy (docs/ranking.md, Long run), written as
//! REPORT.md, SVG plots and longrun.json. The run and the report are
//! `hubsearch_sim::longrun`'s; this parses the flags and writes the files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::{Mode, PolicyKind};
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_eval::trec;
use hubsearch_sim::longrun::{long_run, report, LongRunOptions};

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct LongRunArgs {
    /// A judged set: a directory with queries.tsv and qrels.txt (repeat)
    #[arg(long = "set", value_name = "DIR", required = true)]
    pub sets: Vec<PathBuf>,
    /// Pages served per policy
    #[arg(long, default_value_t = 1_000_000)]
    pub pages: usize,
    /// Measurement windows
    #[arg(long, default_value_t = 20)]
    pub windows: usize,
    /// Policies, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relevance,popularity,stochastic,fair,fair_impact"
    )]
    pub policy: Vec<PolicyKind>,
    /// Retrieval mode
    #[arg(long, default_value = "hybrid")]
    pub mode: Mode,
    /// Generated queries from the most downloaded cards
    #[arg(long, default_value_t = 2000)]
    pub generated: usize,
    /// Zipf exponent of the query repeat distribution
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Random seed (traffic and stochastic draws)
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Directory for REPORT.md, the SVG plots and longrun.json
    #[arg(long, default_value = "eval/studies/longrun")]
    pub out: PathBuf,
    /// 20,000 pages, 200 generated queries, 5 windows (CI: under a minute)
    #[arg(long)]
    pub quick: bool,
}

pub fn run(g: &Global, a: LongRunArgs) -> Result<ExitCode, AnyError> {
    let started = std::time::Instant::now();
    let mut o = LongRunOptions {
        pages: a.pages,
        windows: a.windows,
        policies: a.policy.clone(),
        mode: a.mode,
        generated: a.generated,
        zipf: a.zipf,
        seed: a.seed,
        ..Default::default()
    };
    if a.quick {
        o.pages = 20_000;
        o.generated = 200;
        o.windows = 5;
    }
    if o.pages == 0 || o.windows == 0 {
        return Err("--pages and --windows must be at least 1".into());
    }
    if !(o.zipf.is_finite() && o.zipf >= 0.0) {
        return Err("--zipf must be a finite number >= 0".into());
    }
    let mut sets = Vec::new();
    for dir in &a.sets {
        sets.push((
            trec::read_queries(&dir.join("queries.tsv"))?,
            trec::read_qrels(&dir.join("qrels.txt"))?,
        ));
    }
    let engine = Engine::open_with(load_config(g)?, LedgerMode::Ephemeral, false)?;
    let log = |m: &str| eprintln!("[{:>7.1}s] {m}", started.elapsed().as_secs_f64());
    let r = long_run(&engine, &sets, &o, &log)?;
    let seconds = started.elapsed().as_secs_f64();
    let command = std::env::args()
        .skip(1)
        .fold("hubsearch".to_string(), |s, a| s + " " + &a);
    let (md, plots) = report(&r, &command, seconds);
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("REPORT.md"), md)?;
    for (name, svg) in plots {
        std::fs::write(a.out.join(name), svg)?;
    }
    std::fs::write(
        a.out.join("longrun.json"),
        serde_json::to_string_pretty(&r)? + "\n",
    )?;
    eprintln!("wrote {} in {seconds:.0}s", a.out.display());
    Ok(ExitCode::SUCCESS)
}
