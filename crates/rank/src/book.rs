//! [`ExposureBook`]: cumulative exposure and merit per group, the state the
//! `fair` policy reads and every served page updates (docs/ranking.md, Exposure book).
//! Pure and in memory; the engine's ledger persists it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::policy::Candidate;

/// Exposure and merit per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExposureBook {
    groups: HashMap<u64, (f64, f64)>,
}

/// What serving one page adds to a book: per group, (exposure, merit).
pub type PageDelta = HashMap<u64, (f64, f64)>;

impl ExposureBook {
    pub fn new() -> ExposureBook {
        ExposureBook::default()
    }

    /// (exposure, merit) of a group; (0, 0) if never seen.
    pub fn get(&self, group: u64) -> (f64, f64) {
        self.groups.get(&group).copied().unwrap_or((0.0, 0.0))
    }

    /// Number of groups seen.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every group's (exposure, merit).
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &(f64, f64))> {
        self.groups.iter()
    }

    /// Add a delta.
    pub fn apply(&mut self, delta: &PageDelta) {
        for (g, (e, m)) in delta {
            let entry = self.groups.entry(*g).or_default();
            entry.0 += e;
            entry.1 += m;
        }
    }

    /// Set a group's totals (recovery from disk).
    pub fn set(&mut self, group: u64, exposure: f64, merit: f64) {
        self.groups.insert(group, (exposure, merit));
    }
}

/// The delta of serving `shown` (indices into `cands`, in page order, the
/// first at 1-based rank `first_rank`): every candidate's group gains its
/// relevance as merit, every shown item's group gains its position's exposure.
pub fn page_delta(
    cands: &[Candidate],
    shown: &[usize],
    first_rank: usize,
    attention: &Attention,
) -> PageDelta {
    let mut delta = PageDelta::new();
    for c in cands {
        delta.entry(c.group).or_default().1 += c.relevance.max(0.0);
    }
    let rel: Vec<f64> = shown.iter().map(|&i| cands[i].relevance).collect();
    for (&i, w) in shown.iter().zip(attention.page(first_rank, &rel)) {
        delta.entry(cands[i].group).or_default().0 += w;
    }
    delta
}
