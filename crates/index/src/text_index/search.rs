//! Running a query: the top hits by score, the match count, and facet
//! counts (disjunctive for selected facets, cached over the whole hub).

use hubsearch_core::{FacetName, Filter};
use tantivy::collector::{Count, MultiCollector, TopDocs};
use tantivy::query::{AllQuery, Query};
use tantivy::{DocAddress, Searcher};

use super::{FacetCounts, QueryWords, TextHit, TextIndex, TextResults};
use crate::error::Result;
use crate::facets::{ord_values, FlatFacetCounts, OrdValues};
use crate::schema::FACETS;

/// Values shown per facet in a search response.
const FACET_VALUES: usize = 20;

/// The top documents by score (when asked), the match count and the facets.
type Counted = (Vec<(tantivy::Score, DocAddress)>, usize, FacetCounts);

impl TextIndex {
    /// Top `limit` cards by BM25 for `text` within `filter`, with the match
    /// count and, if `with_facets`, facet counts over all matches.
    pub fn search(
        &self,
        searcher: &Searcher,
        text: &QueryWords,
        filter: &Filter,
        limit: usize,
        with_facets: bool,
    ) -> Result<TextResults> {
        if !with_facets {
            let query = self.query(searcher, text, filter)?;
            // Top-k only: cards that cannot make the top k are skipped
            // (`maxscore.rs`).
            let top = TopDocs::with_limit(limit.max(1)).order_by_score();
            let hits: Vec<TextHit> = searcher
                .search(&query, &top)?
                .into_iter()
                .map(|(score, addr)| TextHit { addr, score })
                .collect();
            return Ok(TextResults {
                total: hits.len(),
                hits,
                facets: FacetCounts::new(),
            });
        }
        // One pass for the page (its own when pruned), the count and the
        // unselected facets, one more per selected facet.
        let top = TopDocs::with_limit(limit.max(1));
        let (hits, total, facets) = self.counted(searcher, text, filter, Some(top))?;
        let hits = hits
            .into_iter()
            .map(|(score, addr)| TextHit { addr, score })
            .collect();
        Ok(TextResults {
            hits,
            total,
            facets,
        })
    }

    /// The number of cards matching `query` (= `text` within `filter`) and
    /// the value counts of every facet, each facet counted over the matches
    /// of the filter without its own selection (disjunctive facets,
    /// docs/api.md): a facet's other values stay visible once one is
    /// picked. One pass counts the facets nobody selected; each selected
    /// facet takes one more. No pass scores: the collectors need no scores.
    pub fn disjunctive_facets(
        &self,
        searcher: &Searcher,
        text: &QueryWords,
        filter: &Filter,
    ) -> Result<(usize, FacetCounts)> {
        let (_, total, facets) = self.counted(searcher, text, filter, None)?;
        Ok((total, facets))
    }

    /// [`TextIndex::disjunctive_facets`], with the `top` documents by score
    /// collected in the same pass when asked.
    fn counted(
        &self,
        searcher: &Searcher,
        text: &QueryWords,
        filter: &Filter,
        top: Option<TopDocs>,
    ) -> Result<Counted> {
        // The text's query is built once (its words' document frequencies
        // are read once) and shared by every pass.
        let text_q = self.text_part(searcher, text)?;
        let within = |f: &Filter| self.scored_query(text_q.as_deref(), f);
        let query = within(filter)?;
        // A pruned query finds its top k in a pass of its own (skipping
        // cards that cannot enter it); the counts then need no scores.
        let (top, pruned) = match top {
            Some(t) if self.prunes(text_q.as_deref()) => (None, Some(t)),
            t => (t, None),
        };
        let pruned_hits = match pruned {
            Some(t) => Some(searcher.search(&*query, &t.order_by_score())?),
            None => None,
        };
        let collector = |name: &str| -> Result<FlatFacetCounts> {
            let field = format!("f_{name}");
            let values = self.facet_values(searcher, &field)?;
            Ok(FlatFacetCounts::new(field, FACET_VALUES, values))
        };
        let mut multi = MultiCollector::new();
        let count_handle = multi.add_collector(Count);
        let top_handle = top.map(|t| multi.add_collector(t.order_by_score()));
        let mut handles = Vec::new();
        let mut selected = Vec::new();
        for name in FacetName::ALL {
            if filter.facet(name).is_empty() {
                handles.push((name, multi.add_collector(collector(name.as_str())?)));
            } else {
                selected.push(name);
            }
        }
        let mut fruits = searcher.search(&*query, &multi)?;
        let total = count_handle.extract(&mut fruits);
        let hits = match (top_handle, pruned_hits) {
            (Some(h), _) => h.extract(&mut fruits),
            (None, hits) => hits.unwrap_or_default(),
        };
        let mut facets = FacetCounts::new();
        for (name, handle) in handles {
            facets.insert(name.as_str().to_string(), handle.extract(&mut fruits));
        }
        for name in selected {
            let rest = filter.without(name);
            let counts = if text.is_blank() && rest.is_empty() {
                // A facet over the whole hub: the same until the index
                // changes, so counted once per set of segments.
                // Deletes keep a segment's id: its deleted count (which
                // only grows) tells the versions apart.
                let segments: Vec<_> = searcher
                    .segment_readers()
                    .iter()
                    .map(|r| (r.segment_id(), r.num_deleted_docs()))
                    .collect();
                let mut cache = self.hub_facets.lock().unwrap_or_else(|e| e.into_inner());
                match cache.get(name.as_str()) {
                    Some((segs, counts)) if *segs == segments => counts.clone(),
                    _ => {
                        let counts = searcher.search(&AllQuery, &collector(name.as_str())?)?;
                        cache.insert(name.as_str(), (segments, counts.clone()));
                        counts
                    }
                }
            } else {
                searcher.search(&*within(&rest)?, &collector(name.as_str())?)?
            };
            facets.insert(name.as_str().to_string(), counts);
        }
        Ok((hits, total, facets))
    }

    /// Counts of the `top` most frequent values of every facet among the cards
    /// matching `query`.
    pub fn facet_counts(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        top: usize,
    ) -> Result<FacetCounts> {
        let mut out = FacetCounts::new();
        for name in FACETS {
            let field = format!("f_{name}");
            let values = self.facet_values(searcher, &field)?;
            let c = FlatFacetCounts::new(field, top, values);
            out.insert(name.to_string(), searcher.search(query, &c)?);
        }
        Ok(out)
    }

    /// Per segment of `searcher`, the values of `field`'s facet ordinals,
    /// read once per segment and kept while the segment is searched.
    pub(super) fn facet_values(&self, searcher: &Searcher, field: &str) -> Result<Vec<OrdValues>> {
        let mut cache = self.facet_cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(searcher.segment_readers().len());
        for reader in searcher.segment_readers() {
            let key = (reader.segment_id(), field.to_string());
            let values = match cache.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = ord_values(reader, field)?;
                    cache.insert(key, v.clone());
                    v
                }
            };
            out.push(values);
        }
        if cache.len() > out.len() * FACETS.len() * 2 {
            // Forget segments that are no longer searched.
            let live: std::collections::HashSet<_> = searcher
                .segment_readers()
                .iter()
                .map(|r| r.segment_id())
                .collect();
            cache.retain(|k, _| live.contains(&k.0));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use hubsearch_core::{FacetFilter, Range};

    use super::*;
    use crate::text_index::testing::{card, ids, index};

    #[test]
    fn filters_and_facets() {
        let mut cheap = card("a/x", Some("translation"), &["en"], "translate text");
        cheap.price_usd = Some(0.001);
        let mut dear = card("b/y", Some("translation"), &["en", "de"], "translate text");
        dear.price_usd = Some(0.5);
        let free = card("c/z", Some("summarization"), &["en"], "translate summaries");
        let idx = index(&[cheap, dear, free]);
        let s = idx.searcher();
        let all = idx
            .search(&s, &idx.words("translate"), &Filter::default(), 10, true)
            .unwrap();
        assert_eq!(all.total, 3);
        let task = &all.facets["task"];
        assert_eq!(task[0], ("translation".to_string(), 2));
        assert_eq!(task[1], ("summarization".to_string(), 1));
        let langs: HashMap<_, _> = all.facets["language"].iter().cloned().collect();
        assert_eq!(langs["en"], 3);
        assert_eq!(langs["de"], 1);

        let f = Filter {
            task: FacetFilter::is("translation"),
            price: Range {
                min: None,
                max: Some(0.01),
            },
            ..Default::default()
        };
        assert_eq!(ids(&idx, "translate", &f), ["a/x"]);
        let f = Filter {
            price: Range {
                min: Some(0.01),
                max: None,
            },
            ..Default::default()
        };
        assert_eq!(ids(&idx, "", &f), ["b/y"]);
        let f = Filter {
            language: FacetFilter::is("de"),
            ..Default::default()
        };
        assert_eq!(ids(&idx, "translate", &f), ["b/y"]);
        // Negation alone (no text, no other selection) still lists cards.
        let mut f = Filter::default();
        f.language.not = vec!["de".into()];
        let mut got = ids(&idx, "", &f);
        got.sort();
        assert_eq!(got, ["a/x", "c/z"]);
        // Disjunctive facets: the task counts ignore the task selection,
        // the language counts do not.
        let f = Filter {
            task: FacetFilter::is("summarization"),
            ..Default::default()
        };
        let r = idx
            .search(&s, &idx.words("translate"), &f, 10, true)
            .unwrap();
        assert_eq!(r.total, 1);
        assert_eq!(r.facets["task"][0], ("translation".to_string(), 2));
        assert_eq!(r.facets["language"], [("en".to_string(), 1)]);
        // Filter scores do not change the BM25 order.
        let f = Filter {
            license: FacetFilter::is("mit"),
            ..Default::default()
        };
        let r = idx
            .search(&s, &idx.words("translate"), &f, 10, false)
            .unwrap();
        let r0 = idx
            .search(&s, &idx.words("translate"), &Filter::default(), 10, false)
            .unwrap();
        assert_eq!(
            r.hits.iter().map(|h| h.score).collect::<Vec<_>>(),
            r0.hits.iter().map(|h| h.score).collect::<Vec<_>>()
        );
        let bad = Filter {
            price: Range {
                min: None,
                max: Some(f64::NAN),
            },
            ..Default::default()
        };
        assert!(idx
            .search(&s, &idx.words("translate"), &bad, 10, false)
            .is_err());
    }

    /// Whole-hub counts of a selected facet are cached, and a delete (which
    /// keeps the segment's id) is seen.
    #[test]
    fn hub_facet_counts_follow_deletes() {
        let idx = index(&[
            card("a/x", Some("translation"), &["en"], "t"),
            card("b/y", Some("translation"), &["de"], "t"),
            card("c/z", Some("summarization"), &["en"], "t"),
        ]);
        let f = Filter {
            task: FacetFilter::is("translation"),
            ..Default::default()
        };
        let tasks = |idx: &TextIndex| {
            let s = idx.searcher();
            idx.disjunctive_facets(&s, &QueryWords::blank(), &f)
                .unwrap()
                .1["task"]
                .clone()
        };
        assert_eq!(tasks(&idx)[0], ("translation".to_string(), 2));
        // A card listing a value twice counts once.
        let twice = index(&[card("d/w", None, &["en", "en"], "t")]);
        let s = twice.searcher();
        assert_eq!(
            twice.facet_counts(&s, &AllQuery, 5).unwrap()["language"],
            [("en".to_string(), 1)]
        );
        let mut w = idx.writer(32, 1).unwrap();
        w.delete("b/y");
        w.commit().unwrap();
        idx.reload().unwrap();
        assert_eq!(
            tasks(&idx),
            [
                ("summarization".to_string(), 1),
                ("translation".to_string(), 1)
            ]
        );
    }

    /// Facet counts add up across segments (values merged by name) and
    /// agree with counts the test makes from the cards.
    #[test]
    fn facet_counts_across_segments() {
        let idx = TextIndex::in_ram().unwrap();
        let mut want: HashMap<String, u64> = HashMap::new();
        for round in 0..3 {
            let mut w = idx.writer(32, 1).unwrap();
            for i in 0..20 {
                let builder = format!("b{}", (i * 7 + round) % 9);
                *want.entry(builder.clone()).or_default() += 1;
                w.upsert(&card(
                    &format!("{builder}/m{round}-{i}"),
                    Some("translation"),
                    &[],
                    "x",
                ))
                .unwrap();
            }
            w.commit().unwrap();
        }
        idx.reload().unwrap();
        let s = idx.searcher();
        assert!(s.segment_readers().len() > 1, "several segments");
        let got = idx.facet_counts(&s, &AllQuery, 100).unwrap();
        let got: HashMap<String, u64> = got["builder"].iter().cloned().collect();
        assert_eq!(got, want);
        let top = &idx.facet_counts(&s, &AllQuery, 2).unwrap()["builder"];
        let mut sorted: Vec<(String, u64)> = want.into_iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(top[..], sorted[..2]);
    }
}
