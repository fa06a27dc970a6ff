//! Recording served pages: what a page adds to the accounts, live and from
//! the cluster log.

use hubsearch_rank::{page_delta, Candidate};

use super::state::{Refs, State};
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
        let model_delta = page_delta(&as_group(|c| c.model.0), &shown, log.first_rank, &attention);
        let builder_delta = page_delta(
            &as_group(|c| c.builder.0),
            &shown,
            log.first_rank,
            &attention,
        );
        let mut impressions = Vec::with_capacity(shown.len());
        let names = log.shown_names().map(|(k, n)| (k, n.to_string())).collect();
        for (i, s) in log.shown.iter_mut().enumerate() {
            let c = log.ranked[first + i];
            let exposure = model_delta.get(&c.model.0).map_or(0.0, |d| d.exposure);
            s.exposure = exposure;
            impressions.push(Impression {
                model: c.model,
                builder: c.builder,
                rank: log.first_rank + i,
                exposure,
            });
        }
        let book = log.book;
        Ok(PageRecord {
            impressions,
            model_delta,
            builder_delta,
            names,
            log: Some(Box::new(log)),
            book,
            query: None,
        })
    }
}

impl PageLog {
    /// The names its shown items give their ranked candidates' keys, model
    /// then builder for each: what recording the page adds to the ledger's
    /// names (and so what a later compact page need not repeat).
    pub fn shown_names(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        let first = self.first_rank.saturating_sub(1);
        self.shown
            .iter()
            .zip(self.ranked.iter().skip(first))
            .flat_map(|(s, c)| {
                [
                    (c.model.0, s.model.as_str()),
                    (c.builder.0, s.builder.as_str()),
                ]
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
        let mut s = self.state();
        let seq = s.pages;
        if let Some(log) = &mut page.log {
            log.page = seq;
            log.time = now;
        }
        // Served here: a paid call naming this page is booked under its
        // query (in cluster mode a replica's page ids are its own, so only
        // the pages it served are noted).
        if let Some(q) = self.book_page(&mut s, page, hour, 0, true)? {
            s.queries.note_page(seq, q);
        }
        Ok(seq)
    }

    /// Book a page in memory and queue it for the store, its log as a
    /// compact row; with `assign`, its models without an ordinal get one
    /// first. Under the state's lock, so that pages reach the writer in
    /// the order their ordinals were given. Returns the key of the query
    /// the page was booked under (none for a listing, or once the
    /// per-query book is full).
    fn book_page(
        &self,
        s: &mut State,
        mut page: PageRecord,
        hour: u64,
        position: u64,
        assign: bool,
    ) -> Result<Option<u64>, LedgerError> {
        page.query = page.query_key().filter(|_| s.queries.has_room());
        let query = page.query;
        s.apply_page(&page, hour);
        let mut ordinals = Vec::new();
        let row = page.log.take().map(|log| {
            if assign {
                ordinals = s.ordinals.assign(&log.ranked);
            }
            (log.page, log.encode_compact(&Refs::of(s)))
        });
        self.send(Event::Page {
            page,
            hour,
            position,
            row,
            ordinals,
        })?;
        Ok(query)
    }

    /// A served page's log as a compact page (version 3) against this
    /// ledger's dictionary and names: what a cluster replica appends
    /// (docs/cluster.md, Upgrades). Every replica that applies it has
    /// applied what this one has, so knows every model and name it
    /// refers to.
    pub fn encode_compact(&self, log: &PageLog) -> Vec<u8> {
        let s = self.state();
        log.encode_compact(&Refs::of(&s))
    }

    /// Cluster mode: apply a compact page log (version 3) taken from the
    /// cluster log at `position`, as the replica that served it gave it
    /// (its page id, hour and time): read against this ledger's
    /// dictionary, booked from its log alone ([`PageRecord::of_log`]), its
    /// models given ordinals. Nothing when `position` was applied before.
    pub fn apply_compact_log(
        &self,
        bytes: &[u8],
        page_id: u64,
        hour: u64,
        time: u64,
        position: u64,
    ) -> Result<bool, LedgerError> {
        let mut s = self.state();
        if position <= s.position {
            return Ok(false);
        }
        // Read and booked before the position moves: a page that does not
        // read leaves this replica where it was (and it stops applying).
        let mut log = PageLog::decode_with(bytes, &Refs::of(&s))
            .map_err(|e| LedgerError::Db(format!("log position {position}: {e}")))?;
        log.page = page_id;
        log.time = time;
        let page = PageRecord::of_log(log)?;
        s.position = position;
        self.book_page(&mut s, page, hour, position, true)?;
        Ok(true)
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
        // Pages of event versions 1 and 2 give no ordinals: replicas that
        // applied them before an upgrade gave none either (only compact
        // pages do, and every replica reads those).
        self.book_page(&mut s, page, hour, position, false)?;
        Ok(true)
    }
}
