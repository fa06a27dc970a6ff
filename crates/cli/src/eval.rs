//! `hubsearch eval`: run judged queries through the engine (or score an
//! external run file) and print `name value` lines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::{Mode, PolicyKind};
use hubsearch_eval::{harness, replay, trec, ReplayOptions};

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
    /// Ranking policy, or several separated by commas [default: the configured one]
    #[arg(long, value_delimiter = ',')]
    pub policy: Vec<PolicyKind>,
    /// Hits a user sees per search (and that receive exposure)
    #[arg(long, default_value_t = 10)]
    pub page: usize,
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
    if let Some(run_path) = &a.score_run {
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
        println!("queries {}", report.queries);
        for (k, v) in &report.means {
            println!("{k} {v:.4}");
        }
        if let Some(p) = &a.json {
            std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Each policy is replayed from an empty ledger that carries over between
    // repetitions.
    let config = load_config(g)?;
    let policies: Vec<PolicyKind> = if a.policy.is_empty() {
        vec![config.ranking.policy]
    } else {
        a.policy.clone()
    };
    let opts = ReplayOptions {
        mode: a.mode,
        repeat: a.repeat,
        page: a.page,
        depth: 100,
    };
    let mut reports = Vec::new();
    for &policy in &policies {
        eprintln!(
            "replaying {} queries x {} under {policy}...",
            queries.len(),
            a.repeat
        );
        reports.push(replay(&config, policy, &queries, &qrels, &opts)?);
    }
    if let Some(p) = &a.run_out {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        );
        for r in &reports {
            let tag = format!("hubsearch-{}-{}", a.mode, r.policy);
            trec::write_run(&mut f, &r.run, &tag, a.repeat > 1)?;
        }
    }
    println!("queries {}", queries.len());
    for r in &reports {
        for (k, v) in &r.means {
            if policies.len() == 1 {
                println!("{k} {v:.4}");
            } else {
                println!("{}.{k} {v:.4}", r.policy);
            }
        }
    }
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "queries": a.queries, "qrels": a.qrels, "mode": a.mode, "repeat": a.repeat, "page": a.page,
            "ranking": config.ranking, "policies": reports,
        });
        std::fs::write(p, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
