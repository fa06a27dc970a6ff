//! `hubsearch calibrate`: fit merit's logistic model (docs/ranking.md,
//! Merit) on judged query sets, cross-fitted: fit on each set, check the
//! calibration on each other set, then fit on all of them (the constants
//! to put in `[ranking.merit_<mode>]`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::config::MeritCalibration;
use hubsearch_core::Mode;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_eval::calibrate::{calibration, collect, fit, Calibration, Coverage, Sample};
use hubsearch_eval::trec;
use serde::Serialize;

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// A judged set: a directory with queries.tsv and qrels.txt (repeat)
    #[arg(long = "set", value_name = "DIR", required = true)]
    pub sets: Vec<PathBuf>,
    /// Retrieval mode
    #[arg(long, default_value = "hybrid")]
    pub mode: Mode,
    /// Also write the fits and calibration figures as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Serialize)]
struct SetReport {
    set: String,
    coverage: Coverage,
    /// `[intercept, text, cosine, ln(rank), named, breadth]` fitted on this set.
    fit: Option<[f64; 6]>,
    /// The calibration of this set's fit on itself and on each other set.
    checks: Vec<(String, Calibration)>,
}

#[derive(Serialize)]
struct Report {
    mode: Mode,
    merit_depth: usize,
    candidates: usize,
    sets: Vec<SetReport>,
    /// Fitted on all sets: the constants for the config.
    pooled: Option<[f64; 6]>,
    pooled_checks: Vec<(String, Calibration)>,
}

pub fn run(g: &Global, a: CalibrateArgs) -> Result<ExitCode, AnyError> {
    let config = load_config(g)?;
    let merit_depth = config.ranking.merit_depth;
    let candidates = config.search.candidates;
    let engine = Engine::open_with(config, LedgerMode::Ephemeral, false)?;
    let mut data: Vec<(String, Vec<Sample>, Coverage)> = Vec::new();
    for dir in &a.sets {
        let queries = trec::read_queries(&dir.join("queries.tsv"))?;
        let qrels = trec::read_qrels(&dir.join("qrels.txt"))?;
        let (samples, cov) = collect(&engine, &queries, &qrels, a.mode, merit_depth)?;
        let name = dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
        data.push((name, samples, cov));
    }
    let mut sets = Vec::new();
    for (name, samples, cov) in &data {
        let b = fit(samples);
        let checks = match b {
            Some(b) => data
                .iter()
                .map(|(n, s, _)| (n.clone(), calibration(s, &b)))
                .collect(),
            None => Vec::new(),
        };
        sets.push(SetReport {
            set: name.clone(),
            coverage: cov.clone(),
            fit: b,
            checks,
        });
    }
    let all: Vec<Sample> = data
        .iter()
        .flat_map(|(_, s, _)| s.iter().copied())
        .collect();
    let pooled = fit(&all);
    let pooled_checks = match pooled {
        Some(b) => data
            .iter()
            .map(|(n, s, _)| (n.clone(), calibration(s, &b)))
            .collect(),
        None => Vec::new(),
    };
    let report = Report {
        mode: a.mode,
        merit_depth,
        candidates,
        sets,
        pooled,
        pooled_checks,
    };
    print(&report);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(if report.pooled.is_some() {
        ExitCode::SUCCESS
    } else {
        eprintln!("no fit: the sets' candidates need both relevant and other cards");
        ExitCode::FAILURE
    })
}

fn print(r: &Report) {
    let coef = |b: &[f64; 6]| {
        b.iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "mode {}, candidates {}, merit_depth {}",
        r.mode.as_str(),
        r.candidates,
        r.merit_depth
    );
    println!("coefficients: [intercept, text, cosine, ln(rank), named, breadth]");
    let line = |on: &str, c: &Calibration| {
        println!(
            "  on {on:<12} n {:>6} rate {:.4} mean_p {:.4} ECE {:.4} Brier {:.4} log-loss {:.4}",
            c.samples, c.rate, c.mean_p, c.ece, c.brier, c.log_loss
        );
    };
    for s in &r.sets {
        let c = &s.coverage;
        println!(
            "fit on {}: {} queries, {} relevant, {} retrieved within depth, {} deeper",
            s.set, c.queries, c.relevant, c.within_depth, c.beyond_depth
        );
        match &s.fit {
            Some(b) => println!("  [{}]", coef(b)),
            None => println!("  no fit"),
        }
        for (on, c) in &s.checks {
            line(on, c);
        }
    }
    if let Some(b) = &r.pooled {
        println!("fit on all sets: [{}]", coef(b));
        for (on, c) in &r.pooled_checks {
            line(on, c);
        }
        let m = MeritCalibration::from_slice(b);
        println!(
            "\n[ranking.merit_{}]\nintercept = {:.4}\ntext = {:.4}\ncosine = {:.4}\nlog_rank = {:.4}\nnamed = {:.4}\nbreadth = {:.4}",
            r.mode.as_str(),
            m.intercept,
            m.text,
            m.cosine,
            m.log_rank,
            m.named,
            m.breadth
        );
    }
}
