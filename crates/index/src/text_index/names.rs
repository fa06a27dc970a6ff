//! Names typed half-way (docs/retrieval.md, Prefixes and typos): every
//! card's *name keys* (its whole id's words, and its name's without the
//! author, lowercase ASCII letters and digits joined by single spaces)
//! sorted per segment, so the cards whose name starts with what was typed
//! are one binary search away, and the most downloaded of them one scan of
//! that range. `bert base un` finds `bert-base-uncased`, `sentence tr`
//! `sentence-transformers/...`, however many copies of those names the hub
//! holds and wherever BM25 ranks them.

use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::query::{PhrasePrefixQuery, PhraseQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Order, Searcher, Term};

use super::TextIndex;
use crate::error::Result;

/// Words the last typed word of [`TextIndex::names_containing`] may
/// expand to.
const INFIX_EXPANSIONS: u32 = 200;

/// One segment's name keys, sorted: `keys` holds every key's text one
/// after the other, `entries` (key start, key end, doc id) in key order.
#[derive(Debug, Default)]
pub(super) struct NameTable {
    keys: String,
    entries: Vec<(u32, u32, u32)>,
}

/// A text's name words: its lowercase ASCII letters and digits, split on
/// anything else and joined by single spaces
/// (`Helsinki-NLP/opus-mt-en-de` -> `helsinki nlp opus mt en de`).
pub fn name_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().map(|c| c.to_ascii_lowercase()));
    }
    out
}

impl NameTable {
    /// The table of one segment's ids (by doc id).
    fn build(ids: &[String]) -> NameTable {
        let mut keys = String::new();
        let mut entries = Vec::with_capacity(ids.len() * 2);
        for (doc, id) in ids.iter().enumerate() {
            if id.is_empty() {
                continue;
            }
            let whole = name_key(id);
            let start = keys.len() as u32;
            keys.push_str(&whole);
            entries.push((start, keys.len() as u32, doc as u32));
            if let Some((_, name)) = id.rsplit_once('/') {
                // The name's words are the whole key's last ones.
                let n = name_key(name);
                if !n.is_empty() && n.len() < whole.len() {
                    let end = keys.len() as u32;
                    entries.push((end - n.len() as u32, end, doc as u32));
                }
            }
        }
        let key = |e: &(u32, u32, u32)| &keys[e.0 as usize..e.1 as usize];
        entries.sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.2.cmp(&b.2)));
        NameTable { keys, entries }
    }

    fn key(&self, e: &(u32, u32, u32)) -> &str {
        &self.keys[e.0 as usize..e.1 as usize]
    }

    /// The entries whose key starts with `prefix`, in key order.
    fn starting_with(&self, prefix: &str) -> &[(u32, u32, u32)] {
        let from = self.entries.partition_point(|e| self.key(e) < prefix);
        let len = self.entries[from..]
            .iter()
            .take_while(|e| self.key(e).starts_with(prefix))
            .count();
        &self.entries[from..from + len]
    }
}

impl TextIndex {
    /// The `limit` most downloaded live cards whose whole id's or name's
    /// words start with `typed` (name words as [`name_key`] writes them:
    /// earlier words whole, the last one a prefix), most downloaded first
    /// (ties: the first found).
    pub fn completions(
        &self,
        searcher: &Searcher,
        typed: &str,
        limit: usize,
    ) -> Result<Vec<DocAddress>> {
        let prefix = name_key(typed);
        if prefix.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // (downloads, address), the best `limit` so far, best first.
        let mut best: Vec<(u64, DocAddress)> = Vec::with_capacity(limit + 1);
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let table = self.name_table(searcher, ord as u32)?;
            let downloads = reader.fast_fields().u64("downloads")?;
            for &(_, _, doc) in table.starting_with(&prefix) {
                if reader.is_deleted(doc) {
                    continue;
                }
                let addr = DocAddress::new(ord as u32, doc);
                let d = downloads.first(doc).unwrap_or(0);
                if best.len() == limit && best.last().is_some_and(|b| b.0 >= d) {
                    continue;
                }
                if best.iter().any(|b| b.1 == addr) {
                    continue;
                }
                let at = best.partition_point(|b| b.0 >= d);
                best.insert(at, (d, addr));
                best.truncate(limit);
            }
        }
        Ok(best.into_iter().map(|(_, a)| a).collect())
    }

    /// The `limit` most downloaded live cards whose id has the words of
    /// `typed` in a row anywhere, the last one as a prefix (`minilm l6`
    /// in `sentence-transformers/all-MiniLM-L6-v2`): names matched inside
    /// rather than at their start. Most downloaded first.
    pub fn names_containing(
        &self,
        searcher: &Searcher,
        typed: &str,
        limit: usize,
    ) -> Result<Vec<DocAddress>> {
        let words = crate::analyzer::tokens(&mut self.id_analyzer.clone(), typed);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let terms: Vec<Term> = words
            .iter()
            .map(|w| Term::from_field_text(self.fields.id_text, w))
            .collect();
        let query: Box<dyn Query> = if typed.ends_with(|c: char| c.is_alphanumeric()) {
            let mut q = PhrasePrefixQuery::new(terms);
            q.set_max_expansions(INFIX_EXPANSIONS);
            Box::new(q)
        } else if terms.len() == 1 {
            Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::Basic))
        } else {
            Box::new(PhraseQuery::new(terms))
        };
        let top = TopDocs::with_limit(limit).order_by_fast_field::<u64>("downloads", Order::Desc);
        Ok(searcher
            .search(&query, &top)?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// The values of a facet (`task`, `builder`, `library`, ...) some card
    /// has (deleted cards' values may linger until a merge) that `keep`
    /// accepts, sorted.
    pub fn facet_values_where(
        &self,
        searcher: &Searcher,
        facet: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .facet_values(searcher, &format!("f_{facet}"))?
            .iter()
            .flat_map(|values| values.iter().filter(|v| keep(v)).map(|v| v.to_string()))
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Segment `seg`'s name table, built from its ids once and kept while
    /// the segment is searched.
    fn name_table(&self, searcher: &Searcher, seg: u32) -> Result<Arc<NameTable>> {
        let id = searcher.segment_reader(seg).segment_id();
        if let Some(t) = self
            .name_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(t.clone());
        }
        let table = Arc::new(NameTable::build(&self.segment_ids(searcher, seg)?));
        let mut cache = self.name_cache.lock().unwrap_or_else(|e| e.into_inner());
        super::lookup::keep_live(&mut cache, searcher);
        cache.insert(id, table.clone());
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text_index::testing::{card, index};

    #[test]
    fn name_keys() {
        assert_eq!(
            name_key("Helsinki-NLP/opus-mt-en-de"),
            "helsinki nlp opus mt en de"
        );
        assert_eq!(name_key("  bert--base_Un "), "bert base un");
        assert_eq!(name_key("-/"), "");
    }

    /// The completions of a typed prefix are exactly the cards whose id or
    /// name words start with it (checked against a filter over every card
    /// written in the test), most downloaded first, across segments and
    /// without deleted cards.
    #[test]
    fn completions_are_the_most_downloaded_names_starting_with_the_text() {
        let specs = [
            ("bert-base-uncased", 900),
            ("bert-base-cased", 500),
            ("someone/bert-base-uncased-finetuned", 950),
            ("other/roberta-base", 2000),
            ("bert-large", 10),
            ("bertje/model", 3000),
            ("sentence-transformers/all-MiniLM-L6-v2", 700),
            ("acme/sentence-tr-x", 1),
            ("x/basebert", 5000),
        ];
        let mut cards = Vec::new();
        for (id, d) in specs {
            let mut c = card(id, None, &[], "");
            c.downloads = d;
            cards.push(c);
        }
        let idx = index(&cards[..5]);
        let mut w = idx.writer(32, 1).unwrap();
        for c in &cards[5..] {
            w.upsert(c).unwrap();
        }
        w.delete("bert-base-cased");
        w.commit().unwrap();
        idx.reload().unwrap();
        let s = idx.searcher();
        let got = |typed: &str, k: usize| -> Vec<String> {
            let addrs = idx.completions(&s, typed, k).unwrap();
            idx.ids_of(&s, &addrs).unwrap()
        };
        // The reference: a plain filter and sort over the specs.
        let want = |typed: &str, k: usize| -> Vec<String> {
            let p = typed.to_lowercase();
            let mut v: Vec<(u64, &str)> = specs
                .iter()
                .filter(|(id, _)| *id != "bert-base-cased")
                .filter(|(id, _)| {
                    let name = id.rsplit('/').next().unwrap();
                    let words = |s: &str| s.replace(['-', '/', '_'], " ").to_lowercase();
                    words(id).starts_with(&p) || words(name).starts_with(&p)
                })
                .map(|(id, d)| (*d, *id))
                .collect();
            v.sort_by_key(|b| std::cmp::Reverse(b.0));
            v.into_iter()
                .take(k)
                .map(|(_, id)| id.to_string())
                .collect()
        };
        for typed in [
            "bert base un",
            "bert",
            "bert base",
            "sentence tr",
            "b",
            "zz",
        ] {
            for k in [1, 2, 10] {
                assert_eq!(got(typed, k), want(typed, k), "{typed} {k}");
            }
        }
        assert_eq!(got("bert base un", 10).len(), 2);
        assert_eq!(
            got("Bert-Base-Un", 1),
            ["someone/bert-base-uncased-finetuned"]
        );
        assert!(got("", 5).is_empty());
    }
}
