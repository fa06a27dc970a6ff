//! [`ExposureBook`]: per group, the cumulative exposure, merit, impact and
//! number of rounds the group took part in: the state the `fair` policies
//! read and every served page updates (docs/ranking.md, Exposure book).
//! Pure and in memory; the engine's ledger persists it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::policy::Candidate;

/// What a book knows of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Cumulative exposure of the group's shown items.
    pub exposure: f64,
    /// Cumulative merit: the sum of its candidates' merit over the rounds.
    pub merit: f64,
    /// Rounds (served pages) in which the group had at least one candidate:
    /// FairCo's `tau - 1` for this group (docs/ranking.md, `fair`).
    pub rounds: u64,
    /// Cumulative impact (paid calls, or income): what `fair_impact` equalises.
    pub impact: f64,
}

impl Account {
    fn add(&mut self, d: &Account) {
        self.exposure += d.exposure;
        self.merit += d.merit;
        self.rounds = self.rounds.saturating_add(d.rounds);
        self.impact += d.impact;
    }

    /// Take back `d` (a delta added before).
    fn sub(&mut self, d: &Account) {
        self.exposure -= d.exposure;
        self.merit -= d.merit;
        self.rounds = self.rounds.saturating_sub(d.rounds);
        self.impact -= d.impact;
    }
}

/// Accounts per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExposureBook {
    groups: HashMap<u64, Account>,
    /// Pages served in all (FairCo's global `tau - 1`).
    pages: u64,
}

/// What serving one page adds to a book, per group.
pub type PageDelta = HashMap<u64, Account>;

impl ExposureBook {
    pub fn new() -> ExposureBook {
        ExposureBook::default()
    }

    /// The account of a group; all zero if never seen.
    pub fn get(&self, group: u64) -> Account {
        self.groups.get(&group).copied().unwrap_or_default()
    }

    /// Number of groups seen.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every group's account (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Account)> {
        self.groups.iter()
    }

    /// Add the delta of one served page.
    pub fn apply(&mut self, delta: &PageDelta) {
        for (g, d) in delta {
            self.groups.entry(*g).or_default().add(d);
        }
        self.pages += 1;
    }

    /// Take back a page's delta added before.
    pub fn unapply(&mut self, delta: &PageDelta) {
        for (g, d) in delta {
            self.groups.entry(*g).or_default().sub(d);
        }
        self.pages = self.pages.saturating_sub(1);
    }

    /// Pages served in all.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Set the number of pages served (a copy of the ledger's).
    pub fn set_pages(&mut self, pages: u64) {
        self.pages = pages;
    }

    /// Set a group's account (recovery from disk, or a copy for ranking).
    pub fn set(&mut self, group: u64, account: Account) {
        self.groups.insert(group, account);
    }

    /// Add impact (a paid call, or its income) to a group.
    pub fn add_impact(&mut self, group: u64, impact: f64) {
        self.groups.entry(group).or_default().impact += impact;
    }
}

/// The delta of serving `shown` (indices into `cands`, in page order, the
/// first at 1-based rank `first_rank`): every candidate's group gains its
/// merit, every group with a candidate one round, every shown item's group
/// its position's exposure.
pub fn page_delta(
    cands: &[Candidate],
    shown: &[usize],
    first_rank: usize,
    attention: &Attention,
) -> PageDelta {
    let mut delta = PageDelta::new();
    for c in cands {
        let a = delta.entry(c.group).or_default();
        a.merit += c.merit.max(0.0);
        a.rounds = 1;
    }
    let rel: Vec<f64> = shown.iter().map(|&i| cands[i].relevance).collect();
    for (&i, w) in shown.iter().zip(attention.page(first_rank, &rel)) {
        delta.entry(cands[i].group).or_default().exposure += w;
    }
    delta
}
