//! Listings: ranked browsing without a query, for frontends.

use hubsearch_core::{Filter, Hit, Mode, ScoreParts};
use hubsearch_rank::{rank, Candidate, Policy};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, SearchResponse};
use crate::error::{Error, Result};

/// How a listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListingSort {
    /// Most downloaded (and called) first.
    Trending,
    /// Most paid calls first.
    Calls,
    /// Most recently published first.
    Newest,
    /// Cheapest first.
    Price,
    /// The `fair` policy over the most popular candidates: exposure spread by
    /// merit across every page view.
    Fair,
}

impl std::str::FromStr for ListingSort {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "trending" => ListingSort::Trending,
            "calls" => ListingSort::Calls,
            "newest" => ListingSort::Newest,
            "price" => ListingSort::Price,
            "fair" => ListingSort::Fair,
            other => {
                return Err(format!(
                    "unknown sort {other:?} (expected trending, calls, newest, price or fair)"
                ))
            }
        })
    }
}

impl Engine {
    /// One page of a listing.
    pub fn listing(
        &self,
        filter: &Filter,
        sort: ListingSort,
        offset: usize,
        limit: usize,
    ) -> Result<SearchResponse> {
        let start = std::time::Instant::now();
        let max = self.config().search.max_limit;
        if limit == 0 || limit > max {
            return Err(Error::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {max}"),
            ));
        }
        let searcher = self.text_index().searcher();
        let (field, desc) = match sort {
            ListingSort::Trending | ListingSort::Fair => ("downloads", true),
            ListingSort::Calls => ("paid_calls", true),
            ListingSort::Newest => ("created_at", true),
            ListingSort::Price => ("price", false),
        };
        let (addrs, total, parts_of): (Vec<_>, usize, Vec<ScoreParts>) =
            if sort == ListingSort::Fair {
                // Fair browsing: every candidate has merit 1; the policy puts the
                // least exposed first, so exposure rotates across page views.
                let depth = self.config().search.candidates;
                let (cands_addrs, total) = self
                    .text_index()
                    .top_by_field(&searcher, filter, field, desc, 0, depth)?;
                let facts = self.text_index().candidate_facts(&searcher, &cands_addrs)?;
                let hub = self.hub();
                let cands: Vec<Candidate> = facts
                    .iter()
                    .map(|f| Candidate {
                        relevance: 1.0,
                        calls: f.downloads as f64,
                        quantile: hub.quantile(f.downloads),
                        group: f.id_key,
                        key: f.id_key,
                    })
                    .collect();
                let lambda = self.config().ranking.lambda.max(1e-3);
                let order = self
                    .ledger()
                    .with_books(|models, _| rank(&Policy::Fair { lambda }, &cands, models, 0));
                let page: Vec<_> = order.iter().skip(offset).take(limit).collect();
                let addrs = page.iter().map(|r| cands_addrs[r.index]).collect();
                let parts = page.iter().map(|r| r.parts.clone()).collect();
                let shown: Vec<usize> = page.iter().map(|r| r.index).collect();
                self.record_listing(&cands, &facts, &shown, offset + 1, &searcher, &cands_addrs)?;
                (addrs, total, parts)
            } else {
                let (addrs, total) = self
                    .text_index()
                    .top_by_field(&searcher, filter, field, desc, offset, limit)?;
                let n = addrs.len();
                (
                    addrs,
                    total,
                    vec![
                        ScoreParts {
                            relevance: 1.0,
                            boost: 1.0,
                            final_score: 1.0,
                            ..Default::default()
                        };
                        n
                    ],
                )
            };
        let mut hits = Vec::with_capacity(addrs.len());
        for (i, (addr, parts)) in addrs.iter().zip(parts_of).enumerate() {
            let mut card = self.text_index().card(&searcher, *addr)?;
            card.card_text.clear();
            hits.push(Hit {
                rank: offset + i + 1,
                id: card.id.clone(),
                score: parts.final_score,
                parts,
                card,
            });
        }
        Ok(SearchResponse {
            query: String::new(),
            mode: Mode::Text,
            policy: format!(
                "listing:{}",
                serde_json::to_value(sort)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            total,
            total_exact: true,
            hits,
            facets: Default::default(),
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }
}
