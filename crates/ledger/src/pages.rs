//! Recording served pages: what a page adds to the accounts, live and from
//! the cluster log.

use hubsearch_rank::{page_delta, Candidate};

use super::store::Event;
use super::{now_secs, Impression, Ledger, LedgerError, LoggedCandidate, PageLog, PageRecord};

impl PageRecord {
    /// What a logged page adds to the books, computed from its log alone
    /// (its ranked candidates, first rank, shown count, book and attention
    /// model): the one function a serving ledger and every cluster replica
    /// use, so they book the same page identically (docs/ledger.md, Page
    /// log). The log's shown exposures are filled in. An error for a log
    /// without a candidate list or attention model (written before they
    /// were logged), or whose shown items are past its candidates.
    pub fn of_log(mut log: PageLog) -> Result<PageRecord, LedgerError> {
        let bad = |why: &str| LedgerError::Db(format!("page {}: {why}", log.page));
        let attention = log
            .attention
            .ok_or_else(|| bad("the log has no attention model"))?;
        if log.ranked.is_empty() || log.first_rank == 0 {
            return Err(bad("the log has no candidate list"));
        }
        let first = log.first_rank - 1;
        let end = first.saturating_add(log.shown.len());
        if end > log.ranked.len() {
            return Err(bad("shown items past the ranked candidates"));
        }
        let shown: Vec<usize> = (first..end).collect();
        let as_group = |group: fn(&LoggedCandidate) -> u64| -> Vec<Candidate> {
            log.ranked.iter().map(|c| c.candidate(group(c))).collect()
        };
        let model_delta = page_delta(&as_group(|c| c.model), &shown, log.first_rank, &attention);
        let builder_delta =
            page_delta(&as_group(|c| c.builder), &shown, log.first_rank, &attention);
        let mut impressions = Vec::with_capacity(shown.len());
        let mut names = Vec::with_capacity(shown.len() * 2);
        for (i, s) in log.shown.iter_mut().enumerate() {
            let c = log.ranked[first + i];
            let exposure = model_delta.get(&c.model).map_or(0.0, |d| d.exposure);
            s.exposure = exposure;
            impressions.push(Impression {
                model: c.model,
                builder: c.builder,
                rank: log.first_rank + i,
                exposure,
            });
            names.push((c.model, s.model.clone()));
            names.push((c.builder, s.builder.clone()));
        }
        let book = log.book;
        Ok(PageRecord {
            impressions,
            model_delta,
            builder_delta,
            names,
            log: Some(Box::new(log)),
            book,
        })
    }
}

impl Ledger {
    /// Record a served page from its log alone ([`PageRecord::of_log`]).
    /// Returns the page's sequence number.
    pub fn record_log(&self, log: PageLog) -> Result<u64, LedgerError> {
        self.record_page(PageRecord::of_log(log)?)
    }

    /// Record a served page whose deltas are already computed.
    /// Returns the page's sequence number (0-based).
    pub fn record_page(&self, mut page: PageRecord) -> Result<u64, LedgerError> {
        let now = now_secs();
        let hour = now / 3600;
        let seq = {
            let mut s = self.state();
            let seq = s.pages;
            if let Some(log) = &mut page.log {
                log.page = seq;
                log.time = now;
            }
            s.apply_page(&page, hour);
            seq
        };
        self.send(Event::Page {
            page,
            hour,
            position: 0,
        })?;
        Ok(seq)
    }

    /// Cluster mode: the last log position applied (docs/cluster.md).
    pub fn position(&self) -> u64 {
        self.state().position
    }

    /// Cluster mode: every log event up to `position` has been applied and
    /// flushed (a snapshot pauses applying first), pages and calls or not:
    /// store it, so a replica started from a copy resumes after it instead
    /// of at its last page or call (which the log may have dropped since).
    pub fn mark_position(&self, position: u64) -> Result<(), LedgerError> {
        self.flush()?;
        super::store::store_position(&self.inner.db, position)?;
        let mut s = self.state();
        s.position = s.position.max(position);
        Ok(())
    }

    /// Cluster mode: apply a served page's log taken from the cluster log at
    /// `position` ([`PageRecord::of_log`] computes what it adds, as on every
    /// replica), as the replica that served it gave it (its page id, hour
    /// and time). Nothing when `position` was applied before.
    pub fn apply_logged_log(
        &self,
        mut log: PageLog,
        page_id: u64,
        hour: u64,
        time: u64,
        position: u64,
    ) -> Result<bool, LedgerError> {
        log.page = page_id;
        log.time = time;
        let page = PageRecord::of_log(log)?;
        self.apply_logged_page(page, page_id, hour, time, position)
    }

    /// Cluster mode: apply a served page taken from the log at `position`,
    /// as the replica that served it gave it (its page id, hour and time).
    /// Nothing when `position` was applied before. Memory now, disk in the
    /// next batch, with the position (a restart resumes after what is on
    /// disk, so every page counts once).
    pub fn apply_logged_page(
        &self,
        mut page: PageRecord,
        page_id: u64,
        hour: u64,
        time: u64,
        position: u64,
    ) -> Result<bool, LedgerError> {
        let Some(mut s) = self.state_past(position) else {
            return Ok(false);
        };
        if let Some(log) = &mut page.log {
            log.page = page_id;
            log.time = time;
        }
        s.apply_page(&page, hour);
        drop(s);
        self.send(Event::Page {
            page,
            hour,
            position,
        })?;
        Ok(true)
    }
}
