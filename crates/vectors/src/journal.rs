//! The vector journal: vectors published since the last save, appended and
//! synced to `journal.bin` before the publish is acknowledged, replayed when
//! the index opens, emptied by the next save. Without it, vectors lived in
//! memory until a clean shutdown, and after a kill -9 start-up re-embedded
//! every card published since (needing the model, and time growing with
//! traffic).
//!
//! Format: records one after another, each `tag u8` (1 upsert, 2 delete),
//! `id_key u64`, then for an upsert `text_hash u64` and `dim` f32 (all little
//! endian), then the first 8 bytes of the BLAKE3 hash of the record. A torn
//! or garbled tail (a crash mid-append) ends the replay there; nothing after
//! it was acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hubsearch_core::ModelKey;

/// One journalled change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Upsert {
        id_key: ModelKey,
        text_hash: u64,
        vector: Vec<f32>,
    },
    Delete {
        id_key: ModelKey,
    },
}

const UPSERT: u8 = 1;
const DELETE: u8 = 2;

impl Change {
    /// Append the record's body (without its checksum) to `buf`: the tag
    /// and the id key, then an upsert's text hash and vector.
    fn encode(&self, buf: &mut Vec<u8>) {
        let (tag, id_key) = match self {
            Change::Upsert { id_key, .. } => (UPSERT, id_key),
            Change::Delete { id_key } => (DELETE, id_key),
        };
        buf.push(tag);
        buf.extend_from_slice(&id_key.0.to_le_bytes());
        if let Change::Upsert {
            text_hash, vector, ..
        } = self
        {
            buf.extend_from_slice(&text_hash.to_le_bytes());
            for x in vector {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
}

/// The open journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Open (or create) the journal at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Append `changes` and sync them to disk: when this returns, they
    /// survive a crash.
    pub fn append(&mut self, changes: &[Change]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for c in changes {
            let start = buf.len();
            c.encode(&mut buf);
            let sum = blake3::hash(&buf[start..]);
            buf.extend_from_slice(&sum.as_bytes()[..8]);
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }

    /// Empty the journal (its changes are in a saved index now).
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The complete records of the journal at `path` (none if there is no
/// file), for vectors of `dim` dimensions, in order, and the length of the
/// file they fill (where a torn tail starts: the journal must be cut back
/// to it before anything is appended, or later records would follow
/// garbage and never replay).
pub fn replay(path: &Path, dim: usize) -> std::io::Result<(Vec<Change>, u64)> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    }
    let mut out = Vec::new();
    let mut at = 0;
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    while at < bytes.len() {
        let body = match bytes[at] {
            UPSERT => 1 + 8 + 8 + 4 * dim,
            DELETE => 1 + 8,
            _ => break,
        };
        if at + body + 8 > bytes.len() {
            break;
        }
        let rec = &bytes[at..at + body];
        if blake3::hash(rec).as_bytes()[..8] != bytes[at + body..at + body + 8] {
            break;
        }
        let id_key = ModelKey(u64_at(rec, 1));
        out.push(if rec[0] == UPSERT {
            Change::Upsert {
                id_key,
                text_hash: u64_at(rec, 9),
                vector: rec[17..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            }
        } else {
            Change::Delete { id_key }
        });
        at += body + 8;
    }
    Ok((out, at as u64))
}

/// Cut the journal at `path` back to `len` bytes (its complete records).
pub fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(f) => {
            if f.metadata()?.len() > len {
                f.set_len(len)?;
                f.sync_all()?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl crate::VectorIndex {
    /// The journal's file.
    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.bin")
    }

    /// Apply the journal's complete records (opening), cut off a torn tail,
    /// and open it for appending.
    pub(crate) fn replay_journal(&self) -> Result<(), crate::VectorError> {
        let path = self.journal_path();
        let io = |e: std::io::Error| crate::VectorError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        let (changes, good) = replay(&path, self.dim()).map_err(io)?;
        truncate(&path, good).map_err(io)?;
        self.apply(changes)?;
        *self.journal.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Journal::open(&path).map_err(io)?);
        Ok(())
    }

    /// Apply changes in order (a vector already current is kept: a replay
    /// after a save that did not get to empty the journal adds nothing).
    fn apply(&self, changes: Vec<Change>) -> Result<(), crate::VectorError> {
        for c in changes {
            match c {
                Change::Upsert {
                    id_key,
                    text_hash,
                    vector,
                } => {
                    if !self.is_current(id_key, text_hash) {
                        self.add_rows(vec![(id_key, text_hash, vector)])?;
                    }
                }
                Change::Delete { id_key } => self.delete(id_key),
            }
        }
        // Once for all the changes: a replay of many publishes at open
        // extends the graph (and copies it flat) once, not every 1,024.
        self.settle_tail();
        Ok(())
    }

    /// Journal `changes` (synced to disk), then apply them: what a publish
    /// or a delete calls, so its vector survives a crash before the next
    /// save.
    pub fn apply_logged(&self, changes: Vec<Change>) -> Result<(), crate::VectorError> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = journal.as_mut() {
            j.append(&changes).map_err(|e| crate::VectorError::Io {
                path: j.path().to_path_buf(),
                message: e.to_string(),
            })?;
        }
        // Applied while the journal is held: a save waits, then sees it.
        self.apply(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_replay_in_order_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.bin");
        let a = Change::Upsert {
            id_key: ModelKey(7),
            text_hash: 9,
            vector: vec![0.5, -0.25, 1.0],
        };
        let d = Change::Delete {
            id_key: ModelKey(7),
        };
        let b = Change::Upsert {
            id_key: ModelKey(8),
            text_hash: 1,
            vector: vec![0.0, 1.0, 0.0],
        };
        let mut j = Journal::open(&path).unwrap();
        j.append(&[a.clone(), d.clone()]).unwrap();
        j.append(std::slice::from_ref(&b)).unwrap();
        assert_eq!(
            replay(&path, 3).unwrap().0,
            vec![a.clone(), d.clone(), b.clone()]
        );
        // A crash mid-append: the last record is cut short.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let (changes, good) = replay(&path, 3).unwrap();
        assert_eq!(changes, vec![a.clone(), d.clone()]);
        // Cut back to the complete records, later appends replay again.
        truncate(&path, good).unwrap();
        let mut j2 = Journal::open(&path).unwrap();
        j2.append(std::slice::from_ref(&b)).unwrap();
        assert_eq!(replay(&path, 3).unwrap().0, vec![a.clone(), d.clone(), b]);
        // A flipped byte inside a record ends the replay before it.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        assert!(replay(&path, 3).unwrap().0.is_empty());
        j.clear().unwrap();
        assert!(replay(&path, 3).unwrap().0.is_empty());
        assert!(replay(&dir.path().join("none"), 3).unwrap().0.is_empty());
    }
}
