//! `hubsearch groups`: group reports from a ledger export (docs/metrics.md,
//! Group reports): per builder, popularity tier or model age, exposure and
//! paid calls against merit, amortized over time and per query, with
//! group-level expected exposure where judgments are given. Reads the
//! export here; `hubsearch_eval::groups` computes and renders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hubsearch_engine::ledger::PageLog;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_eval::groups::{self, report, CardFacts, Cards, Grouping, Judged, TierSource};
use hubsearch_eval::trec;

use crate::cli::{load_config, AnyError, Global};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Builder,
    Tier,
    Age,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierFrom {
    /// The quantile each page logged for its candidates
    Logged,
    /// The cards' downloads
    Cards,
}

#[derive(Args, Debug)]
pub struct GroupsArgs {
    /// A `hubsearch ledger export` directory (its pages.jsonl and calls.csv)
    #[arg(long, value_name = "DIR")]
    export: PathBuf,
    /// How models are grouped
    #[arg(long, value_enum)]
    by: By,
    /// Popularity tiers' cut points on the download quantile (1 = most
    /// downloaded), ascending
    #[arg(long, value_delimiter = ',', default_value = "0.9,0.99")]
    tiers: Vec<f64>,
    /// Where tiers' quantiles come from
    #[arg(long, value_enum, default_value = "logged")]
    tier_from: TierFrom,
    /// Age bands' cut points in days (age at page time: page time minus
    /// the card's created date, else its last-modified date), ascending
    #[arg(long, value_delimiter = ',', default_value = "180,365")]
    age_days: Vec<f64>,
    /// Card files (JSONL, gzip JSONL, JSON, Markdown directories) for
    /// builders' names, downloads and dates; without them, groupings that
    /// need cards read the index's (--index or the config's)
    #[arg(long, value_name = "FILE")]
    cards: Vec<PathBuf>,
    /// Points in time: the page sequence in this many windows
    #[arg(long, default_value_t = 10)]
    windows: usize,
    /// Only pages of these policies, comma-separated
    #[arg(long, value_delimiter = ',')]
    policy: Vec<String>,
    /// Count fair listings' pages too
    #[arg(long)]
    listings: bool,
    /// Queries (`qid<TAB>text`) whose text matches the pages' queries, for
    /// group-level expected exposure with --qrels
    #[arg(long, value_name = "FILE", requires = "qrels")]
    queries: Vec<PathBuf>,
    /// Judgments (`qid 0 model grade`) for group-level expected exposure
    #[arg(long, value_name = "FILE", requires = "queries")]
    qrels: Vec<PathBuf>,
    /// Expected exposure's rbp patience
    #[arg(long, default_value_t = 0.5)]
    ee_patience: f64,
    /// Groups listed one by one (the rest summed in one row)
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Output directory: report.md, groups.json and SVG plots
    #[arg(long, default_value = "groups-report")]
    out: PathBuf,
}

pub fn run(g: &Global, a: GroupsArgs) -> Result<ExitCode, AnyError> {
    let grouping = match a.by {
        By::Builder => Grouping::Builder,
        By::Tier => Grouping::Tier {
            cuts: a.tiers.clone(),
            source: match a.tier_from {
                TierFrom::Logged => TierSource::Logged,
                TierFrom::Cards => TierSource::Cards,
            },
        },
        By::Age => Grouping::Age {
            cuts_days: a.age_days.clone(),
        },
    };
    grouping.check()?;
    if a.windows == 0 {
        return Err("--windows must be at least 1".into());
    }
    if !(a.ee_patience > 0.0 && a.ee_patience < 1.0) {
        return Err(format!("--ee-patience {}: must be in (0, 1)", a.ee_patience).into());
    }
    if !a.export.is_dir() {
        return Err(format!(
            "{}: not a directory (a `hubsearch ledger export` directory)",
            a.export.display()
        )
        .into());
    }
    let pages = read_pages(&a.export.join("pages.jsonl"))?;
    let calls = read_calls(&a.export.join("calls.csv"))?;
    let cards = if !a.cards.is_empty() {
        Some(read_cards(&a.cards)?)
    } else if grouping.needs_cards() {
        let config = load_config(g)?;
        let dir = config.index.dir.clone();
        let engine = Engine::open_with(config, LedgerMode::Ephemeral, false).map_err(|e| {
            format!(
                "grouping by {} needs cards: give --cards FILE, or --index DIR of the hub that served the pages ({}: {e})",
                grouping.name(),
                dir.display()
            )
        })?;
        Some(Cards::new(engine.all_cards()?.iter().map(CardFacts::of)))
    } else {
        None
    };
    let judged = if a.qrels.is_empty() {
        None
    } else {
        let mut queries = Vec::new();
        for q in &a.queries {
            queries.extend(trec::read_queries(q)?);
        }
        let mut qrels = trec::Qrels::new();
        for f in &a.qrels {
            for (qid, j) in trec::read_qrels(f)? {
                qrels.entry(qid).or_default().extend(j);
            }
        }
        Some(Judged {
            queries,
            qrels,
            options: groups::rbp(a.ee_patience),
        })
    };
    let options = groups::Options {
        grouping,
        windows: a.windows,
        policies: a.policy.clone(),
        listings: a.listings,
        top: a.top.max(1),
        judged,
    };
    let r = groups::analyse(&pages, &calls, cards.as_ref(), &options)?;
    let command = command_line();
    let source = a.export.display().to_string();
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let write = |name: &str, text: &str| -> Result<(), AnyError> {
        let p = a.out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()).into())
    };
    write("report.md", &report::markdown(&r, &command, &source))?;
    let json = serde_json::json!({
        "command": command,
        "export": source,
        "revision": crate::cli::git_revision(),
        "report": r,
    });
    write(
        "groups.json",
        &(serde_json::to_string_pretty(&json)? + "\n"),
    )?;
    for (name, svg) in report::plots(&r) {
        write(&name, &svg)?;
    }
    let last = r.windows.last().map(|w| &w.figures);
    eprintln!(
        "{} pages, {} groups by {}: exposure disparity (max-min) {}, impact {}; wrote report.md, groups.json and {} plots to {}",
        r.input.pages_used,
        r.group_count,
        r.grouping,
        report::num(last.and_then(|w| w.exposure.max_min)),
        report::num(last.and_then(|w| w.impact.max_min)),
        report::PLOTS.len(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// How this run was asked for, for the report.
fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|s| {
            if s.is_empty() || s.contains(char::is_whitespace) {
                format!("'{s}'")
            } else {
                s
            }
        })
        .collect();
    format!("hubsearch {}", args.join(" "))
}

/// The export's page logs, one JSON object a line; a page number given
/// twice is an error naming both lines.
pub fn read_pages(path: &Path) -> Result<Vec<PageLog>, AnyError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pages = Vec::new();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: PageLog = serde_json::from_str(line)
            .map_err(|e| format!("{} line {}: not a page log: {e}", path.display(), i + 1))?;
        if let Some(first) = seen.insert(p.page, i + 1) {
            return Err(format!(
                "{} line {}: page {} again (first on line {first})",
                path.display(),
                i + 1,
                p.page
            )
            .into());
        }
        pages.push(p);
    }
    Ok(pages)
}

/// The export's paid calls (columns by name: seq, time, model, builder,
/// amount_usd, page, rank; page and rank may be empty).
pub fn read_calls(path: &Path) -> Result<Vec<groups::Call>, AnyError> {
    // The columns the export writes, in its order.
    let (mut r, c) = csv_columns(path, crate::ledger::CALL_COLUMNS)?;
    let mut calls = Vec::new();
    for rec in csv_records(&mut r, path) {
        let rec = rec?;
        let required = |k: usize, name: &str| -> Result<u64, String> {
            rec.whole(c[k], name)?
                .ok_or_else(|| rec.error(&format!("{name} is empty")))
        };
        let amount = match rec.text(c[4]) {
            "" => 0.0,
            v => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| rec.bad("amount_usd", v, "a number"))?,
        };
        if rec.text(c[2]).is_empty() {
            return Err(rec.error("model is empty").into());
        }
        calls.push(groups::Call {
            seq: required(0, "seq")?,
            time: required(1, "time")?,
            model: rec.text(c[2]).to_string(),
            builder: rec.text(c[3]).to_string(),
            amount_usd: amount,
            page: rec.whole(c[5], "page")?,
            rank: rec.whole(c[6], "rank")?,
        });
    }
    Ok(calls)
}

/// An export's CSV file (`calls.csv`) opened: its reader and the positions
/// of the columns `names`, found by name (each must be there).
pub(crate) fn csv_columns<const N: usize>(
    path: &Path,
    names: [&str; N],
) -> Result<(csv::Reader<std::fs::File>, [usize; N]), AnyError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = r
        .headers()
        .map_err(|e| format!("{} line 1: {e}", path.display()))?
        .clone();
    let mut columns = [0; N];
    for (c, name) in columns.iter_mut().zip(names) {
        *c = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{} line 1: no column {name:?}", path.display()))?;
    }
    Ok((r, columns))
}

/// The records `r` reads from `path`, each with its line (the header's is
/// line 1); a record that cannot be read is an error naming its line.
pub(crate) fn csv_records<'a>(
    r: &'a mut csv::Reader<std::fs::File>,
    path: &'a Path,
) -> impl Iterator<Item = Result<CsvRecord<'a>, String>> + 'a {
    r.records().enumerate().map(move |(i, rec)| {
        let line = i + 2;
        rec.map(|rec| CsvRecord { path, line, rec })
            .map_err(|e| format!("{} line {line}: {e}", path.display()))
    })
}

/// A record of an export's CSV file, and where it stands (for errors).
pub(crate) struct CsvRecord<'a> {
    path: &'a Path,
    line: usize,
    rec: csv::StringRecord,
}

impl CsvRecord<'_> {
    /// Column `c`, trimmed ("" when the record has no such column).
    pub(crate) fn text(&self, c: usize) -> &str {
        self.rec.get(c).unwrap_or("").trim()
    }

    /// Column `c` (named `name`) as a whole number; `None` when empty.
    pub(crate) fn whole(&self, c: usize, name: &str) -> Result<Option<u64>, String> {
        match self.text(c) {
            "" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| self.bad(name, v, "a whole number")),
        }
    }

    /// `{name} {v:?} is not {what}`, naming this line.
    pub(crate) fn bad(&self, name: &str, v: &str, what: &str) -> String {
        self.error(&format!("{name} {v:?} is not {what}"))
    }

    /// `what`, naming this line.
    pub(crate) fn error(&self, what: &str) -> String {
        format!("{} line {}: {what}", self.path.display(), self.line)
    }
}

/// Card files as the import reads them; a record that is not a card is an
/// error naming its file and line.
pub fn read_cards(paths: &[PathBuf]) -> Result<Cards, AnyError> {
    let mut facts = Vec::new();
    let mut first_bad: Option<String> = None;
    hubsearch_engine::source::read_all(paths, &mut |(loc, card)| {
        match card {
            Ok(c) => facts.push(CardFacts::of(&c)),
            Err(reason) => {
                first_bad.get_or_insert_with(|| format!("{loc}: {reason}"));
            }
        }
        Ok(())
    })?;
    if let Some(e) = first_bad {
        return Err(e.into());
    }
    Ok(Cards::new(facts))
}
