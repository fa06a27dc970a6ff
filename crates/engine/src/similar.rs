//! Models like this one: the nearest cards to a model's own vector
//! (docs/retrieval.md, Similar models).

use std::collections::HashMap;

use hubsearch_core::{Filter, Mode, ModelKey};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::row::{in_given_order, Row};
use crate::search::SearchResponse;

impl Engine {
    /// The `limit` cards nearest to model `id`'s vector (cosine, by the HNSW
    /// graph), within `filter`, the model itself left out; relevance is the
    /// cosine. A model without a vector yet has no neighbours (an empty
    /// page); a hub without embeddings is `VectorSearchDisabled`. Not
    /// recorded as exposure.
    pub fn similar(&self, id: &str, filter: &Filter, limit: usize) -> Result<SearchResponse> {
        let start = std::time::Instant::now();
        self.check_limit(limit)?;
        crate::search::check_filter(filter)?;
        let card = self.get(id)?;
        let semantic = self.semantic().ok_or(Error::VectorSearchDisabled)?;
        let searcher = self.text_index().searcher();
        let me = ModelKey::of(&card.id);
        let mut rows: Vec<Row> = Vec::new();
        if let Some(v) = semantic.vectors().vector_of(me) {
            let allowed = if filter.is_empty() {
                None
            } else {
                Some(self.text_index().filter_keys(&searcher, filter)?)
            };
            let hits = semantic.vectors().search(&v, limit + 1, allowed.as_ref());
            let keys: Vec<ModelKey> = hits.iter().map(|h| h.id_key).filter(|k| *k != me).collect();
            let addrs = self.text_index().addresses_of(&searcher, &keys, filter)?;
            let sims: HashMap<ModelKey, f32> =
                hits.iter().map(|h| (h.id_key, h.similarity)).collect();
            let ordered: Vec<_> = addrs.into_iter().flatten().collect();
            for (facts, addr) in self
                .text_index()
                .candidate_facts(&searcher, &ordered)?
                .into_iter()
                .zip(ordered)
            {
                let mut f = Row::new(addr, facts);
                f.cosine = sims.get(&facts.id_key).copied();
                f.relevance = f.cosine.map_or(0.0, |c| f64::from(c).clamp(0.0, 1.0));
                rows.push(f);
            }
            rows.truncate(limit);
        }
        let hits = self.hits(&searcher, &in_given_order(&rows), 1)?;
        Ok(SearchResponse {
            query: card.id.clone(),
            mode: Mode::Vector,
            policy: "similar".into(),
            total: hits.len(),
            total_exact: false,
            hits,
            facets: Default::default(),
            matched_all_words: true,
            unknown_words: Vec::new(),
            page_id: None,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }
}
