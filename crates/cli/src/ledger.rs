//! `hubsearch ledger export`: the exposure ledger's page log and paid calls
//! as CSV and Parquet, for pandas, polars or R (docs/ledger.md, Export).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::Subcommand;
use hubsearch_engine::Ledger;
use hubsearch_ledger::{LoggedCall, PageLog};

use crate::cli::{load_config, AnyError, Global};

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Write impressions (one row per shown item of every logged page), paid
    /// calls and the full page logs (JSON lines) to a directory
    Export {
        /// Output directory
        #[arg(long, default_value = "ledger-export")]
        out: PathBuf,
        /// Formats, comma-separated (Parquet needs a build with `--features parquet`)
        #[cfg_attr(
            feature = "parquet",
            arg(long, value_delimiter = ',', default_value = "csv,parquet")
        )]
        #[cfg_attr(
            not(feature = "parquet"),
            arg(long, value_delimiter = ',', default_value = "csv")
        )]
        format: Vec<Format>,
    },
}

/// Table formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

pub fn run(g: &Global, cmd: LedgerCommand) -> Result<ExitCode, AnyError> {
    let LedgerCommand::Export { out, format } = cmd;
    #[cfg(not(feature = "parquet"))]
    if format.contains(&Format::Parquet) {
        return Err("this hubsearch was built without Parquet export: build it with `cargo build --release -p hubsearch --features parquet`, or export --format csv".into());
    }
    let config = load_config(g)?;
    let path = config.index.dir.join("ledger.redb");
    if !path.exists() {
        return Err(format!(
            "{}: no ledger here (nothing was served yet?)",
            path.display()
        )
        .into());
    }
    let ledger = Ledger::open(&path).map_err(|e| {
        format!(
            "{}: {e} (a running server holds the ledger: stop it, then export)",
            path.display()
        )
    })?;
    let n = export(&ledger, &out, &format)?;
    ledger.close()?;
    eprintln!(
        "wrote {} impressions of {} pages and {} calls to {}; page log rows {:.0} bytes on average, as stored",
        n.impressions,
        n.pages,
        n.calls,
        out.display(),
        n.row_bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub pages: usize,
    pub impressions: usize,
    pub calls: usize,
    /// Mean bytes of a page's row in the ledger, as stored.
    pub row_bytes: f64,
}

/// Column names of the impressions table, in order. `merit` and `quantile`
/// (the shown item's entry in the page's candidate list) came last, after
/// the first sixteen, so readers by position keep working; they are empty
/// for pages logged before candidate lists were.
pub const IMPRESSION_COLUMNS: [&str; 18] = [
    "page",
    "time",
    "query",
    "mode",
    "policy",
    "params",
    "group",
    "seed",
    "candidates",
    "rank",
    "model",
    "builder",
    "exposure",
    "relevance",
    "score",
    "propensity",
    "merit",
    "quantile",
];

/// Columns that may hold nulls.
const NULLABLE: [&str; 5] = ["propensity", "page", "rank", "merit", "quantile"];

/// Column names of the calls table, in order.
pub const CALL_COLUMNS: [&str; 7] = [
    "seq",
    "time",
    "model",
    "builder",
    "amount_usd",
    "page",
    "rank",
];

/// Write `impressions.*`, `calls.*` and `pages.jsonl` into `out`.
pub fn export(ledger: &Ledger, out: &Path, formats: &[Format]) -> Result<Counts, AnyError> {
    let mut pages: Vec<PageLog> = Vec::new();
    let mut calls: Vec<LoggedCall> = Vec::new();
    ledger.each_logged(|p| pages.push(p), |c| calls.push(c))?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut jsonl = String::new();
    for p in &pages {
        jsonl.push_str(&serde_json::to_string(p)?);
        jsonl.push('\n');
    }
    std::fs::write(out.join("pages.jsonl"), jsonl)?;
    let impressions = impression_batch(&pages)?;
    let call_batch = call_batch(&calls)?;
    for f in formats {
        match f {
            Format::Csv => {
                write_csv(&out.join("impressions.csv"), &impressions)?;
                write_csv(&out.join("calls.csv"), &call_batch)?;
            }
            Format::Parquet => {
                write_parquet(&out.join("impressions.parquet"), &impressions)?;
                write_parquet(&out.join("calls.parquet"), &call_batch)?;
            }
        }
    }
    // The rows as stored (compact page logs since version 3).
    let (rows, bytes) = ledger.page_log_bytes()?;
    let row_bytes = bytes as f64 / rows.max(1) as f64;
    Ok(Counts {
        pages: pages.len(),
        impressions: impressions.num_rows(),
        calls: calls.len(),
        row_bytes,
    })
}

fn impression_batch(pages: &[PageLog]) -> Result<RecordBatch, AnyError> {
    let mut page = UInt64Builder::new();
    let mut time = UInt64Builder::new();
    let mut seed = UInt64Builder::new();
    let mut cands = UInt64Builder::new();
    let mut rank = UInt64Builder::new();
    let mut query = StringBuilder::new();
    let mut mode = StringBuilder::new();
    let mut policy = StringBuilder::new();
    let mut params = StringBuilder::new();
    let mut group = StringBuilder::new();
    let mut model = StringBuilder::new();
    let mut builder = StringBuilder::new();
    let mut exposure = Float64Builder::new();
    let mut relevance = Float64Builder::new();
    let mut score = Float64Builder::new();
    let mut propensity = Float64Builder::new();
    let mut merit = Float64Builder::new();
    let mut quantile = Float64Builder::new();
    for p in pages {
        let params_json = serde_json::to_string(&p.params)?;
        // The shown items are `ranked[first_rank - 1 ..][.. shown.len()]`.
        let from = p.first_rank.max(1) - 1;
        for (k, item) in p.shown.iter().enumerate() {
            let candidate = p.ranked.get(from + k);
            merit.append_option(candidate.map(|c| c.merit));
            quantile.append_option(candidate.map(|c| c.quantile));
            page.append_value(p.page);
            time.append_value(p.time);
            query.append_value(&p.query);
            mode.append_value(&p.mode);
            policy.append_value(&p.policy);
            params.append_value(&params_json);
            group.append_value(&p.group);
            seed.append_value(p.seed);
            cands.append_value(p.candidates as u64);
            rank.append_value(item.rank as u64);
            model.append_value(&item.model);
            builder.append_value(&item.builder);
            exposure.append_value(item.exposure);
            relevance.append_value(item.relevance);
            score.append_value(item.score);
            propensity.append_option(item.propensity);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(page.finish()),
        Arc::new(time.finish()),
        Arc::new(query.finish()),
        Arc::new(mode.finish()),
        Arc::new(policy.finish()),
        Arc::new(params.finish()),
        Arc::new(group.finish()),
        Arc::new(seed.finish()),
        Arc::new(cands.finish()),
        Arc::new(rank.finish()),
        Arc::new(model.finish()),
        Arc::new(builder.finish()),
        Arc::new(exposure.finish()),
        Arc::new(relevance.finish()),
        Arc::new(score.finish()),
        Arc::new(propensity.finish()),
        Arc::new(merit.finish()),
        Arc::new(quantile.finish()),
    ];
    batch(&IMPRESSION_COLUMNS, columns)
}

fn call_batch(calls: &[LoggedCall]) -> Result<RecordBatch, AnyError> {
    let (mut seq, mut time) = (UInt64Builder::new(), UInt64Builder::new());
    let (mut model, mut builder) = (StringBuilder::new(), StringBuilder::new());
    let mut amount = Float64Builder::new();
    let (mut page, mut rank) = (UInt64Builder::new(), UInt64Builder::new());
    for c in calls {
        seq.append_value(c.seq);
        time.append_value(c.time);
        model.append_value(&c.model);
        builder.append_value(&c.builder);
        amount.append_value(c.amount_usd);
        page.append_option(c.page);
        rank.append_option(c.rank);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(time.finish()),
        Arc::new(model.finish()),
        Arc::new(builder.finish()),
        Arc::new(amount.finish()),
        Arc::new(page.finish()),
        Arc::new(rank.finish()),
    ];
    batch(&CALL_COLUMNS, columns)
}

/// A record batch whose schema takes each column's type from its array
/// (nullable only where nulls can occur: the propensity, a call's page and
/// rank, the merit and quantile of a page without a candidate list).
fn batch(names: &[&str], columns: Vec<ArrayRef>) -> Result<RecordBatch, AnyError> {
    let fields: Vec<Field> = names
        .iter()
        .zip(&columns)
        .map(|(n, c)| {
            Field::new(
                *n,
                c.data_type().clone(),
                c.null_count() > 0 || NULLABLE.contains(n),
            )
        })
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(not(feature = "parquet"))]
fn write_parquet(path: &Path, _: &RecordBatch) -> Result<(), AnyError> {
    Err(format!(
        "{}: this hubsearch was built without Parquet export (--features parquet)",
        path.display()
    )
    .into())
}

#[cfg(feature = "parquet")]
fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), AnyError> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(())
}

fn write_csv(path: &Path, batch: &RecordBatch) -> Result<(), AnyError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};
    let mut w = csv::Writer::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let schema = batch.schema();
    w.write_record(schema.fields().iter().map(|f| f.name().as_str()))?;
    for row in 0..batch.num_rows() {
        let mut rec: Vec<String> = Vec::with_capacity(batch.num_columns());
        for col in batch.columns() {
            let cell = if col.is_null(row) {
                String::new()
            } else {
                match col.data_type() {
                    DataType::UInt64 => col.as_primitive::<UInt64Type>().value(row).to_string(),
                    // Shortest text that reads back to the same f64.
                    DataType::Float64 => col.as_primitive::<Float64Type>().value(row).to_string(),
                    _ => col.as_string::<i32>().value(row).to_string(),
                }
            };
            rec.push(cell);
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsearch_core::{BuilderKey, ModelKey};
    use hubsearch_ledger::{CallOrigin, CallRecord, Impression, PageRecord, ShownLog};

    fn logged_page(ledger: &Ledger, query: &str, propensity: Option<f64>) {
        let log = PageLog {
            query: query.into(),
            mode: "hybrid".into(),
            policy: "stochastic".into(),
            params: [("temperature".to_string(), 0.1)].into(),
            group: "model".into(),
            seed: 7,
            candidates: 3,
            shown: vec![ShownLog {
                model: "org/m,1".into(),
                builder: "org".into(),
                rank: 1,
                exposure: 1.0,
                relevance: 0.5,
                score: 2.5,
                propensity,
            }],
            logits: vec![5.0, 1.0, 0.5],
            ..Default::default()
        };
        ledger
            .record_page(PageRecord {
                impressions: vec![Impression {
                    model: ModelKey(1),
                    builder: BuilderKey(2),
                    rank: 1,
                    exposure: 1.0,
                }],
                log: Some(Box::new(log)),
                ..Default::default()
            })
            .unwrap();
    }

    #[test]
    fn export_writes_tables_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.redb")).unwrap();
        logged_page(&ledger, "a \"quoted\", query", Some(0.25));
        logged_page(&ledger, "second", None);
        ledger
            .record_call(CallRecord {
                model: ModelKey(1),
                builder: BuilderKey(2),
                model_id: "org/m,1".into(),
                builder_name: "org".into(),
                amount_usd: 0.002,
                amount_stated: true,
                idempotency_key: None,
                origin: Some(CallOrigin { page: 1, rank: 1 }),
            })
            .unwrap();
        let out = dir.path().join("export");
        let formats = if cfg!(feature = "parquet") {
            vec![Format::Csv, Format::Parquet]
        } else {
            vec![Format::Csv]
        };
        let n = export(&ledger, &out, &formats).unwrap();
        assert_eq!((n.pages, n.impressions, n.calls), (2, 2, 1),);
        assert!(n.row_bytes > 0.0);
        // CSV: header, quoting of commas and quotes, empty cell for no propensity.
        let mut r = csv::Reader::from_path(out.join("impressions.csv")).unwrap();
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            IMPRESSION_COLUMNS
        );
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(&rows[0][2], "a \"quoted\", query");
        assert_eq!(&rows[0][10], "org/m,1");
        assert_eq!(&rows[0][15], "0.25");
        assert_eq!(&rows[1][15], "");
        assert_eq!(&rows[1][0], "1");
        let mut r = csv::Reader::from_path(out.join("calls.csv")).unwrap();
        let call: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(&call[0][2], "org/m,1");
        assert_eq!(&call[0][4], "0.002");
        assert_eq!((&call[0][5], &call[0][6]), ("1", "1"));
        // Parquet: the same rows and a null propensity.
        #[cfg(feature = "parquet")]
        {
            let f = std::fs::File::open(out.join("impressions.parquet")).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(f, 1024).unwrap();
            let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
            let b = &batches[0];
            assert_eq!(b.num_rows(), 2);
            let prop = b.column_by_name("propensity").unwrap();
            assert!(!prop.is_null(0) && prop.is_null(1));
        }
        // The page log keeps the logits.
        let jsonl = std::fs::read_to_string(out.join("pages.jsonl")).unwrap();
        let first: PageLog = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first.logits, vec![5.0, 1.0, 0.5]);
        assert_eq!(first.page, 0);
    }

    #[test]
    fn impressions_carry_each_shown_candidates_merit_and_quantile() {
        use hubsearch_ledger::LoggedCandidate;
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.redb")).unwrap();
        // A page logged before candidate lists were: empty cells.
        logged_page(&ledger, "old", None);
        let cand = |model: u64, merit: f64, quantile: f64| LoggedCandidate {
            model: ModelKey(model),
            builder: BuilderKey(9),
            relevance: 0.5,
            merit,
            calls: 0.0,
            quantile,
        };
        let shown = |model: &str, rank: usize| ShownLog {
            model: model.into(),
            builder: "o".into(),
            rank,
            exposure: 0.5,
            relevance: 0.5,
            score: 0.5,
            propensity: None,
        };
        // A second page: ranks 2 and 3 of three candidates.
        let log = PageLog {
            query: "q".into(),
            mode: "text".into(),
            policy: "relevance".into(),
            group: "model".into(),
            candidates: 3,
            first_rank: 2,
            shown: vec![shown("o/b", 2), shown("o/c", 3)],
            ranked: vec![
                cand(1, 0.25, 0.5),
                cand(2, 0.75, 0.125),
                cand(3, 0.5, 0.875),
            ],
            ..Default::default()
        };
        ledger
            .record_page(PageRecord {
                log: Some(Box::new(log)),
                ..Default::default()
            })
            .unwrap();
        let out = dir.path().join("export");
        export(&ledger, &out, &[Format::Csv]).unwrap();
        let mut r = csv::Reader::from_path(out.join("impressions.csv")).unwrap();
        let h = r.headers().unwrap().clone();
        assert_eq!((&h[16], &h[17]), ("merit", "quantile"));
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!((&rows[0][16], &rows[0][17]), ("", ""));
        assert_eq!(
            (&rows[1][10], &rows[1][16], &rows[1][17]),
            ("o/b", "0.75", "0.125")
        );
        assert_eq!(
            (&rows[2][10], &rows[2][16], &rows[2][17]),
            ("o/c", "0.5", "0.875")
        );
    }
}
