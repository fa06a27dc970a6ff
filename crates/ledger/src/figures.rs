//! What the ledger's readers see: the books the `fair` policies rank on,
//! the totals statistics report, and the logs `hubsearch ledger export`
//! writes.

use std::collections::HashMap;

use hubsearch_core::{Group, Impact, ModelKey};
use hubsearch_rank::{Account, ExposureBook};

use super::{
    now_secs, store, CallEvidence, Earnings, Ledger, LedgerError, LoggedCall, PageLog, Tally,
};

impl Ledger {
    /// A copy of the accounts of `groups` (models' or builders' keys), with
    /// their calls or income as impact: what the `fair` policies read, so
    /// ranking runs without the ledger's lock.
    pub fn book_of(
        &self,
        group: Group,
        impact: Impact,
        groups: impl IntoIterator<Item = u64>,
    ) -> ExposureBook {
        let s = self.state();
        let mut out = ExposureBook::new();
        let accounts = s.accounts(group);
        for g in groups {
            let mut a = accounts.book.get(g);
            if let Some(e) = accounts.earnings.get(&g) {
                a.impact = match impact {
                    Impact::Calls => e.calls as f64,
                    Impact::Income => e.income_usd,
                };
            }
            if a != Account::default() {
                out.set(g, a);
            }
        }
        // Search's rounds: pages served less fair listings' own.
        out.set_pages(s.pages.saturating_sub(s.listing.pages()));
        out
    }

    /// A copy of fair listings' own book for these models (docs/ranking.md,
    /// One book per purpose): what a fair listing's controller reads.
    pub fn listing_book_of(&self, models: impl IntoIterator<Item = u64>) -> ExposureBook {
        let s = self.state();
        let mut out = ExposureBook::new();
        for m in models {
            let a = s.listing.get(m);
            if a != Account::default() {
                out.set(m, a);
            }
        }
        out.set_pages(s.listing.pages());
        out
    }

    /// Pages served so far.
    pub fn pages(&self) -> u64 {
        self.state().pages
    }

    /// Exposure per model or per builder (all time).
    pub fn exposure(&self, group: Group) -> HashMap<u64, f64> {
        self.state()
            .accounts(group)
            .book
            .iter()
            .map(|(k, a)| (*k, a.exposure))
            .collect()
    }

    /// Exposure per model within the last `hours` hours.
    pub fn model_exposure_recent(&self, hours: u64) -> HashMap<u64, f64> {
        let from = (now_secs() / 3600).saturating_sub(hours.saturating_sub(1));
        let mut out: HashMap<u64, f64> = HashMap::new();
        for ((h, m), e) in self.state().hourly.iter() {
            if *h >= from {
                *out.entry(*m).or_default() += e;
            }
        }
        out
    }

    /// Exposure, merit and impressions of one model's or builder's key.
    pub fn tally_of(&self, key: u64, group: Group) -> Tally {
        self.state().accounts(group).tally(key)
    }

    /// Every model's or builder's totals, in key order: (key, tally, calls,
    /// income). What replicas compare (`GET /v1/cluster?ledger=true`).
    pub fn rows(&self, group: Group) -> Vec<(u64, Tally, Earnings)> {
        let s = self.state();
        let a = s.accounts(group);
        let mut keys: Vec<u64> = a.tallies().map(|(k, _)| k).collect();
        keys.extend(a.earnings.keys().copied());
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                (
                    k,
                    a.tally(k),
                    a.earnings.get(&k).copied().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Calls and income per model or per builder key.
    pub fn earnings(&self, group: Group) -> HashMap<u64, Earnings> {
        self.state().accounts(group).earnings.clone()
    }

    /// Calls and income of one model's or builder's key.
    pub fn earnings_of(&self, key: u64, group: Group) -> Earnings {
        self.state()
            .accounts(group)
            .earnings
            .get(&key)
            .copied()
            .unwrap_or_default()
    }

    /// Each model's calls, impressions and exposure, and the hub's calls
    /// per unit of exposure over all models (0 before any exposure).
    pub fn evidence_of(&self, models: &[ModelKey]) -> (Vec<CallEvidence>, f64) {
        let s = self.state();
        let evidence = models
            .iter()
            .map(|k| {
                let t = s.models.tally(k.0);
                CallEvidence {
                    calls: s.models.earnings.get(&k.0).map_or(0, |e| e.calls),
                    impressions: t.impressions,
                    exposure: t.exposure,
                }
            })
            .collect();
        (evidence, s.call_rate())
    }

    /// What the ledger has logged of each model under query `query` (a
    /// [`query_key`](crate::query_key)): impressions and exposure on that
    /// query's search pages, and the paid calls that came from them; and
    /// the call rate over everything booked by query.
    pub fn query_evidence_of(&self, query: u64, models: &[ModelKey]) -> (Vec<CallEvidence>, f64) {
        let s = self.state();
        let evidence = models
            .iter()
            .map(|k| {
                let t = s.queries.tally(query, k.0);
                CallEvidence {
                    calls: t.calls,
                    impressions: t.impressions,
                    exposure: t.exposure,
                }
            })
            .collect();
        (evidence, s.queries.call_rate())
    }

    /// Paid calls recorded here for each model key (0 if none).
    pub fn calls_of(&self, models: &[ModelKey]) -> Vec<u64> {
        let s = self.state();
        models
            .iter()
            .map(|k| s.models.earnings.get(&k.0).map_or(0, |e| e.calls))
            .collect()
    }

    /// Every logged page (in page order) and every paid call (in sequence
    /// order) on disk, with the names of keys: what `hubsearch ledger
    /// export` writes.
    pub fn each_logged(
        &self,
        page: impl FnMut(PageLog),
        call: impl FnMut(LoggedCall),
    ) -> Result<(), LedgerError> {
        self.flush()?;
        let names = self.state().names.clone();
        store::each_logged(&self.inner.db, &names, page, call)
    }
}
