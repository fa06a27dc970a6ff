//! Listings: ranked browsing without a query, for frontends.

use hubsearch_core::{Filter, Group, Mode, ModelKey};
use hubsearch_index::{CandidateFacts, DocAddress, Searcher};
use hubsearch_rank::Policy;

use crate::engine::Engine;
use crate::error::Result;
use crate::ledger::Book;
use crate::row::{in_given_order, page_of, Row};
use crate::search::{SearchResponse, Served};

pub use hubsearch_core::ListingSort;

/// The fast field a listing is ordered by, and whether descending.
fn sort_field(sort: ListingSort) -> (&'static str, bool) {
    match sort {
        ListingSort::Trending | ListingSort::Fair => ("downloads", true),
        ListingSort::Calls => ("paid_calls", true),
        ListingSort::Newest => ("created_at", true),
        ListingSort::Price => ("price", false),
        ListingSort::Likes => ("likes", true),
        ListingSort::Updated => ("last_modified", true),
    }
}

impl Engine {
    /// One page of a listing. `fair` ranks the most popular candidates with
    /// the bounded FairCo controller (`fair_bounded`) over models (every
    /// candidate has merit 1, so the least exposed come first and exposure
    /// rotates across page views) and records the page; the others read the
    /// page straight off a fast field.
    pub fn listing(
        &self,
        filter: &Filter,
        sort: ListingSort,
        offset: usize,
        limit: usize,
        record: bool,
    ) -> Result<SearchResponse> {
        self.listing_in(filter, sort, false, offset, limit, record)
    }

    /// A listing in its sort's order, or reversed (`reverse`, for the sorts
    /// read off a fast field: trending, newest, price, likes, updated; the
    /// ranked `calls` and `fair` keep their order).
    pub fn listing_in(
        &self,
        filter: &Filter,
        sort: ListingSort,
        reverse: bool,
        offset: usize,
        limit: usize,
        record: bool,
    ) -> Result<SearchResponse> {
        let start = std::time::Instant::now();
        self.check_limit(limit)?;
        crate::search::check_filter(filter)?;
        let searcher = self.text_index().searcher();
        // Past the last card there is nothing to list: no collector ever
        // sees an offset beyond the hub's size.
        let offset = offset.min(searcher.num_docs() as usize);
        let (field, desc) = sort_field(sort);
        let desc = desc != (reverse && !matches!(sort, ListingSort::Calls | ListingSort::Fair));
        let mut page_id = None;
        let (hits, total) = if sort == ListingSort::Fair {
            let depth = self.config().search.candidates;
            let (addrs, total) = self
                .text_index()
                .top_by_field(&searcher, filter, field, desc, 0, depth)?;
            let mut rows = self.listed(&searcher, &addrs, true)?;
            self.candidates(&mut rows, Group::Model);
            let policy = Policy::FairBounded {
                lambda: self.config().ranking.bounded_lambda.max(1e-3),
            };
            let order = self.rank(&policy, &rows, Group::Model, 0, Book::Listing);
            let page = page_of(&order, offset, limit);
            let hits = self.hits(&searcher, page, offset.saturating_add(1))?;
            let served = Served {
                query: "",
                mode: None,
                policy: &policy,
                seed: 0,
                order: &order,
            };
            // A page wholly past the fair-ranked candidates ranked nobody.
            if record && !page.is_empty() {
                page_id =
                    Some(self.record(&rows, page, offset.saturating_add(1), &hits, &served)?);
            }
            let mut hits = hits;
            // Past the ranked candidates the listing goes on by downloads:
            // no wall at the candidate depth.
            hits.extend(self.beyond(&searcher, filter, depth, offset, limit)?);
            (hits, total)
        } else {
            let (addrs, total) = if sort == ListingSort::Calls {
                self.most_called(&searcher, filter, offset, limit)?
            } else {
                self.text_index()
                    .top_by_field(&searcher, filter, field, desc, offset, limit)?
            };
            let rows = self.listed(&searcher, &addrs, false)?;
            let hits = self.hits(&searcher, &in_given_order(&rows), offset.saturating_add(1))?;
            (hits, total)
        };
        Ok(SearchResponse {
            query: String::new(),
            mode: Mode::Text,
            policy: format!("listing:{}", sort.as_str()),
            total,
            total_exact: true,
            hits,
            facets: Default::default(),
            matched_all_words: true,
            unknown_words: Vec::new(),
            page_id,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The page `offset..offset + limit` of cards by verified paid calls:
    /// the calls the hub imported with the card (only an admin sets them)
    /// plus those the ledger recorded. Every card the ledger has calls for is
    /// scored, with the cards that lead by imported calls: enough of them
    /// that no card left out could reach the page.
    fn most_called(
        &self,
        searcher: &Searcher,
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<DocAddress>, usize)> {
        let text = self.text_index();
        // Keyed by group key, which for `Group::Model` is the model's key.
        let ledger_calls: std::collections::HashMap<ModelKey, u64> = self
            .ledger()
            .earnings(Group::Model)
            .into_iter()
            .map(|(k, e)| (ModelKey(k), e.calls))
            .collect();
        let mut keys: Vec<ModelKey> = ledger_calls.keys().copied().collect();
        keys.sort_unstable();
        let called: Vec<DocAddress> = text
            .addresses_of(searcher, &keys, filter)?
            .into_iter()
            .flatten()
            .collect();
        let depth = offset.saturating_add(limit).saturating_add(called.len());
        let (top, total) = text.top_by_field(searcher, filter, "paid_calls", true, 0, depth)?;
        let mut addrs: Vec<DocAddress> = top;
        let mut seen: std::collections::HashSet<DocAddress> = addrs.iter().copied().collect();
        let mut extra: Vec<DocAddress> = called.into_iter().filter(|a| seen.insert(*a)).collect();
        extra.sort_unstable();
        addrs.extend(extra);
        let facts = text.candidate_facts(searcher, &addrs)?;
        let mut scored: Vec<(u64, usize, DocAddress)> = facts
            .iter()
            .zip(&addrs)
            .enumerate()
            .map(|(i, (f, a))| {
                let called = ledger_calls.get(&f.id_key).copied().unwrap_or(0);
                let calls = f.paid_calls.saturating_add(called);
                (calls, i, *a)
            })
            .collect();
        // Most calls first; ties keep the index's order.
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let page = scored
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, _, a)| a)
            .collect();
        Ok((page, total))
    }

    /// The part of the page `offset..offset + limit` that lies past the
    /// `depth` ranked cards of a listing (or a search without words): the
    /// cards there in download order, ranked from `depth + 1` on
    /// (docs/api.md, Paging). Empty when the page ends within the depth.
    pub(crate) fn beyond(
        &self,
        searcher: &Searcher,
        filter: &Filter,
        depth: usize,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<hubsearch_core::Hit>> {
        // Past the hub's size every page is empty (and tantivy's top-k
        // sizes its heap by the offset).
        let offset = offset.min(searcher.num_docs() as usize);
        let end = offset.saturating_add(limit);
        if end <= depth {
            return Ok(Vec::new());
        }
        let from = offset.max(depth);
        let (addrs, _) = self.text_index().top_by_field(
            searcher,
            filter,
            "downloads",
            true,
            from,
            end - from,
        )?;
        let rows = self.listed(searcher, &addrs, false)?;
        self.hits(searcher, &in_given_order(&rows), from.saturating_add(1))
    }

    pub(crate) fn listed(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
        facts: bool,
    ) -> Result<Vec<Row>> {
        let facts = if facts {
            self.text_index().candidate_facts(searcher, addrs)?
        } else {
            vec![CandidateFacts::default(); addrs.len()]
        };
        Ok(addrs
            .iter()
            .zip(facts)
            .map(|(a, f)| Row::listed(*a, f))
            .collect())
    }
}
