//! `hubsearch eval`: run judged queries through the engine (or score an
//! external run file) and print `name value` lines.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::{Mode, PolicyKind};
use hubsearch_eval::exposure::{ExpevalOptions, UserModel};
use hubsearch_eval::{harness, replay, trec, CallModel, PolicyReport, ReplayOptions};

use crate::cli::{load_config, AnyError, Global};

/// expeval's user models.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum EeModel {
    Rbp,
    Gerr,
}

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
    /// Write one TREC run per policy to PREFIX.POLICY.run (the first
    /// repetition), and with --repeat > 1 every repetition to
    /// PREFIX.POLICY.samples (expeval's format, the repetition in column 2)
    #[arg(long, value_name = "PREFIX")]
    pub run_out: Option<PathBuf>,
    /// Count queries without any judgment towards the means (as 0)
    #[arg(long)]
    pub count_unjudged: bool,
    /// Expected exposure's user model (expeval's -u): rbp or gerr
    #[arg(long, default_value = "rbp")]
    pub ee_model: EeModel,
    /// Expected exposure's patience (expeval's -p)
    #[arg(long, default_value_t = 0.5)]
    pub ee_patience: f64,
    /// Expected exposure's utility for gerr (expeval's -r)
    #[arg(long, default_value_t = 0.5)]
    pub ee_utility: f64,
    /// Judgments are complete: grade-0 models get a target (expeval's -C)
    #[arg(long)]
    pub ee_complete: bool,
    /// Simulate paid calls with this seed: after each replayed page, a user
    /// examines rank j with the attention model's weight and calls an
    /// examined hit with probability 0.05, 0.5, 0.9 by judged grade 0, 1, 2
    /// (unjudged: 0); the calls are booked as POST /v1/calls books them, so
    /// fair_impact has impact to act on (docs/metrics.md, Simulated calls)
    #[arg(long, value_name = "SEED")]
    pub calls: Option<u64>,
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
        return score_run(&a, run_path, &queries, &qrels);
    }
    // Each policy is replayed from an empty ledger that carries over between
    // repetitions.
    let config = load_config(g)?;
    let policies: Vec<PolicyKind> = if a.policy.is_empty() {
        vec![config.ranking.policy]
    } else {
        a.policy.clone()
    };
    let opts = replay_options(&a);
    let mut reports = Vec::new();
    for &policy in &policies {
        eprintln!(
            "replaying {} queries x {} under {policy}...",
            queries.len(),
            a.repeat
        );
        reports.push(replay(&config, policy, &queries, &qrels, &opts)?);
    }
    if let Some(prefix) = &a.run_out {
        write_runs(&a, prefix, &reports)?;
    }
    println!(
        "queries {} (judged {})",
        queries.len(),
        reports.first().map_or(0, |r| r.judged_queries)
    );
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
        let mut doc = serde_json::json!({
            "queries": a.queries, "qrels": a.qrels, "mode": a.mode, "repeat": a.repeat, "page": a.page,
            "ranking": config.ranking, "policies": reports,
        });
        // Only with --calls, so a replay without it writes what it wrote
        // before the option existed.
        if let Some(m) = &opts.calls {
            doc["calls"] = serde_json::json!({
                "seed": m.seed, "call_probability_by_grade": m.probability,
                "examination": config.ranking.attention,
            });
        }
        std::fs::write(p, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--score-run`: score an external TREC run as trec_eval does (ordered by
/// score; queries without judgments, or missing from the run, count only
/// when asked).
fn score_run(
    a: &EvalArgs,
    run_path: &Path,
    queries: &[trec::Query],
    qrels: &trec::Qrels,
) -> Result<ExitCode, AnyError> {
    let run = trec::read_run(run_path)?;
    let empty = Default::default();
    let mut report = hubsearch_eval::EvalReport::default();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for q in queries {
        let judged = qrels.get(&q.qid).filter(|j| !j.is_empty());
        let ranked = run.get(&q.qid);
        if !a.count_unjudged && (judged.is_none() || ranked.is_none()) {
            continue;
        }
        let ranked = ranked.cloned().unwrap_or_default();
        let s = harness::score(&ranked, judged.unwrap_or(&empty));
        for (k, v) in &s {
            *sums.entry(k.clone()).or_default() += v;
        }
        report.queries += 1;
        report.per_query.insert(q.qid.clone(), s);
    }
    report.means = sums
        .into_iter()
        .map(|(k, v)| (k, v / report.queries.max(1) as f64))
        .collect();
    println!("queries {}", report.queries);
    for (k, v) in &report.means {
        println!("{k} {v:.4}");
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the replay reads from the flags.
fn replay_options(a: &EvalArgs) -> ReplayOptions {
    ReplayOptions {
        mode: a.mode,
        repeat: a.repeat,
        page: a.page,
        depth: 100,
        expeval: ExpevalOptions {
            model: match a.ee_model {
                EeModel::Rbp => UserModel::Rbp {
                    patience: a.ee_patience,
                },
                EeModel::Gerr => UserModel::Gerr {
                    patience: a.ee_patience,
                    utility: a.ee_utility,
                },
            },
            complete: a.ee_complete,
            binarize: false,
        },
        count_unjudged: a.count_unjudged,
        calls: a.calls.map(CallModel::new),
    }
}

/// `--run-out PREFIX`: each policy's run as `PREFIX.<policy>.run`, and its
/// per-repetition samples as `.samples` when repeated.
fn write_runs(a: &EvalArgs, prefix: &Path, reports: &[PolicyReport]) -> Result<(), AnyError> {
    for r in reports {
        let tag = format!("hubsearch-{}-{}", a.mode, r.policy);
        let path = |ext: &str| PathBuf::from(format!("{}.{}.{ext}", prefix.display(), r.policy));
        let create = |p: &PathBuf| -> Result<std::io::BufWriter<std::fs::File>, AnyError> {
            Ok(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            ))
        };
        let mut f = create(&path("run"))?;
        trec::write_run(&mut f, &r.run, &tag)?;
        f.flush()?;
        if a.repeat > 1 {
            let mut f = create(&path("samples"))?;
            trec::write_samples(&mut f, &r.run, &tag)?;
            f.flush()?;
        }
    }
    Ok(())
}
