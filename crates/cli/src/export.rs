//! `hubsearch export`: the indexed cards, their vectors and the query vectors,
//! as plain files, so other systems can be loaded with exactly what hubsearch
//! searches (the side-by-side benchmark in `eval/bench/compare`).
//!
//! Files written to `--out`:
//! - `cards.jsonl`: one card per line, in index order;
//! - `vectors.f32`: one row of `dim` little-endian f32 per card, same order
//!   (all zeros for a card without a vector; `manifest.json` counts them);
//! - `queries.tsv` and `query_vectors.f32` when `--queries` is given: each
//!   query embedded by the configured embedder, in file order;
//! - `manifest.json`: counts, dimension, embedder.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::ModelKey;
use hubsearch_engine::{Engine, LedgerMode};

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Directory to write into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Queries (`qid<TAB>text` per line) to embed as well
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
}

pub fn run(g: &Global, a: ExportArgs) -> Result<ExitCode, AnyError> {
    let config = load_config(g)?;
    let engine = Engine::open_with(config, LedgerMode::Ephemeral, false)?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let create = |name: &str| -> Result<BufWriter<std::fs::File>, AnyError> {
        let p = a.out.join(name);
        Ok(BufWriter::new(
            std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?,
        ))
    };
    let semantic = engine.semantic();
    let dim = semantic.map_or(0, |s| s.vectors().dim());
    let mut cards_out = create("cards.jsonl")?;
    let mut vectors_out = semantic.map(|_| create("vectors.f32")).transpose()?;
    let (mut cards, mut without_vector) = (0usize, 0usize);
    for card in engine.all_cards()? {
        serde_json::to_writer(&mut cards_out, &card)?;
        cards_out.write_all(b"\n")?;
        cards += 1;
        if let (Some(w), Some(s)) = (vectors_out.as_mut(), semantic) {
            let v = s
                .vectors()
                .vector_of(ModelKey::of(&card.id))
                .unwrap_or_else(|| {
                    without_vector += 1;
                    vec![0.0; dim]
                });
            for x in v {
                w.write_all(&x.to_le_bytes())?;
            }
        }
    }
    cards_out.flush()?;
    if let Some(mut w) = vectors_out {
        w.flush()?;
    }
    let mut queries = 0;
    if let Some(q) = &a.queries {
        let text = std::fs::read_to_string(q).map_err(|e| format!("{}: {e}", q.display()))?;
        let lines: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(id, t)| (id.trim(), t.trim()))
            .filter(|(_, t)| !t.is_empty())
            .collect();
        let mut tsv = create("queries.tsv")?;
        for (id, t) in &lines {
            writeln!(tsv, "{id}\t{t}")?;
        }
        tsv.flush()?;
        if let Some(s) = semantic {
            let mut w = create("query_vectors.f32")?;
            for (_, t) in &lines {
                for x in s.query_vector(t)?.iter() {
                    w.write_all(&x.to_le_bytes())?;
                }
            }
            w.flush()?;
        }
        queries = lines.len();
    }
    let manifest = serde_json::json!({
        "cards": cards,
        "cards_without_vector": without_vector,
        "dim": dim,
        "embedder": semantic.map(|s| s.embedder().map(|e| e.name().to_string()).unwrap_or_default()),
        "queries": queries,
        "index": engine.dir(),
    });
    std::fs::write(
        a.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    eprintln!(
        "exported {cards} cards ({without_vector} without a vector), {queries} queries, to {}",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
