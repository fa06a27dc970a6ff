//! Filters (docs/api.md, Filters) as query clauses: facet selections
//! (any, all, not), Hub tags, numeric and time ranges, id substrings; and
//! the keys of every card a filter passes.

use std::collections::HashSet;
use std::ops::Bound;

use hubsearch_core::{FacetFilter, FacetName, Filter, ModelKey, Range};
use tantivy::collector::DocSetCollector;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption};
use tantivy::{DocAddress, Searcher, Term};

use super::{QueryWords, TextIndex};
use crate::error::{Error, Result};

impl TextIndex {
    /// `text_q` (required) within `filter` (zero-scored clauses).
    pub(super) fn with_filter(
        &self,
        text_q: Option<Box<dyn Query>>,
        filter: &Filter,
    ) -> Result<Box<dyn Query>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        clauses.extend(text_q.map(|q| (Occur::Must, q)));
        for (occur, q) in self.filter_queries(filter)? {
            clauses.push((occur, Box::new(ConstScoreQuery::new(q, 0.0))));
        }
        if clauses.is_empty() {
            return Ok(Box::new(AllQuery));
        }
        if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)),
            ));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// The filter as boolean clauses (docs/api.md, Filters): `Must` for
    /// every selection and range, `MustNot` for every excluded value. A
    /// query of `MustNot` clauses alone matches nothing: callers add a
    /// `Must` (the text, the keys, or every card).
    pub(super) fn filter_queries(&self, filter: &Filter) -> Result<Vec<(Occur, Box<dyn Query>)>> {
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut facets: Vec<(Field, &FacetFilter)> = FacetName::ALL
            .iter()
            .map(|n| {
                (
                    self.fields.facet(n.as_str()).expect("known facet"),
                    filter.facet(*n),
                )
            })
            .collect();
        facets.push((self.fields.f_tag, &filter.tags));
        for (field, sel) in facets {
            let term = |v: &String| Term::from_facet(field, &Facet::from_path([v.as_str()]));
            if !sel.any.is_empty() {
                out.push((
                    Occur::Must,
                    Box::new(TermSetQuery::new(sel.any.iter().map(term))),
                ));
            }
            for v in &sel.all {
                out.push((
                    Occur::Must,
                    Box::new(TermQuery::new(term(v), IndexRecordOption::Basic)),
                ));
            }
            for v in &sel.not {
                out.push((
                    Occur::MustNot,
                    Box::new(TermQuery::new(term(v), IndexRecordOption::Basic)),
                ));
            }
        }
        fn range<T: Copy + std::fmt::Display>(
            r: &Range<T>,
            what: &str,
            ok: impl Fn(T) -> bool,
            term: impl Fn(T) -> Term,
        ) -> Result<Option<Box<dyn Query>>> {
            if r.min.is_none() && r.max.is_none() {
                return Ok(None);
            }
            let bound = |v: Option<T>, end: &str| match v {
                None => Ok(Bound::Unbounded),
                Some(v) if ok(v) => Ok(Bound::Included(term(v))),
                Some(v) => Err(Error::InvalidQuery(format!(
                    "{end}_{what} {v} is not a valid bound"
                ))),
            };
            Ok(Some(Box::new(RangeQuery::new(
                bound(r.min, "min")?,
                bound(r.max, "max")?,
            ))))
        }
        let f = &self.fields;
        let ranges = [
            // `+ 0.0` makes -0 a 0: its term would sort below free models.
            range(&filter.price, "price", f64::is_finite, |v| {
                Term::from_field_f64(f.price, v + 0.0)
            })?,
            range(
                &filter.downloads,
                "downloads",
                |_| true,
                |v| Term::from_field_u64(f.downloads, v),
            )?,
            range(
                &filter.likes,
                "likes",
                |_| true,
                |v| Term::from_field_u64(f.likes, v),
            )?,
            // Absent times are stored as 0: a bound never lets them pass.
            range(
                &with_floor(filter.created),
                "created",
                |_| true,
                |v| Term::from_field_i64(f.created_at, v),
            )?,
            range(
                &with_floor(filter.updated),
                "updated",
                |_| true,
                |v| Term::from_field_i64(f.last_modified, v),
            )?,
        ];
        out.extend(ranges.into_iter().flatten().map(|q| (Occur::Must, q)));
        if let Some(needle) = &filter.id_contains {
            // Every id that contains the text: a scan of the cached ids.
            let searcher = self.searcher();
            let mut terms = Vec::new();
            for seg in 0..searcher.segment_readers().len() {
                for id in self.segment_ids(&searcher, seg as u32)?.ids.iter() {
                    if !id.is_empty() && hubsearch_core::query::id_contains(id, needle) {
                        terms.push(Term::from_field_text(self.fields.id, id));
                    }
                }
            }
            out.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        Ok(out)
    }

    /// Keys of every card that passes `filter` (the vector side's allowed set).
    pub fn filter_keys(&self, searcher: &Searcher, filter: &Filter) -> Result<HashSet<ModelKey>> {
        let query = self.query(searcher, &QueryWords::blank(), filter)?;
        let docs = searcher.search(&query, &DocSetCollector)?;
        let addrs: Vec<DocAddress> = docs.into_iter().collect();
        Ok(self
            .candidate_facts(searcher, &addrs)?
            .into_iter()
            .map(|f| f.id_key)
            .collect())
    }
}

/// A time range whose open lower end is raised to 1: the index stores an
/// absent time as 0, and a card without a time passes no time bound.
fn with_floor(r: Range<i64>) -> Range<i64> {
    if r.min.is_none() && r.max.is_none() {
        return r;
    }
    Range {
        min: Some(r.min.unwrap_or(1).max(1)),
        max: r.max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text_index::testing::{card, index};

    /// Every filter the index runs selects exactly the cards
    /// `Filter::matches` passes (random cards, random filters).
    #[test]
    fn index_filters_agree_with_the_reference() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let tasks = ["translation", "summarization", "fill-mask"];
        let langs = ["en", "de", "fr"];
        let libs = ["transformers", "timm"];
        let days = |d: u64| format!("2022-01-{:02}T00:00:00Z", d + 1);
        let mut cards = Vec::new();
        for i in 0..120 {
            let task = (next(4) > 0).then(|| tasks[next(3) as usize]);
            let ls: Vec<&str> = langs.iter().copied().filter(|_| next(2) == 0).collect();
            let mut c = card(&format!("b{}/m{i}", next(4)), task, &ls, "text");
            c.library = (next(3) > 0).then(|| libs[next(2) as usize].to_string());
            c.license = (next(2) == 0).then(|| "mit".to_string());
            c.datasets = if next(3) == 0 {
                vec!["squad".to_string()]
            } else {
                Vec::new()
            };
            c.tags = if next(2) == 0 {
                vec!["pytorch".to_string()]
            } else {
                Vec::new()
            };
            c.downloads = next(1000);
            c.likes = next(50);
            c.price_usd = (next(2) == 0).then(|| next(100) as f64 / 1000.0);
            c.created_at = (next(4) > 0).then(|| days(next(28)));
            c.last_modified = (next(4) > 0).then(|| days(next(28)));
            cards.push(c);
        }
        let idx = index(&cards);
        let t = |d: u64| hubsearch_core::card::unix_seconds(&days(d));
        for round in 0..300 {
            let mut f = Filter::default();
            let pick = |n: u64, vals: &[&str], next: &mut dyn FnMut(u64) -> u64| -> Vec<String> {
                (0..n)
                    .map(|_| vals[next(vals.len() as u64) as usize].to_string())
                    .collect()
            };
            match next(6) {
                0 => f.task.any = pick(1 + next(2), &tasks, &mut next),
                1 => f.language.not = pick(1, &langs, &mut next),
                2 => f.language.all = pick(2, &langs, &mut next),
                3 => {
                    f.tags.all = pick(
                        1 + next(2),
                        &[
                            "pytorch",
                            "dataset:squad",
                            "license:mit",
                            "en",
                            "translation",
                            "timm",
                        ],
                        &mut next,
                    )
                }
                4 => f.library.any = pick(1, &libs, &mut next),
                _ => f.builder.not = pick(1, &["b0", "b1"], &mut next),
            }
            match next(5) {
                0 => f.downloads.min = Some(next(1000)),
                1 => f.likes.max = Some(next(50)),
                2 => f.created.min = t(next(28)),
                3 => f.updated.max = t(next(28)),
                _ => f.price.max = Some(next(100) as f64 / 1000.0),
            }
            let mut want: Vec<String> = cards
                .iter()
                .filter(|c| f.matches(c))
                .map(|c| c.id.clone())
                .collect();
            want.sort();
            let s = idx.searcher();
            let q = idx.query(&s, &QueryWords::blank(), &f).unwrap();
            let docs = s.search(&q, &DocSetCollector).unwrap();
            let addrs: Vec<DocAddress> = docs.into_iter().collect();
            let mut got = idx.ids_of(&s, &addrs).unwrap();
            got.sort();
            assert_eq!(got, want, "round {round}: {f:?}");
        }
    }
}
