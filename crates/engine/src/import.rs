//! Importing cards into the index: streaming, idempotent, reporting every bad
//! record with its place and reason, committing every `commit_every` cards so
//! a crash loses at most one batch and never the last committed index.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use hubsearch_index::TextIndex;
use serde::Serialize;

use crate::error::Result;
use crate::progress::{Progress, ProgressFn};
use crate::source::{self, Location};

/// A record that was not imported, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub location: Location,
    pub reason: String,
}

/// An id seen twice in one import: the later record wins.
#[derive(Debug, Clone, Serialize)]
pub struct Replacement {
    pub id: String,
    pub earlier: Location,
    pub later: Location,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// What became of the records read.
    #[serde(flatten)]
    pub cards: CardCounts,
    /// Records that were not imported, each with its place and reason.
    pub rejected: Vec<Rejection>,
    /// Ids seen twice in this import (the later record won).
    pub replaced_in_run: Vec<Replacement>,
    pub commits: usize,
    pub seconds: f64,
    /// Live cards in the index afterwards.
    pub total_cards: u64,
    /// What embedding the cards did (when embeddings are on).
    pub vectors: Option<crate::semantic::VectorReport>,
}

/// Records read by an import, by outcome (rejected ones are listed in the
/// report).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CardCounts {
    /// Records read (good and bad).
    pub records: usize,
    /// New cards.
    pub imported: usize,
    /// Cards that replaced a different version of themselves.
    pub updated: usize,
    /// Cards identical to what the index already had (nothing written).
    pub unchanged: usize,
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub commit_every: usize,
    pub writer_memory_mb: usize,
    pub threads: usize,
}

/// Import `paths` into `index`.
pub fn import(
    index: &TextIndex,
    paths: &[PathBuf],
    opts: &ImportOptions,
    progress: ProgressFn<'_>,
) -> Result<ImportReport> {
    source::check_paths(paths)?;
    let start = Instant::now();
    let mut known = index.content_hashes()?;
    let mut writer = index.writer(opts.writer_memory_mb, opts.threads)?;
    let mut report = ImportReport::default();
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut pending = 0usize;

    source::read_all(paths, &mut |(loc, parsed)| {
        report.cards.records += 1;
        if report.cards.records % 1024 == 0 {
            progress(Progress::Records {
                read: report.cards.records,
            });
        }
        let card = match parsed {
            Ok(c) => c,
            Err(reason) => {
                progress(Progress::Rejected {
                    location: &loc,
                    reason: &reason,
                });
                report.rejected.push(Rejection {
                    location: loc,
                    reason,
                });
                return Ok(());
            }
        };
        if let Some(earlier) = seen.insert(card.id.clone(), loc.clone()) {
            report.replaced_in_run.push(Replacement {
                id: card.id.clone(),
                earlier,
                later: loc,
            });
        }
        let hash = card.content_hash();
        match known.insert(card.id.clone(), hash) {
            Some(h) if h == hash => {
                report.cards.unchanged += 1;
                return Ok(());
            }
            Some(_) => report.cards.updated += 1,
            None => report.cards.imported += 1,
        }
        writer.upsert(&card)?;
        pending += 1;
        if pending >= opts.commit_every {
            writer.commit()?;
            report.commits += 1;
            pending = 0;
            progress(Progress::Committed {
                commits: report.commits,
            });
        }
        Ok(())
    })?;
    if pending > 0 || report.commits == 0 {
        writer.commit()?;
        report.commits += 1;
    }
    writer.finish()?;
    progress(Progress::Done);
    index.reload()?;
    report.total_cards = index.num_docs();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
