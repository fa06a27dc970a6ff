//! The ledger's state: exposure, merit, impressions, calls and income per
//! model and builder, in memory. One [`State::apply_page`] and one
//! [`State::apply_call`] do all the accounting: the live ledger applies each
//! event to its state at once, the store applies a batch of events to an
//! empty state to get the batch's delta before writing it, and start-up
//! replays the stored calls through `apply_call` (docs/ledger.md).

use std::collections::HashMap;

use hubsearch_core::{BuilderKey, Group, ModelId, ModelKey};
use hubsearch_rank::{Account, Attention, ExposureBook, PageDelta};
use serde::Serialize;

/// One shown model on a served page.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Impression {
    pub model: ModelKey,
    pub builder: BuilderKey,
    pub rank: usize,
    pub exposure: f64,
}

/// One shown item in a page's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ShownLog {
    /// The model's id.
    pub model: ModelId,
    /// Its builder's name.
    pub builder: String,
    /// 1-based rank.
    pub rank: usize,
    /// The exposure its position gave (the attention model's weight).
    pub exposure: f64,
    /// Its relevance to the query, in [0, 1].
    pub relevance: f64,
    /// The policy's final score.
    pub score: f64,
    /// For stochastic policies: the probability that the policy put this
    /// item at this rank given the items ranked above it (the Plackett-Luce
    /// factor); the product over a page is the probability of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity: Option<f64>,
}

/// What a served page logs for off-policy evaluation (docs/ledger.md, Page
/// log): the query, the policy with its parameters and seed, the shown
/// ranking, and for stochastic policies the propensities and every
/// candidate's logit (enough to recompute any position's marginal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PageLog {
    /// The page's sequence number in the ledger (0-based).
    pub page: u64,
    /// Unix seconds.
    pub time: u64,
    pub query: String,
    /// Retrieval mode, or `listing` for a fair listing.
    pub mode: String,
    pub policy: String,
    pub params: std::collections::BTreeMap<String, f64>,
    /// Fairness groups: model or builder.
    pub group: String,
    pub seed: u64,
    /// Candidates the policy ordered.
    pub candidates: usize,
    pub shown: Vec<ShownLog>,
    /// Stochastic policies: every candidate's logit `r / T`, in the order
    /// of the whole ranking the page was cut from (rank 1 first), so the
    /// shown item at rank j has `logits[j - 1]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logits: Vec<f64>,
    /// 1-based rank of the first shown item (0: a page logged before first
    /// ranks were, read as 1 by nobody: off-policy estimates skip it).
    #[serde(default)]
    pub first_rank: usize,
    /// The book the page was entered in.
    #[serde(default)]
    pub book: Book,
    /// The attention model the page's exposure was computed with (what a
    /// replica recomputes the page's deltas with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Attention>,
    /// Every candidate the policy ordered, in the order of the whole
    /// ranking (rank 1 first): the shown items are
    /// `ranked[first_rank - 1 ..][.. shown.len()]`. Empty in pages logged
    /// before candidate lists were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranked: Vec<LoggedCandidate>,
}

/// One candidate of a logged page: what its model and builder earn and
/// what every target policy that does not read the book ranks on
/// (docs/ledger.md, Page log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LoggedCandidate {
    /// The model's key (the index's `id_key`).
    pub model: ModelKey,
    /// Its builder's key.
    pub builder: BuilderKey,
    /// Relevance to the query in [0, 1] (the stochastic logit is `r / T`).
    pub relevance: f64,
    /// The merit it earned.
    pub merit: f64,
    /// Calls so far (downloads + paid calls): what `popularity` reads.
    pub calls: f64,
    /// Popularity quantile in the hub: what `tail_boost` reads.
    pub quantile: f64,
}

impl LoggedCandidate {
    /// The candidate a policy ranks (or a page's delta books), in fairness
    /// group `group` (its model's or its builder's key).
    pub fn candidate(&self, group: u64) -> hubsearch_rank::Candidate {
        hubsearch_rank::Candidate {
            relevance: self.relevance,
            merit: self.merit,
            calls: self.calls,
            quantile: self.quantile,
            group,
            key: self.model.0,
        }
    }
}

/// The ledger's dictionary of models (docs/ledger.md, Page log): an
/// ordinal for every model a compact page log has named, given in the
/// order pages are recorded (in cluster mode, the log's order: every
/// replica gives the same ordinals), with its builder. Only ever grows.
#[derive(Debug, Default, Clone)]
pub struct Ordinals {
    index: HashMap<ModelKey, u32>,
    entries: Vec<(ModelKey, BuilderKey)>,
}

impl Ordinals {
    /// Models with an ordinal.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Give every ranked model without an ordinal the next one, in rank
    /// order; the entries made, as (ordinal, model key, builder key).
    pub fn assign(&mut self, ranked: &[LoggedCandidate]) -> Vec<(u32, ModelKey, BuilderKey)> {
        let mut made = Vec::new();
        for c in ranked {
            if self.index.contains_key(&c.model) {
                continue;
            }
            // Past u32::MAX models nothing more is given: pages name them
            // in full.
            let Ok(o) = u32::try_from(self.entries.len()) else {
                break;
            };
            self.index.insert(c.model, o);
            self.entries.push((c.model, c.builder));
            made.push((o, c.model, c.builder));
        }
        made
    }

    /// Add a stored entry (loading); an error unless ordinals come 0, 1, ...
    pub fn restore(
        &mut self,
        ordinal: u32,
        model: ModelKey,
        builder: BuilderKey,
    ) -> Result<(), String> {
        if ordinal as usize != self.entries.len() {
            return Err(format!(
                "model ordinal {ordinal} follows {} entries",
                self.entries.len()
            ));
        }
        self.index.insert(model, ordinal);
        self.entries.push((model, builder));
        Ok(())
    }
}

/// The dictionary a compact page log is read and written against: the
/// ledger's ordinals and names.
pub struct Refs<'a> {
    pub ordinals: &'a Ordinals,
    pub names: &'a HashMap<u64, String>,
}

impl<'a> Refs<'a> {
    pub fn of(s: &'a State) -> Refs<'a> {
        Refs {
            ordinals: &s.ordinals,
            names: &s.names,
        }
    }
}

impl crate::codec::Dictionary for Refs<'_> {
    fn ordinal(&self, model: ModelKey) -> Option<u32> {
        self.ordinals.index.get(&model).copied()
    }
    fn entry(&self, ordinal: u32) -> Option<(ModelKey, BuilderKey)> {
        self.ordinals.entries.get(ordinal as usize).copied()
    }
    fn name(&self, key: u64) -> Option<&str> {
        self.names.get(&key).map(String::as_str)
    }
}

/// Which exposure book a page is entered in (docs/ranking.md, One book per
/// purpose). Search pages feed the book search's `fair` policies read;
/// fair listings (every card merit 1, ranked by popularity) keep a book of
/// their own, so browsing never moves search's ordering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Book {
    #[default]
    Search,
    Listing,
}

/// A served page: what was shown, and what every candidate earned in merit.
/// Serializable: in cluster mode pages travel through the log
/// (docs/cluster.md).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct PageRecord {
    pub impressions: Vec<Impression>,
    pub model_delta: PageDelta,
    pub builder_delta: PageDelta,
    /// Names of the keys on the page (model ids, builders).
    pub names: Vec<(u64, String)>,
    /// The page's log, when it has one (pages served to people do).
    pub log: Option<Box<PageLog>>,
    /// The book its deltas go to (older logs without it: search).
    #[serde(default)]
    pub book: Book,
    /// The key of its query ([`query_key`]) under which it is booked by
    /// query, set when it is booked (none for a listing page, or once the
    /// per-query book is full); kept when its log is taken for the store.
    #[serde(skip)]
    pub query: Option<u64>,
}

impl PageRecord {
    /// The key of a search page's query, for the per-query books: `query`
    /// if set, else its log's (none for a listing page or a page without
    /// a log).
    pub fn query_key(&self) -> Option<u64> {
        if self.book != Book::Search {
            return None;
        }
        self.query
            .or_else(|| self.log.as_ref().map(|l| query_key(&l.query)))
    }
}

/// A paid call as the ledger books it.
#[derive(Debug, Clone)]
pub struct CallEntry {
    /// The call's sequence number.
    pub seq: u64,
    pub model: ModelKey,
    pub builder: BuilderKey,
    pub amount_usd: f64,
    /// A retried call with the same key is not counted twice.
    pub idempotency_key: Option<String>,
    /// The page and rank it came from, if known.
    pub origin: Option<super::CallOrigin>,
    /// The key ([`query_key`]) of the query of the page it came from, when
    /// the ledger that recorded it served that page (docs/ranking.md,
    /// Merit: calls by query).
    pub query: Option<u64>,
}

/// Calls and income of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Earnings {
    pub calls: u64,
    pub income_usd: f64,
}

/// Exposure, merit, rounds and impressions of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    pub exposure: f64,
    pub merit: f64,
    /// Served pages on which the key had a candidate.
    pub rounds: u64,
    pub impressions: u64,
}

/// The call an idempotency key recorded: a retry must name the same model
/// and amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keyed {
    pub seq: u64,
    pub model: ModelKey,
    pub amount_usd: f64,
}

/// Everything the ledger knows of one kind of key (models, or builders).
#[derive(Debug, Default)]
pub struct Accounts {
    /// Exposure and merit (what the `fair` policy reads).
    pub book: ExposureBook,
    pub impressions: HashMap<u64, u64>,
    pub earnings: HashMap<u64, Earnings>,
}

impl Accounts {
    /// Exposure, merit and impressions of `key`.
    pub fn tally(&self, key: u64) -> Tally {
        let a = self.book.get(key);
        Tally {
            exposure: a.exposure,
            merit: a.merit,
            rounds: a.rounds,
            impressions: self.impressions.get(&key).copied().unwrap_or(0),
        }
    }

    /// Every key with an exposure, merit or impression entry, and its tally.
    pub fn tallies(&self) -> impl Iterator<Item = (u64, Tally)> + '_ {
        let mut keys: Vec<u64> = self.book.iter().map(|(k, _)| *k).collect();
        keys.extend(self.impressions.keys());
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().map(|k| (k, self.tally(k)))
    }

    /// Set a key's totals (loading from the store).
    pub fn restore(&mut self, key: u64, t: Tally) {
        let a = Account {
            exposure: t.exposure,
            merit: t.merit,
            rounds: t.rounds,
            impact: 0.0,
        };
        self.book.set(key, a);
        self.impressions.insert(key, t.impressions);
    }

    fn add_call(&mut self, key: u64, amount_usd: f64) {
        let e = self.earnings.entry(key).or_default();
        e.calls += 1;
        e.income_usd += amount_usd;
    }
}

/// What the ledger has logged of one model under one query: its
/// impressions, their exposure, and the paid calls that came from pages of
/// that query (docs/ranking.md, Merit: calls by query).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryTally {
    pub impressions: u64,
    pub exposure: f64,
    pub calls: u64,
}

/// The key of a query for the per-query books: its words, lowercased and
/// joined by one space, through [`hubsearch_core::card::key_of`]. Two queries that
/// differ only in case or spacing share their books.
pub fn query_key(query: &str) -> u64 {
    let mut words = String::with_capacity(query.len());
    for w in query.split_whitespace() {
        if !words.is_empty() {
            words.push(' ');
        }
        words.extend(w.chars().flat_map(char::to_lowercase));
    }
    hubsearch_core::card::key_of(&words)
}

/// How many recent pages served here the ledger remembers the query of
/// (what a paid call naming its page is booked under).
pub const PAGE_QUERIES: usize = 1 << 18;

/// The most (query, model) pairs the per-query book takes: about 100-200
/// MB in memory. Once it holds them, later pages are booked under no
/// query (their pairs, new or not, gain nothing), so memory stays bounded
/// on a hub with millions of distinct queries (docs/ledger.md).
pub const MAX_QUERY_PAIRS: usize = 2_000_000;

/// Impressions, exposure and calls per (query, model), and the query of the
/// pages served here lately (docs/ranking.md, Merit: calls by query).
#[derive(Debug, Default)]
pub struct QueryBook {
    pub pairs: HashMap<(u64, u64), QueryTally>,
    /// The exposure and the calls booked by query, over all pairs: the
    /// call rate a pair's own is compared with.
    pub exposure: f64,
    pub calls: u64,
    /// Slot `page % PAGE_QUERIES`: (page id, query key); `None` empty.
    pages: Vec<Option<(u64, u64)>>,
}

impl QueryBook {
    /// Remember that page `page`, served here, answered query `query`.
    pub fn note_page(&mut self, page: u64, query: u64) {
        let slot = (page % PAGE_QUERIES as u64) as usize;
        if self.pages.len() <= slot {
            let len = (slot + 1).next_power_of_two().min(PAGE_QUERIES);
            self.pages.resize(len, None);
        }
        self.pages[slot] = Some((page, query));
    }

    /// The query key of page `page`, if it was served here lately.
    pub fn query_of_page(&self, page: u64) -> Option<u64> {
        let slot = (page % PAGE_QUERIES as u64) as usize;
        match self.pages.get(slot) {
            Some(Some((p, q))) if *p == page => Some(*q),
            _ => None,
        }
    }

    /// Calls per unit of exposure over everything booked by query (0
    /// before any call was): what a pair's rate is relative to. Calls that
    /// name no page, or a page not served here lately, count in the hub's
    /// rate but not in this one, so they neither raise nor lower a pair.
    pub fn call_rate(&self) -> f64 {
        if self.exposure > 0.0 {
            self.calls as f64 / self.exposure
        } else {
            0.0
        }
    }

    /// Whether a call of `model` from a page of `query` can be booked
    /// under it: the model was shown on that query's pages.
    pub fn shown(&self, query: u64, model: u64) -> bool {
        self.pairs
            .get(&(query, model))
            .is_some_and(|t| t.impressions > 0)
    }

    /// Whether a page may still be booked by query ([`MAX_QUERY_PAIRS`]).
    pub fn has_room(&self) -> bool {
        self.pairs.len() < MAX_QUERY_PAIRS
    }

    /// The tally of `model` under `query`.
    pub fn tally(&self, query: u64, model: u64) -> QueryTally {
        self.pairs.get(&(query, model)).copied().unwrap_or_default()
    }
}

/// The whole ledger in memory.
#[derive(Debug, Default)]
pub struct State {
    pub models: Accounts,
    pub builders: Accounts,
    /// Fair listings' own book of models (exposure, merit, rounds; its page
    /// count is the listing pages served).
    pub listing: ExposureBook,
    /// (hour since the epoch, model key) -> exposure in that hour.
    pub hourly: HashMap<(u64, u64), f64>,
    /// key -> model id or builder name.
    pub names: HashMap<u64, String>,
    /// The dictionary of models compact page logs refer to (an empty one
    /// in a batch's delta: the store is handed the entries a page made).
    pub ordinals: Ordinals,
    /// idempotency key -> the call it recorded.
    pub idempotency: HashMap<String, Keyed>,
    pub next_call: u64,
    pub pages: u64,
    /// Cluster mode: the last log position applied (0 = none;
    /// docs/cluster.md). Stored with the batch that applies it.
    pub position: u64,
    /// Cluster mode, in memory: idempotency key -> the log position of the
    /// call that recorded it (how a replica tells its caller whether its
    /// call counted).
    pub logged_keys: HashMap<String, u64>,
    /// All models' exposure and paid calls (the hub's call rate).
    pub total_exposure: f64,
    pub total_calls: u64,
    /// Search pages' impressions and calls by (query, model).
    pub queries: QueryBook,
}

impl State {
    /// The accounts of models or of builders.
    pub fn accounts(&self, group: Group) -> &Accounts {
        match group {
            Group::Model => &self.models,
            Group::Builder => &self.builders,
        }
    }

    /// Paid calls per unit of exposure over all models (0 before any
    /// exposure).
    pub fn call_rate(&self) -> f64 {
        if self.total_exposure > 0.0 {
            self.total_calls as f64 / self.total_exposure
        } else {
            0.0
        }
    }

    /// Book a served page (served in `hour`).
    pub fn apply_page(&mut self, page: &PageRecord, hour: u64) {
        match page.book {
            Book::Search => {
                self.models.book.apply(&page.model_delta);
                self.builders.book.apply(&page.builder_delta);
            }
            Book::Listing => self.listing.apply(&page.model_delta),
        }
        for imp in &page.impressions {
            if let Some(q) = page.query {
                let t = self.queries.pairs.entry((q, imp.model.0)).or_default();
                t.impressions += 1;
                t.exposure += imp.exposure;
                self.queries.exposure += imp.exposure;
            }
            self.total_exposure += imp.exposure;
            *self.models.impressions.entry(imp.model.0).or_default() += 1;
            *self.builders.impressions.entry(imp.builder.0).or_default() += 1;
            *self.hourly.entry((hour, imp.model.0)).or_default() += imp.exposure;
        }
        for (k, n) in &page.names {
            self.name(*k, n);
        }
        self.pages += 1;
    }

    /// Take back a page booked by [`State::apply_page`] (its commit failed).
    pub fn unapply_page(&mut self, page: &PageRecord, hour: u64) {
        match page.book {
            Book::Search => {
                self.models.book.unapply(&page.model_delta);
                self.builders.book.unapply(&page.builder_delta);
            }
            Book::Listing => self.listing.unapply(&page.model_delta),
        }
        for imp in &page.impressions {
            if let Some(t) = page
                .query
                .and_then(|q| self.queries.pairs.get_mut(&(q, imp.model.0)))
            {
                t.impressions = t.impressions.saturating_sub(1);
                t.exposure -= imp.exposure;
                self.queries.exposure -= imp.exposure;
            }
            self.total_exposure -= imp.exposure;
            for (map, key) in [
                (&mut self.models.impressions, imp.model.0),
                (&mut self.builders.impressions, imp.builder.0),
            ] {
                if let Some(n) = map.get_mut(&key) {
                    *n = n.saturating_sub(1);
                }
            }
            if let Some(e) = self.hourly.get_mut(&(hour, imp.model.0)) {
                *e -= imp.exposure;
            }
        }
        self.pages = self.pages.saturating_sub(1);
    }

    /// Book a paid call.
    pub fn apply_call(&mut self, call: &CallEntry) {
        self.models.add_call(call.model.0, call.amount_usd);
        self.total_calls += 1;
        if let Some(q) = call.query {
            self.queries
                .pairs
                .entry((q, call.model.0))
                .or_default()
                .calls += 1;
            self.queries.calls += 1;
        }
        self.builders.add_call(call.builder.0, call.amount_usd);
        if let Some(k) = &call.idempotency_key {
            let keyed = Keyed {
                seq: call.seq,
                model: call.model,
                amount_usd: call.amount_usd,
            };
            self.idempotency.insert(k.clone(), keyed);
        }
        self.next_call = self.next_call.max(call.seq + 1);
    }

    /// Remember a key's name unless it has one.
    pub fn name(&mut self, key: u64, name: &str) {
        self.names.entry(key).or_insert_with(|| name.to_string());
    }
}
