//! Reading card records from files: JSONL (plain or gzip, detected by magic
//! bytes, not by name), a JSON document (one record or an array, as the Hub
//! API returns), and directories of Markdown cards with YAML front matter.
//!
//! Every record comes out with its [`Location`]; a bad record is handed on as
//! an error with its reason, never dropped, and never stops the reading.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use hubsearch_core::record::{self, MAX_RECORD_BYTES};
use hubsearch_core::ModelCard;

use crate::error::{Error, Result};

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line (JSONL), 1-based element (JSON array), or 1 (Markdown file).
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One record read: a card, or why the record is not one.
pub type Record = (Location, std::result::Result<ModelCard, String>);

/// Check that every path exists before anything is written.
pub fn check_paths(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        if !p.exists() {
            return Err(Error::Input {
                path: p.clone(),
                message: "no such file or directory".into(),
            });
        }
    }
    Ok(())
}

/// Read every record of every path in order, calling `visit` for each, and
/// `progress` with the bytes read so far of the current file.
pub fn read_all(paths: &[PathBuf], visit: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    check_paths(paths)?;
    for p in paths {
        if p.is_dir() {
            read_markdown_dir(p, visit)?;
        } else {
            read_file(p, visit)?;
        }
    }
    Ok(())
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn read_file(path: &Path, visit: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| io_err(path, e))?;
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let reader: Box<dyn BufRead> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let is_md = path.extension().is_some_and(|e| e == "md");
    if is_md {
        let text = read_to_string_capped(reader, path)?;
        let loc = Location {
            file: path.to_path_buf(),
            line: 1,
        };
        let fallback = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string);
        visit((
            loc,
            record::parse_markdown(&text, fallback.as_deref()).map_err(|e| e.to_string()),
        ))?;
        return Ok(());
    }
    let is_json_doc = path.extension().is_some_and(|e| e == "json");
    if is_json_doc {
        return read_json_document(reader, path, visit);
    }
    read_jsonl(reader, path, visit)
}

fn read_to_string_capped(reader: Box<dyn BufRead>, path: &Path) -> Result<String> {
    let mut buf = Vec::new();
    reader
        .take(MAX_RECORD_BYTES as u64 * 64)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    String::from_utf8(buf).map_err(|_| Error::Input {
        path: path.to_path_buf(),
        message: "not UTF-8 text".into(),
    })
}

fn read_json_document(
    reader: Box<dyn BufRead>,
    path: &Path,
    visit: &mut dyn FnMut(Record) -> Result<()>,
) -> Result<()> {
    let text = read_to_string_capped(reader, path)?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            // A .json file may still be JSON Lines.
            if text.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
                return read_jsonl(
                    Box::new(std::io::Cursor::new(text.into_bytes())),
                    path,
                    visit,
                );
            }
            let loc = Location {
                file: path.to_path_buf(),
                line: e.line(),
            };
            return visit((loc, Err(format!("invalid JSON: {e}"))));
        }
    };
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    for (i, item) in items.iter().enumerate() {
        let loc = Location {
            file: path.to_path_buf(),
            line: i + 1,
        };
        visit((loc, record::from_value(item).map_err(|e| e.to_string())))?;
    }
    Ok(())
}

fn read_jsonl(
    mut reader: Box<dyn BufRead>,
    path: &Path,
    visit: &mut dyn FnMut(Record) -> Result<()>,
) -> Result<()> {
    let mut line_no = 0;
    let mut buf = Vec::with_capacity(1 << 16);
    loop {
        buf.clear();
        let (read, overflow) = read_line_capped(&mut reader, &mut buf, MAX_RECORD_BYTES)
            .map_err(|e| io_err(path, e))?;
        if read == 0 {
            return Ok(());
        }
        line_no += 1;
        let loc = Location {
            file: path.to_path_buf(),
            line: line_no,
        };
        if overflow {
            visit((
                loc,
                Err(format!(
                    "record is over the limit of {MAX_RECORD_BYTES} bytes ({read} bytes)"
                )),
            ))?;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            visit((loc, Err("record is not valid UTF-8".into())))?;
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        visit((loc, record::parse_json(text).map_err(|e| e.to_string())))?;
    }
}

/// Read one line into `buf`, keeping at most `cap` bytes (the rest of an
/// over-long line is consumed and discarded). Returns (bytes in the line,
/// whether it overflowed).
fn read_line_capped(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<(usize, bool)> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((total, total > cap));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let len = chunk.len();
        if buf.len() < cap {
            let room = cap - buf.len();
            buf.extend_from_slice(&chunk[..len.min(room)]);
        }
        total += len;
        reader.consume(len);
        if done {
            return Ok((total, total > cap + 1));
        }
    }
}

/// Every `.md` file under `dir` (sorted, so imports are reproducible). A card
/// at `author/name.md` or `author/name/README.md` gets the id `author/name`
/// unless its front matter says otherwise.
fn read_markdown_dir(dir: &Path, visit: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    let mut files = Vec::new();
    collect_md(dir, &mut files)?;
    files.sort();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        let mut parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let last = parts.pop().unwrap_or_default();
        if !last.eq_ignore_ascii_case("README.md") {
            parts.push(last.trim_end_matches(".md").to_string());
        }
        let fallback = (!parts.is_empty()).then(|| parts.join("/"));
        let loc = Location {
            file: f.clone(),
            line: 1,
        };
        let parsed = match std::fs::read(&f) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => Err("not UTF-8 text".to_string()),
                Ok(text) => {
                    record::parse_markdown(&text, fallback.as_deref()).map_err(|e| e.to_string())
                }
            },
        };
        visit((loc, parsed))?;
    }
    Ok(())
}

fn collect_md(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let path = entry.map_err(|e| io_err(dir, e))?.path();
        if path.is_dir() {
            collect_md(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(paths: &[PathBuf]) -> Vec<Record> {
        let mut out = Vec::new();
        read_all(paths, &mut |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn capped_lines() {
        let data = format!("short\n{}\nafter\nlast", "x".repeat(50));
        let mut r = std::io::Cursor::new(data.into_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), (6, false));
        buf.clear();
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), (51, true));
        assert_eq!(buf.len(), 10);
        buf.clear();
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), (6, false));
        buf.clear();
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap(), (4, false));
        buf.clear();
        assert_eq!(read_line_capped(&mut r, &mut buf, 10).unwrap().0, 0);
    }

    #[test]
    fn gzip_jsonl_json_and_markdown() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("cards.data");
        {
            let f = File::create(&gz).unwrap();
            let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            std::io::Write::write_all(
                &mut enc,
                b"{\"id\": \"a/b\"}\n\nnot json\n{\"id\": \"c/d\"}\n",
            )
            .unwrap();
            enc.finish().unwrap();
        }
        let api = dir.path().join("api.json");
        std::fs::write(
            &api,
            r#"[{"modelId": "x/y", "pipeline_tag": "translation"}, {"downloads": 1}]"#,
        )
        .unwrap();
        let md_dir = dir.path().join("cards");
        std::fs::create_dir_all(md_dir.join("org/model-one")).unwrap();
        std::fs::write(
            md_dir.join("org/model-one/README.md"),
            "---\nlicense: mit\n---\nHello",
        )
        .unwrap();
        std::fs::write(md_dir.join("org/two.md"), "No front matter").unwrap();
        let recs = collect(&[gz.clone(), api.clone(), md_dir.clone()]);
        let summary: Vec<(usize, Result<String, String>)> = recs
            .iter()
            .map(|(l, r)| {
                (
                    l.line,
                    r.as_ref().map(|c| c.id.clone()).map_err(|e| e.clone()),
                )
            })
            .collect();
        assert_eq!(summary[0], (1, Ok("a/b".into())));
        assert_eq!(summary[1].0, 3);
        assert!(summary[1].1.as_ref().unwrap_err().contains("invalid JSON"));
        assert_eq!(summary[2], (4, Ok("c/d".into())));
        assert_eq!(summary[3], (1, Ok("x/y".into())));
        assert_eq!(summary[4].0, 2);
        assert!(summary[4]
            .1
            .as_ref()
            .unwrap_err()
            .contains("missing field `id`"));
        assert_eq!(summary[5], (1, Ok("org/model-one".into())));
        assert_eq!(summary[6], (1, Ok("org/two".into())));
        assert_eq!(recs.len(), 7);
        assert!(read_all(&[dir.path().join("missing")], &mut |_| Ok(())).is_err());
    }
}
