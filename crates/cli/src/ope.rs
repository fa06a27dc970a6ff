//! `hubsearch ope`: off-policy estimates of a target policy's paid calls per
//! page from a ledger export (docs/metrics.md, Off-policy estimates), or,
//! with `--coverage N`, the estimators' 95% interval coverage on N
//! simulated logs whose truth is known.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use hubsearch_eval::offpolicy::{estimate, parse_target, Estimator, Options, Report};
use hubsearch_eval::ope_sim::{coverage, SimConfig};
use hubsearch_ledger::PageLog;
use hubsearch_rank::plackett_luce::Sampling;

use crate::cli::AnyError;
use crate::groups::{csv_columns, csv_records};

#[derive(Args, Debug)]
pub struct OpeArgs {
    /// A `hubsearch ledger export` directory (its pages.jsonl and
    /// calls.csv), or its pages.jsonl (calls.csv read beside it)
    #[arg(long, required_unless_present = "coverage")]
    log: Option<PathBuf>,
    /// The target policy: relevance, popularity[:alpha], tail_boost[:beta],
    /// stochastic[:temperature] (parameters default to the ranking config's
    /// defaults; `fair*` cannot be evaluated from a log)
    #[arg(long, default_value = "tail_boost:2")]
    target: String,
    /// Clip every importance weight at C
    #[arg(long)]
    clip: Option<f64>,
    /// ips, snips, dr or all
    #[arg(long, default_value = "all")]
    estimator: String,
    /// Relative 95% half-width at which sampled logging placement
    /// probabilities (ranks 3 and deeper) stop
    #[arg(long, default_value_t = 0.05)]
    tolerance: f64,
    /// Instead of a log: run N simulated logs with a known truth and print
    /// each estimator's interval coverage, mean width, bias and RMSE
    #[arg(long, value_name = "SEEDS")]
    coverage: Option<u64>,
    /// Instead of estimates: the bytes a page of the log costs, before and
    /// after the binary encoding (ledger row and cluster page event)
    #[arg(long, requires = "log")]
    sizes: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: OpeArgs) -> Result<ExitCode, AnyError> {
    if args.sizes {
        let log = args.log.as_deref().ok_or("--sizes needs --log")?;
        let dir = if log.is_dir() {
            log.to_path_buf()
        } else {
            log.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        println!("{}", sizes::bytes_per_page(&dir)?);
        return Ok(ExitCode::SUCCESS);
    }
    let target = parse_target(&args.target)?;
    let estimators: Vec<Estimator> = match args.estimator.as_str() {
        "all" => Estimator::ALL.to_vec(),
        "ips" => vec![Estimator::Ips],
        "snips" => vec![Estimator::Snips],
        "dr" => vec![Estimator::Dr],
        other => return Err(format!("--estimator {other:?}: one of ips, snips, dr, all").into()),
    };
    if let Some(c) = args.clip {
        if !(c.is_finite() && c > 0.0) {
            return Err(format!("--clip {c}: must be a number > 0").into());
        }
    }
    if !(args.tolerance > 0.0 && args.tolerance < 1.0) {
        return Err(format!("--tolerance {}: must be in (0, 1)", args.tolerance).into());
    }
    let opts = Options {
        clip: args.clip,
        sampling: Sampling {
            rel_tol: args.tolerance,
            ..Sampling::default()
        },
    };
    if let Some(seeds) = args.coverage {
        let cfg = SimConfig::default();
        let (table, truth) = coverage(seeds, &cfg, &target, &opts)?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({"target": args.target, "seeds": seeds, "truth": truth, "estimators": table.iter().map(|(n, c)| serde_json::json!({"estimator": n, "coverage": c})).collect::<Vec<_>>()})
            );
        } else {
            println!(
                "target {}, {seeds} simulated logs of {} pages ({} contexts of {} candidates, logger stochastic T = {}), mean truth {truth:.4} calls per page",
                args.target, cfg.pages, cfg.contexts, cfg.candidates, cfg.temperature
            );
            println!(
                "{:<10} {:>9} {:>11} {:>9} {:>8} {:>9}",
                "estimator", "coverage", "mean width", "bias", "RMSE", "mean ESS"
            );
            for (name, c) in &table {
                println!(
                    "{name:<10} {:>9.2} {:>11.4} {:>+9.4} {:>8.4} {:>9.0}",
                    c.coverage, c.mean_width, c.bias, c.rmse, c.mean_ess
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let log = args.log.as_deref().ok_or("--log EXPORT is required")?;
    let (pages_path, calls_path) = if log.is_dir() {
        (log.join("pages.jsonl"), log.join("calls.csv"))
    } else {
        let dir = log.parent().unwrap_or(Path::new("."));
        (log.to_path_buf(), dir.join("calls.csv"))
    };
    let pages = read_pages(&pages_path)?;
    let calls = read_calls(&calls_path)?;
    let report = estimate(&pages, &calls, &target, &estimators, &opts)?;
    print_report(&args, &report);
    Ok(ExitCode::SUCCESS)
}

fn print_report(args: &OpeArgs, r: &Report) {
    if args.json {
        println!(
            "{}",
            serde_json::json!({"target": args.target, "clip": args.clip, "report": r})
        );
        return;
    }
    println!(
        "target {}: {} pages used ({} not stochastic, {} logged without candidate lists, {} fair listings skipped); logged calls per page {:.4}",
        args.target,
        r.pages,
        r.skipped_deterministic,
        r.skipped_old,
        r.skipped_listing,
        r.logged_calls_per_page
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "estimator", "estimate", "95% lo", "95% hi", "stderr", "ESS"
    );
    for (name, e) in &r.estimates {
        println!(
            "{name:<10} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>10.1}",
            e.value, e.lo, e.hi, e.stderr, e.ess
        );
    }
}

/// The export's page logs, one JSON object a line.
pub fn read_pages(path: &Path) -> Result<Vec<PageLog>, AnyError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: PageLog = serde_json::from_str(line)
            .map_err(|e| format!("{} line {}: not a page log: {e}", path.display(), i + 1))?;
        pages.push(p);
    }
    Ok(pages)
}

/// The export's paid calls that name their page and rank: (page, rank) ->
/// calls there.
pub fn read_calls(path: &Path) -> Result<HashMap<(u64, u64), f64>, AnyError> {
    let (mut r, [page, rank]) = csv_columns(path, ["page", "rank"])?;
    let mut calls = HashMap::new();
    for rec in csv_records(&mut r, path) {
        let rec = rec?;
        if let (Some(p), Some(k)) = (rec.whole(page, "page")?, rec.whole(rank, "rank")?) {
            *calls.entry((p, k)).or_insert(0.0) += 1.0;
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let pages = dir.path().join("pages.jsonl");
        let ok = r#"{"page":3,"time":10,"query":"q","mode":"text","policy":"relevance","params":{},"group":"model","seed":0,"candidates":0,"shown":[]}"#;
        std::fs::write(&pages, format!("{ok}\n\nnot json\n")).unwrap();
        let e = read_pages(&pages).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let calls = dir.path().join("calls.csv");
        std::fs::write(&calls, "seq,page,rank\n1,4,2\n2,,\n3,x,1\n").unwrap();
        let e = read_calls(&calls).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("\"x\""), "{e}");
        std::fs::write(&calls, "seq,page,rank\n1,4,2\n2,,\n3,4,2\n").unwrap();
        let c = read_calls(&calls).unwrap();
        assert_eq!(c[&(4, 2)], 2.0);
        assert_eq!(c.len(), 1);
        std::fs::write(&calls, "seq,page\n1,4\n").unwrap();
        assert!(read_calls(&calls)
            .unwrap_err()
            .to_string()
            .contains("\"rank\""));
    }
}

/// Bytes per page in each encoding, on a real export (`hubsearch ope --log
/// DIR --sizes`, DIR a `hubsearch ledger export` directory): the ledger row
/// (JSON without the candidate list at first, the self-contained binary
/// log of version 2, the compact page of version 3) and the cluster page
/// event (the JSON `PageRecord` with its deltas, event version 2, event
/// version 3). The compact sizes replay the pages in order through a
/// dictionary of models and names, as a ledger does: an event is encoded
/// against the dictionary before its page (what the serving replica
/// holds), a row against the one after it.
mod sizes {
    use std::collections::HashMap;

    use hubsearch_engine::replica::LogEvent;
    use hubsearch_ledger::codec::derived_logits;
    use hubsearch_ledger::state::{Ordinals, Refs};
    use hubsearch_ledger::PageRecord;

    use crate::cli::AnyError;

    pub fn bytes_per_page(dir: &std::path::Path) -> Result<String, AnyError> {
        let pages = super::read_pages(&dir.join("pages.jsonl"))?;
        let (mut old_row, mut new_row, mut old_event, mut new_event, mut n, mut cands) =
            (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
        let (mut compact_row, mut compact_event) = (0usize, 0usize);
        let mut ordinals = Ordinals::default();
        let mut names: HashMap<u64, String> = HashMap::new();
        for p in pages.iter().filter(|p| !p.ranked.is_empty()) {
            // JSON text may read a float back one ulp off: the logits as
            // the ledger holds them are the derived ones.
            let mut p = p.clone();
            p.quantize();
            if !p.logits.is_empty() {
                p.logits = derived_logits(&p.ranked, &p.params, &p.policy);
            }
            let p = &p;
            let mut old = p.clone();
            old.ranked.clear();
            old.attention = None;
            old.first_rank = 0;
            old_row += serde_json::to_vec(&old)?.len();
            new_row += p.encode().len();
            // The event carried the record with the log of its day (no
            // candidate list).
            let mut record = PageRecord::of_log(p.clone())?;
            record.log = Some(Box::new(old));
            let event = |page| LogEvent::Page {
                page_id: p.page,
                hour: p.time / 3600,
                time: p.time,
                sent_ms: p.time * 1000,
                page,
            };
            old_event += serde_json::to_vec(&event(record))?.len();
            new_event += LogEvent::Logged {
                page_id: p.page,
                hour: p.time / 3600,
                time: p.time,
                sent_ms: p.time * 1000,
                log: Box::new(p.clone()),
            }
            .to_payload()?
            .len();
            let bytes = p.encode_compact(&Refs {
                ordinals: &ordinals,
                names: &names,
            });
            compact_event += LogEvent::Compact {
                page_id: p.page,
                hour: p.time / 3600,
                time: p.time,
                sent_ms: p.time * 1000,
                bytes,
            }
            .to_payload()?
            .len();
            ordinals.assign(&p.ranked);
            for (k, name) in p.shown_names() {
                names.entry(k).or_insert_with(|| name.to_string());
            }
            compact_row += p
                .encode_compact(&Refs {
                    ordinals: &ordinals,
                    names: &names,
                })
                .len();
            cands += p.ranked.len();
            n += 1;
        }
        if n == 0 {
            return Err("no page of the export has a candidate list".into());
        }
        Ok(format!(
            "{n} pages, {:.0} candidates each: ledger row {} (JSON) -> {} (version 2) -> {} bytes (compact), cluster event {} (version 1) -> {} (version 2) -> {} bytes (version 3)",
            cands as f64 / n as f64,
            old_row / n,
            new_row / n,
            compact_row / n,
            old_event / n,
            new_event / n,
            compact_event / n
        ))
    }
}
