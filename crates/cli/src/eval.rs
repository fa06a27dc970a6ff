//! `hubsearch eval`: run judged queries through the engine (or score an
//! external run file) and print `name value` lines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::Mode;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_eval::{harness, trec, EvalOptions};

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Queries, `qid<TAB>text` per line
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Judgements, `qid 0 model_id grade` per line
    #[arg(long, value_name = "FILE")]
    pub qrels: PathBuf,
    /// Retrieval mode
    #[arg(long, default_value = "text")]
    pub mode: Mode,
    /// Ranking policy [default: the configured one]
    #[arg(long)]
    pub policy: Option<String>,
    /// Serve the query list this many times in sequence (the ledger carries over)
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Write the TREC run file here
    #[arg(long, value_name = "FILE")]
    pub run_out: Option<PathBuf>,
    /// Score this external TREC run file instead of searching
    #[arg(long, value_name = "FILE")]
    pub score_run: Option<PathBuf>,
    /// Also write per-query and mean figures as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

pub fn run(g: &Global, a: EvalArgs) -> Result<ExitCode, AnyError> {
    let queries = trec::read_queries(&a.queries)?;
    let qrels = trec::read_qrels(&a.qrels)?;
    let report = if let Some(run_path) = &a.score_run {
        let run = trec::read_run(run_path)?;
        let empty = Default::default();
        let mut report = hubsearch_eval::EvalReport {
            queries: queries.len(),
            ..Default::default()
        };
        for q in &queries {
            let ranked = run.get(&q.qid).cloned().unwrap_or_default();
            let s = harness::score(&ranked, qrels.get(&q.qid).unwrap_or(&empty));
            for (k, v) in &s {
                *report.means.entry(k.clone()).or_default() += v / queries.len() as f64;
            }
            report.per_query.insert(q.qid.clone(), s);
        }
        report
    } else {
        // A replay starts from an empty ledger that carries over between repetitions.
        let engine = Engine::open_with(load_config(g)?, LedgerMode::Ephemeral, false)?;
        let opts = EvalOptions {
            mode: a.mode,
            policy: a.policy.clone(),
            repeat: a.repeat,
            depth: 100,
        };
        let report = harness::evaluate(&engine, &queries, &qrels, &opts)?;
        if let Some(p) = &a.run_out {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            );
            let tag = format!("hubsearch-{:?}", a.mode).to_lowercase();
            trec::write_run(&mut f, &report.run, &tag, a.repeat > 1)?;
        }
        report
    };
    println!("queries {}", report.queries);
    for (k, v) in &report.means {
        println!("{k} {v:.4}");
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
