//! A search, as stages over one row per candidate (`row.rs`):
//! `retrieve -> candidates -> rank -> page -> record`. Listings that rank
//! (fair browsing) go through the same stages after their own retrieval.

use std::time::Instant;

use hubsearch_core::{Group, Hit, Mode, ModelCard, ModelKey, PolicyKind, SearchRequest};
use hubsearch_index::{FacetCounts, QueryWords, Searcher};
use hubsearch_rank::plackett_luce::sequential_probabilities;
use hubsearch_rank::{blended_merit, rank, Candidate, Policy};
use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ledger::codec::{derived_logits, on_grid};
use crate::ledger::{query_key, Book, CallEvidence, LoggedCandidate, PageLog, ShownLog};
use crate::row::{page_of, ranked_rows, RankedRow, Row};
use crate::snippet::Marker;

/// What a served page's log needs beyond its hits.
pub(crate) struct Served<'a> {
    pub query: &'a str,
    /// The retrieval mode; `None` for a listing.
    pub mode: Option<Mode>,
    pub policy: &'a Policy,
    pub seed: u64,
    /// The whole ranking the page was cut from.
    pub order: &'a [RankedRow<'a>],
}

/// The answer to a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResponse {
    pub query: String,
    /// The retrieval mode used.
    pub mode: Mode,
    /// The policy that ordered the page.
    pub policy: String,
    /// Cards matching the query and filters (exact when `total_exact`; else
    /// the number of candidates retrieved, a lower bound).
    pub total: usize,
    pub total_exact: bool,
    pub hits: Vec<Hit>,
    /// Facet counts over the whole match set.
    pub facets: FacetCounts,
    /// Whether every query word is a word some card contains; when not,
    /// `unknown_words` lists the others, which matched only as a prefix or
    /// as a typo (one edit from 5 characters, two from 9), or not at all
    /// (docs/retrieval.md, Prefixes and typos).
    pub matched_all_words: bool,
    pub unknown_words: Vec<String>,
    /// The ledger's sequence number of this page when it was recorded: a
    /// paid call made from one of its hits may name it (docs/ledger.md).
    pub page_id: Option<u64>,
    pub took_ms: f64,
}

impl Engine {
    /// The policy a request names (or the configured one), with the
    /// configured parameters.
    pub fn policy(&self, kind: Option<PolicyKind>) -> Policy {
        let r = &self.config().ranking;
        Policy::new(kind.unwrap_or(r.policy), r)
    }

    /// Check a page request: `limit` within `search.max_limit`. The one
    /// place paging is validated. A result list with a fixed depth is cut
    /// there: the last page ends at it and a page past it is empty (the
    /// same request is answered, not refused).
    pub fn check_limit(&self, limit: usize) -> Result<()> {
        let max = self.config().search.max_limit;
        if limit == 0 || limit > max {
            return Err(Error::InvalidLimit { max });
        }
        Ok(())
    }

    /// How deep a search's results go: a query's end at the ranked
    /// candidates (`search.candidates`); a search without words is filtered
    /// browsing, whose pages go on past them (docs/api.md, Paging).
    pub fn depth(&self, req: &SearchRequest) -> Option<usize> {
        (!req.is_browsing()).then_some(self.config().search.candidates)
    }

    /// Check a search request against the configured limits.
    pub fn validate(&self, req: &SearchRequest) -> Result<()> {
        let s = &self.config().search;
        if req.query.chars().count() > s.max_query_chars {
            return Err(Error::QueryTooLong {
                max: s.max_query_chars,
            });
        }
        self.check_limit(req.limit)?;
        if let Some(ratio) = req.semantic_ratio {
            // Read in hybrid mode only (the server drops it otherwise).
            let reason = if !(0.0..=1.0).contains(&ratio) {
                Some("must be between 0 and 1")
            } else if req.mode != Mode::Hybrid {
                None
            } else if s.fusion == hubsearch_core::Fusion::Rrf {
                Some("this hub fuses by reciprocal rank (search.fusion = rrf), which has no weight")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::InvalidSemanticRatio { ratio, reason });
            }
        }
        check_filter(&req.filter)
    }

    /// Search: retrieve candidates with relevance in [0, 1], order them by
    /// the policy, read the page's cards and record the page in the ledger.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        let start = Instant::now();
        self.validate(req)?;
        let policy = self.policy(req.policy);
        let searcher = self.text_index().searcher();
        // Retrieve the full candidate depth (not just the page) so ranking sees
        // the same candidates whatever page is asked for.
        let depth = self.config().search.candidates;
        let group = self.config().ranking.group;
        let mut retrieved = self.retrieve(&searcher, req, depth)?;
        self.candidates_for(&mut retrieved.rows, group, Some(&req.query));
        let rows = &retrieved.rows;
        let seed = page_seed(req.seed, &policy);
        let order = self.rank(&policy, rows, group, seed, Book::Search);
        let page = page_of(&order, req.offset, req.limit);
        let first_rank = req.offset.saturating_add(1);
        let mut marker = if page.is_empty() {
            Marker::none()
        } else {
            self.marker(&searcher, req, &retrieved.words, &retrieved.unknown_words)?
        };
        let mut hits = self.marked_hits(&searcher, page, first_rank, &mut marker)?;
        let browsing = req.is_browsing();
        let mut page_id = None;
        // A browsing page wholly past the ranked candidates ranked nobody.
        if req.record && !req.is_abandoned() && !page.is_empty() {
            let seen = req.exposed.unwrap_or(page.len()).min(page.len());
            let served = Served {
                query: &req.query,
                mode: Some(req.mode),
                policy: &policy,
                seed,
                order: &order,
            };
            page_id = Some(self.record(rows, &page[..seen], first_rank, &hits[..seen], &served)?);
        }
        if browsing {
            hits.extend(self.beyond(&searcher, &req.filter, depth, req.offset, req.limit)?);
        }
        Ok(SearchResponse {
            query: req.query.clone(),
            mode: req.effective_mode(),
            policy: policy.name().to_string(),
            total: retrieved.total,
            total_exact: browsing || (req.facets && req.mode == Mode::Text),
            hits,
            facets: retrieved.facets,
            matched_all_words: retrieved.unknown_words.is_empty(),
            unknown_words: retrieved.unknown_words,
            page_id,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Do once what the first search would otherwise pay for, before a
    /// server takes traffic: load the embedder (ONNX Runtime's sessions),
    /// open the index readers' structures a search touches (postings,
    /// fast fields, facets, the doc store), build the name keys, walk the
    /// id dictionary for corrections, and search the vectors. One search
    /// of [`WARM_UP_QUERY`] in the default mode with facets, not recorded,
    /// one suggestion, and the embedder's own warm-up (ONNX: its query
    /// worker). Returns how long it took.
    pub fn warm_up(&self) -> Result<std::time::Duration> {
        let start = Instant::now();
        let mut req = SearchRequest::new(WARM_UP_QUERY, 10);
        req.mode = self.default_mode();
        req.record = false;
        req.facets = true;
        self.search(&req)?;
        self.suggest(WARM_UP_QUERY, 1)?;
        if let Some(sem) = self.semantic() {
            sem.embedder()?.warm_up()?;
        }
        Ok(start.elapsed())
    }

    /// Set what ranking knows of each row (with the paid calls the ledger
    /// recorded), grouped by model or builder. Merit is the calibrated
    /// probability that the card satisfies the query, corrected by its
    /// logged calls (docs/ranking.md, Merit).
    pub fn candidates(&self, rows: &mut [Row], group: Group) {
        self.candidates_for(rows, group, None);
    }

    /// [`Engine::candidates`] for query `query`: merit also weighs the paid
    /// calls that query's own pages gave each model (docs/ranking.md, Merit:
    /// calls by query).
    pub fn candidates_for(&self, rows: &mut [Row], group: Group, query: Option<&str>) {
        let hub = self.hub();
        let keys: Vec<ModelKey> = rows.iter().map(|r| r.facts.id_key).collect();
        let (evidence, hub_rate) = self.ledger().evidence_of(&keys);
        let ranking = &self.config().ranking;
        let k = ranking.ips_impressions;
        let kq = ranking.ips_query_impressions;
        let (by_query, query_rate) = match query {
            Some(q) if kq > 0 => self.ledger().query_evidence_of(query_key(q), &keys),
            _ => (vec![CallEvidence::default(); keys.len()], 0.0),
        };
        let base = crate::hub::base_merits(rows, ranking);
        for (((row, e), q), p) in rows.iter_mut().zip(evidence).zip(by_query).zip(base) {
            let mut c = hub.candidate(&row.facts, row.relevance, e.calls, group);
            let m = blended_merit(p, e.calls, e.impressions, e.exposure, hub_rate, k);
            c.merit = blended_merit(m, q.calls, q.impressions, q.exposure, query_rate, kq);
            // On the grid the page log keeps (2^-15 in [0, 1]): what every
            // policy ranks on is what the log records, exactly.
            c.relevance = on_grid(c.relevance);
            c.merit = on_grid(c.merit);
            c.quantile = on_grid(c.quantile);
            row.candidate = c;
        }
    }

    /// Order candidates (grouped by `group`) under `policy`. `fair` reads a
    /// copy of the ledger's `book` (search's, or fair listings' own) for the
    /// candidates' groups, so no lock is held while ranking.
    pub fn rank<'r>(
        &self,
        policy: &Policy,
        rows: &'r [Row],
        group: Group,
        seed: u64,
        book: Book,
    ) -> Vec<RankedRow<'r>> {
        let cands: Vec<Candidate> = rows.iter().map(|r| r.candidate).collect();
        let groups = cands.iter().map(|c| c.group);
        let book = match (policy.reads_book(), book) {
            (false, _) => Default::default(),
            (true, Book::Search) => {
                let impact = self.config().ranking.impact;
                self.ledger().book_of(group, impact, groups)
            }
            (true, Book::Listing) => self.ledger().listing_book_of(groups),
        };
        ranked_rows(rows, rank(policy, &cands, &book, seed))
    }

    /// The page's hits, with their cards and every score part; snippets
    /// without marks (listings, similar models).
    pub(crate) fn hits(
        &self,
        searcher: &Searcher,
        page: &[RankedRow<'_>],
        first_rank: usize,
    ) -> Result<Vec<Hit>> {
        self.marked_hits(searcher, page, first_rank, &mut Marker::none())
    }

    /// What a query matched, to mark in snippets: its words, the
    /// corrections of those no card has (as the text query reads them),
    /// and the last word while it is being typed.
    fn marker(
        &self,
        searcher: &Searcher,
        req: &SearchRequest,
        words: &QueryWords,
        unknown: &[String],
    ) -> Result<Marker> {
        if req.is_browsing() {
            return Ok(Marker::none());
        }
        let text = self.text_index();
        let mut corrections = Vec::new();
        for w in unknown {
            corrections.extend(text.corrections(searcher, w)?.into_iter().map(|(c, _)| c));
        }
        let q = req.query.trim_end_matches(|c: char| !c.is_alphanumeric());
        let typing = (q.len() == req.query.len())
            .then(|| q.rsplit(|c: char| !c.is_alphanumeric()).next())
            .flatten();
        Ok(Marker::new(words.words(), &corrections, typing))
    }

    /// The page's hits, each with a snippet marked by `marker`, cut from
    /// the snippet texts the index stored with the card.
    fn marked_hits(
        &self,
        searcher: &Searcher,
        page: &[RankedRow<'_>],
        first_rank: usize,
        marker: &mut Marker,
    ) -> Result<Vec<Hit>> {
        let text = self.text_index();
        let card = |m: &mut Marker, ranked: &RankedRow<'_>| -> Result<(ModelCard, String)> {
            let stored = text.stored(searcher, ranked.row.addr)?;
            match stored.texts() {
                Some((desc, body)) => {
                    let formatted = m.formatted_texts(desc, body);
                    Ok((stored.card_without_text()?, formatted))
                }
                // An index built before snippet texts were stored.
                None => {
                    let mut card = stored.card()?;
                    let formatted = m.formatted(&card);
                    card.card_text.clear();
                    Ok((card, formatted))
                }
            }
        };
        let cards: Vec<Result<(ModelCard, String)>> =
            page.iter().map(|r| card(marker, r)).collect();
        let mut hits = Vec::with_capacity(page.len());
        for (i, (ranked, c)) in page.iter().zip(cards).enumerate() {
            let (card, formatted) = c?;
            let row = ranked.row;
            let mut parts = ranked.parts.clone();
            parts.bm25 = row.text.map(|t| t.score);
            parts.bm25_rank = row.text.map(|t| t.rank);
            parts.vector_sim = row.cosine;
            parts.vector_rank = row.vector.map(|v| v.rank);
            hits.push(Hit {
                rank: first_rank + i,
                id: card.id.clone(),
                score: parts.final_score,
                parts,
                card,
                formatted,
            });
        }
        Ok(hits)
    }

    /// Record the shown part of a page (a person saw it) in the ledger,
    /// with its log for off-policy evaluation. What the page adds to the
    /// books is computed from the log alone (`PageRecord::of_log`), here and
    /// on every cluster replica that applies it.
    pub(crate) fn record(
        &self,
        rows: &[Row],
        shown: &[RankedRow<'_>],
        first_rank: usize,
        hits: &[Hit],
        served: &Served<'_>,
    ) -> Result<u64> {
        let log = self.page_log(rows.len(), shown, first_rank, hits, served);
        match self.replicator() {
            Some(r) => {
                let now = hubsearch_core::now_unix();
                r.page(log, now / 3600, now)
            }
            None => Ok(self.ledger().record_log(log)?),
        }
    }

    /// The log of a served page (docs/ledger.md, Page log): every candidate
    /// of the whole ranking in ranked order (the shown items are
    /// `ranked[first_rank - 1..][..shown]`), rounded as its encoding keeps
    /// it; for `stochastic`, the logits and propensities of that rounded
    /// list.
    fn page_log(
        &self,
        candidates: usize,
        shown: &[RankedRow<'_>],
        first_rank: usize,
        hits: &[Hit],
        served: &Served<'_>,
    ) -> PageLog {
        debug_assert!(shown
            .iter()
            .zip(&served.order[first_rank.saturating_sub(1).min(served.order.len())..])
            .all(|(a, b)| a.slot == b.slot));
        let ranked: Vec<LoggedCandidate> = served
            .order
            .iter()
            .map(|r| LoggedCandidate {
                model: r.row.facts.id_key,
                builder: r.row.facts.builder_key,
                relevance: r.row.candidate.relevance,
                merit: r.row.candidate.merit,
                calls: r.row.candidate.calls,
                quantile: r.row.candidate.quantile,
            })
            .collect();
        let book = if served.mode.is_none() {
            // A listing's page (no retrieval mode) goes to listings' book.
            Book::Listing
        } else {
            Book::Search
        };
        let mut log = PageLog {
            query: served.query.to_string(),
            // A listing's page is logged with the mode "listing".
            mode: served.mode.map_or("listing", Mode::as_str).to_string(),
            policy: served.policy.name().to_string(),
            params: served
                .policy
                .params()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            group: self.config().ranking.group.to_string(),
            seed: served.seed,
            candidates,
            shown: shown
                .iter()
                .zip(hits)
                .map(|(r, h)| ShownLog {
                    model: h.card.id.clone().into(),
                    builder: h.card.builder.clone(),
                    rank: h.rank,
                    exposure: 0.0,
                    relevance: r.row.candidate.relevance,
                    score: r.parts.final_score,
                    propensity: None,
                })
                .collect(),
            first_rank,
            book,
            attention: Some(self.attention()),
            ranked,
            ..Default::default()
        };
        log.quantize();
        // Each shown item's exposure, its attention weight (what the books
        // give it, and what a compact page then need not carry).
        log.imply_exposures();
        log.logits = derived_logits(&log.ranked, &log.params, &log.policy);
        if !log.logits.is_empty() {
            let seq = sequential_probabilities(&log.logits);
            for (i, s) in log.shown.iter_mut().enumerate() {
                s.propensity = seq.get(first_rank - 1 + i).copied();
            }
        }
        log
    }
}

/// The query [`Engine::warm_up`] searches: a typo (`serch`: corrections)
/// and a last word being typed (`mod`: completions).
pub const WARM_UP_QUERY: &str = "warm up serch mod";

/// The seed a page is drawn with: the request's, else, for a policy that
/// draws (`stochastic`), a fresh one from the operating system's random
/// source, so that every seedless page is its own draw (its seed is logged
/// with the page, which replays it: docs/ranking.md, Plackett-Luce). Other
/// policies ignore the seed: 0.
fn page_seed(asked: Option<u64>, policy: &Policy) -> u64 {
    match (asked, policy) {
        (Some(seed), _) => seed,
        (None, Policy::Stochastic { .. }) => rand::random(),
        (None, _) => 0,
    }
}

/// Check the values of a filter the index cannot judge: prices must be
/// finite and not negative.
pub(crate) fn check_filter(f: &hubsearch_core::Filter) -> Result<()> {
    for (field, p) in [("min_price", f.price.min), ("max_price", f.price.max)] {
        if p.is_some_and(|p| !p.is_finite() || p < 0.0) {
            return Err(Error::InvalidFilter { field });
        }
    }
    Ok(())
}
