//! TREC formats: queries (`qid<TAB>text`), qrels (`qid 0 docid grade`) and
//! run files (`qid Q0|rep docid rank score tag`).

use std::collections::{BTreeMap, HashMap};
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

/// Write a TREC run (`qid Q0 docid rank score tag`), the first repetition
/// of each query only (trec_eval reads one ranking per query). The score
/// column is the final score, lowered where needed to stay strictly
/// decreasing at the 6 printed decimals, so trec_eval's re-sort by score
/// keeps the served order.
pub fn write_run(out: &mut dyn Write, run: &[RunEntry], tag: &str) -> std::io::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (qid, _, docs) in run {
        if !seen.insert(qid.as_str()) {
            continue;
        }
        let mut prev = f64::INFINITY;
        for (rank, (doc, score)) in docs.iter().enumerate() {
            let mut s = (score * 1e6).round() / 1e6;
            if s >= prev {
                s = prev - 1e-6;
            }
            prev = s;
            writeln!(out, "{qid} Q0 {doc} {} {s:.6} {tag}", rank + 1)?;
        }
    }
    Ok(())
}

/// Write every repetition as expeval reads samples: `qid rep docid rank
/// score tag`, the second column the repetition number (0-based).
pub fn write_samples(out: &mut dyn Write, run: &[RunEntry], tag: &str) -> std::io::Result<()> {
    for (qid, rep, docs) in run {
        for (rank, (doc, score)) in docs.iter().enumerate() {
            writeln!(out, "{qid} {rep} {doc} {} {score:.6} {tag}", rank + 1)?;
        }
    }
    Ok(())
}

fn fields<'a>(
    path: &Path,
    i: usize,
    line: &'a str,
    what: &str,
) -> Result<Option<Vec<&'a str>>, Error> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.is_empty() {
        return Ok(None);
    }
    if f.len() < 5 {
        return Err(Error::Format {
            path: path.display().to_string(),
            line: i + 1,
            message: format!("expected `{what}`"),
        });
    }
    Ok(Some(f))
}

/// Read a TREC run as trec_eval does: per query, documents ordered by score
/// (descending; equal scores by document id, descending, as trec_eval
/// breaks ties), the rank and second columns ignored. A document twice in
/// one query's ranking is an error.
pub fn read_run(path: &Path) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let text = read(path)?;
    let mut tmp: BTreeMap<String, Vec<(f64, String)>> = BTreeMap::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some(f) = fields(path, i, line, "qid Q0 docid rank score [tag]")? else {
            continue;
        };
        let bad = |message: String| Error::Format {
            path: path.display().to_string(),
            line: i + 1,
            message,
        };
        let score: f64 = f[4]
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite())
            .ok_or_else(|| bad(format!("score {:?} is not a finite number", f[4])))?;
        if let Some(first) = seen.insert((f[0].to_string(), f[2].to_string()), i + 1) {
            return Err(bad(format!(
                "document {} appears twice for query {} (first on line {first})",
                f[2], f[0]
            )));
        }
        tmp.entry(f[0].to_string())
            .or_default()
            .push((score, f[2].to_string()));
    }
    Ok(tmp
        .into_iter()
        .map(|(q, mut v)| {
            v.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
            (q, v.into_iter().map(|(_, d)| d).collect())
        })
        .collect())
}

/// Read a run with repetitions as expeval does: per query and sample (the
/// second column), documents ordered by the rank column. A rank used twice
/// in one sample is an error (expeval drops the line with a message).
pub fn read_samples(path: &Path) -> Result<BTreeMap<String, Vec<Vec<String>>>, Error> {
    let text = read(path)?;
    let mut tmp: BTreeMap<String, BTreeMap<String, BTreeMap<usize, String>>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some(f) = fields(path, i, line, "qid sample docid rank score [tag]")? else {
            continue;
        };
        let bad = |message: String| Error::Format {
            path: path.display().to_string(),
            line: i + 1,
            message,
        };
        let rank: usize = f[3]
            .parse()
            .ok()
            .filter(|r| *r >= 1)
            .ok_or_else(|| bad(format!("rank {:?} is not a positive integer", f[3])))?;
        let sample = tmp
            .entry(f[0].to_string())
            .or_default()
            .entry(f[1].to_string())
            .or_default();
        if sample.insert(rank, f[2].to_string()).is_some() {
            return Err(bad(format!("rank {rank} appears twice in sample {}", f[1])));
        }
    }
    Ok(tmp
        .into_iter()
        .map(|(q, samples)| {
            let v = samples
                .into_values()
                .map(|ranks| ranks.into_values().collect())
                .collect();
            (q, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn runs_are_read_by_score_not_rank() {
        let f = file("q1 Q0 a 1 0.5 t\nq1 Q0 b 2 0.9 t\nq1 Q0 c 3 0.5 t\n\nq2 Q0 x 9 1 t\n");
        let r = read_run(f.path()).unwrap();
        // b has the highest score; a and c tie, broken by id descending.
        assert_eq!(r["q1"], vec!["b", "c", "a"]);
        assert_eq!(r["q2"], vec!["x"]);
        let f = file("q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n");
        let e = read_run(f.path()).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("twice"), "{e}");
        let f = file("q1 Q0 a 1 NaN t\n");
        assert!(read_run(f.path()).is_err());
    }

    #[test]
    fn samples_are_read_by_rank() {
        let f = file("q1 0 a 2 0 t\nq1 0 b 1 0 t\nq1 1 c 1 0 t\n");
        let r = read_samples(f.path()).unwrap();
        assert_eq!(r["q1"], vec![vec!["b", "a"], vec!["c"]]);
        let f = file("q1 0 a 1 0 t\nq1 0 b 1 0 t\n");
        assert!(read_samples(f.path()).is_err());
    }

    #[test]
    fn written_runs_read_back_in_served_order() {
        let run: Vec<RunEntry> = vec![
            (
                "q1".into(),
                0,
                vec![("z".into(), 1.0), ("a".into(), 1.0), ("m".into(), 2.0)],
            ),
            ("q1".into(), 1, vec![("a".into(), 1.0)]),
        ];
        let mut out = Vec::new();
        write_run(&mut out, &run, "t").unwrap();
        let f = file(std::str::from_utf8(&out).unwrap());
        assert_eq!(read_run(f.path()).unwrap()["q1"], vec!["z", "a", "m"]);
        let mut out = Vec::new();
        write_samples(&mut out, &run, "t").unwrap();
        let f = file(std::str::from_utf8(&out).unwrap());
        assert_eq!(read_samples(f.path()).unwrap()["q1"].len(), 2);
    }
}
