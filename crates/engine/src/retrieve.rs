//! The first stage of a search: candidates from the text index, the vector
//! index or both, each with what the retrievers said about it and its fused
//! relevance in [0, 1] (docs/retrieval.md).

use hubsearch_core::{Mode, ModelKey, SearchRequest};
use hubsearch_index::{DocAddress, FacetCounts, QueryWords, Searcher};
use hubsearch_rank::fusion::{self, Evidence, FusionParams};
use rustc_hash::FxHashMap;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::row::{Row, Scored};

/// The candidates of one query, in retrieval order (best first).
#[derive(Debug, Default)]
pub struct Retrieved {
    pub rows: Vec<Row>,
    /// Cards matching the query and filters (a lower bound unless facets
    /// were counted).
    pub total: usize,
    pub facets: FacetCounts,
    /// Query words no card contains (docs/retrieval.md, Prefixes and typos).
    pub unknown_words: Vec<String>,
    /// The query's words as retrieval read them (with the corrections it
    /// found, for the snippets' marks).
    pub words: QueryWords,
}

impl Engine {
    /// Retrieve `depth` candidates for `req` in its mode (a request with no
    /// query words is a listing: text order, relevance 1 for all).
    pub fn retrieve(
        &self,
        searcher: &Searcher,
        req: &SearchRequest,
        depth: usize,
    ) -> Result<Retrieved> {
        let listing = req.is_browsing();
        let mode = req.effective_mode();
        let mut out = Retrieved::default();
        // The query is tokenized here, once, for every part that reads it.
        let words = self.text_index().words(&req.query);
        if !listing {
            out.unknown_words = self.text_index().unknown_words(searcher, &words)?;
        }
        if mode != Mode::Vector {
            self.retrieve_text(searcher, req, &words, depth, &mut out)?;
        }
        out.words = words.clone();
        if mode != Mode::Text {
            self.retrieve_vector(searcher, req, depth, mode, &mut out)?;
        }
        if listing {
            out.rows.iter_mut().for_each(|f| f.relevance = 1.0);
        } else {
            let s = &self.config().search;
            let params = FusionParams {
                fusion: s.fusion,
                vector_weight: req.semantic_ratio.unwrap_or(s.vector_weight),
                rrf_k: s.rrf_k,
            };
            let evidence: Vec<Evidence> = out.rows.iter().map(Row::evidence).collect();
            for (f, r) in out
                .rows
                .iter_mut()
                .zip(fusion::relevance(mode, &evidence, &params))
            {
                f.relevance = r;
            }
            let unfiltered = req.filter == Default::default();
            self.names_first(searcher, &req.query, unfiltered, &mut out)?;
        }
        Ok(out)
    }

    fn retrieve_text(
        &self,
        searcher: &Searcher,
        req: &SearchRequest,
        words: &QueryWords,
        depth: usize,
        out: &mut Retrieved,
    ) -> Result<()> {
        let text = self.text_index();
        if words.is_blank() {
            // Browsing without words: the most downloaded cards are the
            // candidates (exact count; facets as for a search).
            let (addrs, total) =
                text.top_by_field(searcher, &req.filter, "downloads", true, 0, depth)?;
            let facts = text.candidate_facts(searcher, &addrs)?;
            out.rows = addrs
                .iter()
                .zip(facts)
                .map(|(a, f)| Row::new(*a, f))
                .collect();
            out.total = total;
            if req.facets {
                out.facets = text.disjunctive_facets(searcher, words, &req.filter)?.1;
            }
            return Ok(());
        }
        let results = text.search(searcher, words, &req.filter, depth, req.facets)?;
        let addrs: Vec<DocAddress> = results.hits.iter().map(|h| h.addr).collect();
        let facts = text.candidate_facts(searcher, &addrs)?;
        for (i, (h, f)) in results.hits.iter().zip(facts).enumerate() {
            let mut row = Row::new(h.addr, f);
            row.text = Some(Scored {
                score: h.score,
                rank: i + 1,
            });
            out.rows.push(row);
        }
        out.total = results.total;
        out.facets = results.facets;
        Ok(())
    }

    /// Add the vector side: every text candidate's exact cosine, then the
    /// nearest neighbours (hybrid: `search.vector_candidates`; vector mode:
    /// `depth`) that pass the filter.
    fn retrieve_vector(
        &self,
        searcher: &Searcher,
        req: &SearchRequest,
        depth: usize,
        mode: Mode,
        out: &mut Retrieved,
    ) -> Result<()> {
        let semantic = self.semantic().ok_or(Error::VectorSearchDisabled)?;
        let text = self.text_index();
        let q = semantic.query_vector(&req.query)?;
        let text_keys: Vec<ModelKey> = out.rows.iter().map(|f| f.facts.id_key).collect();
        for (f, sim) in out
            .rows
            .iter_mut()
            .zip(semantic.vectors().similarities(&q, &text_keys))
        {
            f.cosine = sim;
        }
        let mut by_key: FxHashMap<ModelKey, usize> =
            text_keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let k = if mode == Mode::Hybrid {
            self.config().search.vector_candidates.min(depth)
        } else {
            depth
        };
        let allowed = if req.filter.is_empty() {
            None
        } else {
            Some(text.filter_keys(searcher, &req.filter)?)
        };
        let hits = semantic.vectors().search(&q, k, allowed.as_ref());
        // Cards only the vector side found: their addresses and facts in
        // one pass, a row for each (none where the card is gone or filtered
        // out), found again by key.
        let mut pending: FxHashMap<ModelKey, usize> = FxHashMap::default();
        let mut missing: Vec<ModelKey> = Vec::new();
        for h in &hits {
            if !by_key.contains_key(&h.id_key) && !pending.contains_key(&h.id_key) {
                pending.insert(h.id_key, missing.len());
                missing.push(h.id_key);
            }
        }
        let addrs = text.addresses_of(searcher, &missing, &req.filter)?;
        let live: Vec<DocAddress> = addrs.iter().flatten().copied().collect();
        let mut facts = text.candidate_facts(searcher, &live)?.into_iter();
        let mut fresh: Vec<Option<Row>> = addrs
            .into_iter()
            .map(|a| a.and_then(|a| Some(Row::new(a, facts.next()?))))
            .collect();
        let mut rank = 0;
        for h in &hits {
            let slot = match by_key.get(&h.id_key) {
                Some(&i) => i,
                None => {
                    // A vector whose card is gone (or filtered out) is skipped.
                    let Some(mut row) = pending.get(&h.id_key).and_then(|&i| fresh[i].take())
                    else {
                        continue;
                    };
                    row.cosine = Some(h.similarity);
                    by_key.insert(h.id_key, out.rows.len());
                    out.rows.push(row);
                    out.rows.len() - 1
                }
            };
            rank += 1;
            out.rows[slot].vector = Some(Scored {
                score: h.similarity,
                rank,
            });
        }
        out.total = if mode == Mode::Vector {
            out.rows.len()
        } else {
            out.total.max(out.rows.len())
        };
        Ok(())
    }
}
