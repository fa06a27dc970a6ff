//! Retrieval: candidates from the text index, the vector index, or both,
//! fused into one list with relevance in [0, 1] (DESIGN.md section 2).

use std::collections::HashMap;

use hubsearch_core::{Mode, SearchRequest};
use hubsearch_index::{CandidateFacts, DocAddress, FacetCounts, Searcher};
use hubsearch_rank::fusion;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// The candidates of one query, in retrieval order (best first).
#[derive(Debug, Default)]
pub struct Retrieved {
    pub addrs: Vec<DocAddress>,
    pub facts: Vec<CandidateFacts>,
    /// (BM25 score, 1-based rank) when the text retriever found it.
    pub bm25: Vec<Option<(f32, usize)>>,
    /// (cosine similarity, 1-based rank) when the vector retriever found it.
    pub vector: Vec<Option<(f32, usize)>>,
    /// Cosine similarity to the query of every candidate with a vector
    /// (exact: text candidates the vector retriever did not reach have one too).
    pub sims: Vec<Option<f32>>,
    /// Fused relevance in [0, 1].
    pub relevance: Vec<f64>,
    pub total: usize,
    pub facets: FacetCounts,
}

impl Engine {
    /// Retrieve `depth` candidates for `req` in its mode.
    pub fn retrieve(
        &self,
        searcher: &Searcher,
        req: &SearchRequest,
        depth: usize,
    ) -> Result<Retrieved> {
        let listing = req.query.trim().is_empty();
        let mode = if listing { Mode::Text } else { req.mode };
        let want_text = mode != Mode::Vector;
        let want_vector = mode != Mode::Text;

        let mut by_key: HashMap<u64, usize> = HashMap::new();
        let mut out = Retrieved::default();
        if want_text {
            let results =
                self.text_index()
                    .search(searcher, &req.query, &req.filter, depth, req.facets)?;
            let addrs: Vec<DocAddress> = results.hits.iter().map(|h| h.addr).collect();
            let facts = self.text_index().candidate_facts(searcher, &addrs)?;
            for (i, (h, f)) in results.hits.iter().zip(facts).enumerate() {
                by_key.insert(f.id_key, out.addrs.len());
                out.addrs.push(h.addr);
                out.facts.push(f);
                out.bm25.push((!listing).then_some((h.score, i + 1)));
                out.vector.push(None);
            }
            out.total = results.total;
            out.facets = results.facets;
        }
        if want_vector {
            let semantic = self.semantic().ok_or_else(|| {
                Error::bad_request(
                    "vector_search_disabled",
                    "vector search needs embeddings (embedding.model = minilm or hash)",
                )
            })?;
            let q = semantic.query_vector(&req.query)?;
            let text_keys: Vec<u64> = out.facts.iter().map(|f| f.id_key).collect();
            out.sims = semantic.vectors().similarities(&q, &text_keys);
            let k = if mode == Mode::Hybrid {
                self.config().search.vector_candidates.min(depth)
            } else {
                depth
            };
            let allowed = if req.filter.is_empty() {
                None
            } else {
                Some(self.text_index().filter_keys(searcher, &req.filter)?)
            };
            let hits = semantic.vectors().search(&q, k, allowed.as_ref());
            let missing: Vec<u64> = hits
                .iter()
                .map(|h| h.id_key)
                .filter(|k| !by_key.contains_key(k))
                .collect();
            let addrs = self
                .text_index()
                .addresses_of(searcher, &missing, &req.filter)?;
            // Facts of the vector-only candidates, read in one pass.
            let new_addrs: Vec<DocAddress> = missing
                .iter()
                .filter_map(|k| addrs.get(k).copied())
                .collect();
            let new_facts = self.text_index().candidate_facts(searcher, &new_addrs)?;
            let mut fresh: HashMap<u64, (DocAddress, CandidateFacts)> = new_facts
                .into_iter()
                .zip(new_addrs)
                .map(|(f, a)| (f.id_key, (a, f)))
                .collect();
            let mut rank = 0;
            for h in &hits {
                let slot = match by_key.get(&h.id_key) {
                    Some(&i) => i,
                    None => {
                        // A vector whose card is gone (or filtered out) is skipped.
                        let Some((addr, facts)) = fresh.remove(&h.id_key) else {
                            continue;
                        };
                        by_key.insert(h.id_key, out.addrs.len());
                        out.addrs.push(addr);
                        out.facts.push(facts);
                        out.bm25.push(None);
                        out.vector.push(None);
                        out.sims.push(Some(h.similarity));
                        out.addrs.len() - 1
                    }
                };
                rank += 1;
                out.vector[slot] = Some((h.similarity, rank));
            }
            if mode == Mode::Vector {
                out.total = out.addrs.len();
            } else {
                out.total = out.total.max(out.addrs.len());
            }
        }
        out.relevance = self.fuse(&out, mode, listing);
        Ok(out)
    }

    fn fuse(&self, r: &Retrieved, mode: Mode, listing: bool) -> Vec<f64> {
        let n = r.addrs.len();
        if listing {
            return vec![1.0; n];
        }
        let s = &self.config().search;
        let bm25: Vec<f64> = r
            .bm25
            .iter()
            .map(|b| b.map_or(0.0, |(x, _)| x as f64))
            .collect();
        let sims: Vec<f64> = r
            .sims
            .iter()
            .map(|v| v.map_or(0.0, |x| x.max(0.0) as f64))
            .collect();
        let mut rel = match mode {
            Mode::Text => bm25,
            Mode::Vector => sims,
            Mode::Hybrid if s.fusion == "rrf" => (0..n)
                .map(|i| {
                    let t = r.bm25[i].map_or(0.0, |(_, rank)| 1.0 / (s.rrf_k + rank as f64));
                    let v = r.vector[i].map_or(0.0, |(_, rank)| 1.0 / (s.rrf_k + rank as f64));
                    t + v
                })
                .collect(),
            Mode::Hybrid if s.fusion == "cosine" => {
                // Text min-max normalised, vector as its raw cosine.
                let t = minmax(&bm25, r.bm25.iter().map(Option::is_some));
                let w = s.vector_weight;
                (0..n).map(|i| (1.0 - w) * t[i] + w * sims[i]).collect()
            }
            Mode::Hybrid => {
                let t = minmax(&bm25, r.bm25.iter().map(Option::is_some));
                let v = minmax(&sims, r.sims.iter().map(Option::is_some));
                let w = s.vector_weight;
                (0..n).map(|i| (1.0 - w) * t[i] + w * v[i]).collect()
            }
        };
        fusion::normalise_by_max(&mut rel);
        rel
    }
}

/// Min-max normalise the present values to [0, 1]; absent ones get 0.
fn minmax(values: &[f64], present: impl Iterator<Item = bool>) -> Vec<f64> {
    let present: Vec<bool> = present.collect();
    let (lo, hi) = values
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (v, _)| {
            (lo.min(*v), hi.max(*v))
        });
    values
        .iter()
        .zip(&present)
        .map(|(v, p)| match (*p, hi > lo) {
            (false, _) => 0.0,
            (true, true) => (v - lo) / (hi - lo),
            (true, false) => 1.0,
        })
        .collect()
}
