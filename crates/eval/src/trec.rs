//! TREC formats: queries (`qid<TAB>text`), qrels (`qid 0 docid grade`) and
//! run files (`qid Q0|rep docid rank score tag`).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// qid -> (doc id -> grade).
pub type Qrels = HashMap<String, HashMap<String, u32>>;

/// One query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub qid: String,
    pub text: String,
}

/// An I/O or format error, with file and line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Format {
        path: String,
        line: usize,
        message: String,
    },
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Read `qid<TAB>text` lines (blank lines and `#` comments skipped).
pub fn read_queries(path: &Path) -> Result<Vec<Query>, Error> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (qid, q) = line.split_once('\t').ok_or_else(|| Error::Format {
            path: path.display().to_string(),
            line: i + 1,
            message: "expected `qid<TAB>query text`".into(),
        })?;
        out.push(Query {
            qid: qid.trim().to_string(),
            text: q.trim().to_string(),
        });
    }
    Ok(out)
}

/// Read a qrels file.
pub fn read_qrels(path: &Path) -> Result<Qrels, Error> {
    let text = read(path)?;
    let mut out = Qrels::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let bad = |m: &str| Error::Format {
            path: path.display().to_string(),
            line: i + 1,
            message: m.to_string(),
        };
        if f.len() != 4 {
            return Err(bad("expected `qid 0 docid grade`"));
        }
        let grade: i64 = f[3].parse().map_err(|_| bad("grade is not an integer"))?;
        out.entry(f[0].to_string())
            .or_default()
            .insert(f[2].to_string(), grade.max(0) as u32);
    }
    Ok(out)
}

/// One ranked list: (qid, repetition, ranked doc ids with scores).
pub type RunEntry = (String, usize, Vec<(String, f64)>);

/// Write a run file. With `repetitions`, the second column is the
/// repetition number (TREC Fair Ranking 2021); otherwise `Q0`.
pub fn write_run(
    out: &mut dyn Write,
    run: &[RunEntry],
    tag: &str,
    repetitions: bool,
) -> std::io::Result<()> {
    for (qid, rep, docs) in run {
        for (rank, (doc, score)) in docs.iter().enumerate() {
            let second = if repetitions {
                rep.to_string()
            } else {
                "Q0".to_string()
            };
            writeln!(out, "{qid} {second} {doc} {} {score:.6} {tag}", rank + 1)?;
        }
    }
    Ok(())
}

/// Read a run file into qid -> ranked docs (ordered by rank column; the first
/// repetition only when several are present).
pub fn read_run(path: &Path) -> Result<HashMap<String, Vec<String>>, Error> {
    let text = read(path)?;
    let mut tmp: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    let mut first_rep: HashMap<String, String> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 5 {
            return Err(Error::Format {
                path: path.display().to_string(),
                line: i + 1,
                message: "expected `qid Q0 docid rank score [tag]`".into(),
            });
        }
        let rep = first_rep
            .entry(f[0].to_string())
            .or_insert_with(|| f[1].to_string());
        if rep != f[1] {
            continue;
        }
        let rank: usize = f[3].parse().map_err(|_| Error::Format {
            path: path.display().to_string(),
            line: i + 1,
            message: "rank is not an integer".into(),
        })?;
        tmp.entry(f[0].to_string())
            .or_default()
            .push((rank, f[2].to_string()));
    }
    Ok(tmp
        .into_iter()
        .map(|(q, mut v)| {
            v.sort_by_key(|(r, _)| *r);
            (q, v.into_iter().map(|(_, d)| d).collect())
        })
        .collect())
}
