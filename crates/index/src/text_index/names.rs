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

use super::{lookup, TextIndex};
use crate::error::Result;
use crate::facets::OrdValues;

/// Words the last typed word of [`TextIndex::names_containing`] may
/// expand to.
const INFIX_EXPANSIONS: u32 = 200;

/// One segment's name keys, sorted: `keys` holds every key's text one
/// after the other, `entries` (key start, key end, doc id) in key order,
/// `downloads` each entry's card's downloads (a segment's cards never
/// change) and `block_max` the most of each [`BLOCK`] entries, so the most
/// downloaded names under a short prefix (`b`, a million names) are found
/// without reading them all.
#[derive(Debug, Default)]
pub(super) struct NameTable {
    keys: String,
    entries: Vec<(u32, u32, u32)>,
    downloads: Vec<u64>,
    block_max: Vec<u64>,
}

/// Entries per block of [`NameTable::block_max`].
const BLOCK: usize = 64;

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
    /// The table of one segment's ids (by doc id) and their cards'
    /// downloads.
    fn build(ids: &[String], downloads_of: impl Fn(u32) -> u64) -> NameTable {
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
        let downloads: Vec<u64> = entries.iter().map(|e| downloads_of(e.2)).collect();
        let block_max = downloads
            .chunks(BLOCK)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        NameTable {
            keys,
            entries,
            downloads,
            block_max,
        }
    }

    /// The range of entries whose key starts with `prefix`.
    fn range_of(&self, prefix: &str) -> std::ops::Range<usize> {
        let from = self.entries.partition_point(|e| self.key(e) < prefix);
        let to = from + self.entries[from..].partition_point(|e| self.key(e).starts_with(prefix));
        from..to
    }

    /// The `limit` most downloaded live docs whose key starts with
    /// `prefix`, as (downloads, entry index, doc), most downloaded first,
    /// ties in key order, each doc once: the entries of the range read
    /// block by block, best block first, until no unread block can beat
    /// the `limit`-th found.
    fn top(
        &self,
        prefix: &str,
        limit: usize,
        deleted: impl Fn(u32) -> bool,
    ) -> Vec<(u64, usize, u32)> {
        let range = self.range_of(prefix);
        if range.is_empty() || limit == 0 {
            return Vec::new();
        }
        // Whole blocks inside the range, best first; the ends read as they are.
        let (first_full, last_full) = (range.start.div_ceil(BLOCK), range.end / BLOCK);
        let mut blocks: Vec<usize> = (first_full..last_full.max(first_full)).collect();
        blocks.sort_by(|a, b| self.block_max[*b].cmp(&self.block_max[*a]).then(a.cmp(b)));
        let mut found: Vec<(u64, usize, u32)> = Vec::new();
        let read = |from: usize, to: usize, found: &mut Vec<(u64, usize, u32)>| {
            for i in from..to {
                let doc = self.entries[i].2;
                if !deleted(doc) {
                    found.push((self.downloads[i], i, doc));
                }
            }
        };
        let head_end = range.end.min(first_full * BLOCK);
        read(range.start, head_end, &mut found);
        read((last_full * BLOCK).max(head_end), range.end, &mut found);
        let settle = |found: &mut Vec<(u64, usize, u32)>| {
            found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut seen = std::collections::HashSet::new();
            found.retain(|f| seen.insert(f.2));
            found.truncate(limit);
        };
        for b in blocks {
            settle(&mut found);
            // A block whose best is below the limit-th found cannot enter.
            if found.len() == limit && found.last().is_some_and(|f| f.0 > self.block_max[b]) {
                break;
            }
            read(b * BLOCK, (b + 1) * BLOCK, &mut found);
        }
        settle(&mut found);
        found
    }

    fn key(&self, e: &(u32, u32, u32)) -> &str {
        &self.keys[e.0 as usize..e.1 as usize]
    }
}

/// A segment's values of one facet with their name words ([`name_key`]),
/// sorted by those: the values whose words start with a typed prefix are
/// one range of it, found by a binary search instead of a pass over every
/// value (a hub of 2,000,000 cards has hundreds of thousands of builders).
pub(super) struct KeyedValues {
    /// (name key, the value's ordinal), by key.
    keys: Vec<(Box<str>, u32)>,
    values: OrdValues,
}

impl KeyedValues {
    fn build(values: OrdValues) -> KeyedValues {
        let mut keys: Vec<(Box<str>, u32)> = values
            .iter()
            .enumerate()
            .map(|(ord, v)| (name_key(v).into_boxed_str(), ord as u32))
            .collect();
        keys.sort_unstable();
        KeyedValues { keys, values }
    }

    /// The values whose name key starts with `prefix`.
    fn starting<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Arc<str>> + 'a {
        let from = self.keys.partition_point(|(k, _)| &**k < prefix);
        self.keys[from..]
            .iter()
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, ord)| &self.values[*ord as usize])
    }
}

/// Keep `v` in `best`, the `limit` smallest distinct values so far (sorted).
fn keep_smallest(best: &mut Vec<Arc<str>>, v: &Arc<str>, limit: usize) {
    if best.len() == limit && best.last().is_some_and(|last| **v >= **last) {
        return;
    }
    if let Err(at) = best.binary_search_by(|b| (**b).cmp(&**v)) {
        best.insert(at, v.clone());
        best.truncate(limit);
    }
}

impl TextIndex {
    /// The first `limit` builders, in name order and without repeats, whose
    /// name words ([`name_key`]: earlier words whole, the last a prefix)
    /// start with `prefix`, itself a name key. Builders some card has
    /// (a deleted card's may linger until a merge), as the builder facet.
    pub fn builders_starting(
        &self,
        searcher: &Searcher,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut best: Vec<Arc<str>> = Vec::with_capacity(limit + 1);
        if prefix.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        for seg in 0..searcher.segment_readers().len() as u32 {
            // The builder facet's values, as the facet counts read them
            // (one read of a segment's dictionary serves both).
            let table = lookup::cached(&self.builder_cache, searcher, seg, |_| {
                let values = self.facet_values(searcher, "f_builder")?;
                Ok(KeyedValues::build(values[seg as usize].clone()))
            })?;
            for v in table.starting(prefix) {
                keep_smallest(&mut best, v, limit);
            }
        }
        Ok(best.iter().map(|v| v.to_string()).collect())
    }

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
        // (downloads, segment, entry), address: the best of every segment.
        let mut best: Vec<((u64, usize, usize), DocAddress)> = Vec::new();
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let table = self.name_table(searcher, ord as u32)?;
            for (d, i, doc) in table.top(&prefix, limit, |doc| reader.is_deleted(doc)) {
                best.push(((d, ord, i), DocAddress::new(ord as u32, doc)));
            }
        }
        // Most downloaded first; ties: earlier segment, then key order.
        best.sort_by(|a, b| {
            b.0 .0
                .cmp(&a.0 .0)
                .then(a.0 .1.cmp(&b.0 .1))
                .then(a.0 .2.cmp(&b.0 .2))
        });
        Ok(best.into_iter().take(limit).map(|(_, a)| a).collect())
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
        let reader = searcher.segment_reader(seg);
        let downloads = reader.fast_fields().u64("downloads")?;
        let ids = self.segment_ids(searcher, seg)?;
        let table = Arc::new(NameTable::build(&ids.ids, |doc| {
            downloads.first(doc).unwrap_or(0)
        }));
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

    /// The block-by-block top agrees with reading every entry of the
    /// range, on random names, downloads (many ties) and deletions.
    #[test]
    fn top_by_blocks_is_the_top_of_every_entry() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let words = ["bert", "base", "be", "b", "gpt2", "t5", "small", "x"];
        let ids: Vec<String> = (0..3000)
            .map(|_| {
                let n = 1 + next(3) as usize;
                let name: Vec<&str> = (0..n).map(|_| words[next(8) as usize]).collect();
                format!("u{}/{}", next(50), name.join("-"))
            })
            .collect();
        let dl: Vec<u64> = (0..ids.len()).map(|_| next(40)).collect();
        let deleted: Vec<bool> = (0..ids.len()).map(|_| next(10) == 0).collect();
        let t = NameTable::build(&ids, |d| dl[d as usize]);
        for prefix in [
            "b", "be", "bert", "bert b", "u1", "u1 ", "x", "t5 s", "gpt2 x", "zz", "",
        ] {
            for limit in [1, 3, 8, 70, 500] {
                let mut all: Vec<(u64, usize, u32)> = (0..t.entries.len())
                    .filter(|&i| t.key(&t.entries[i]).starts_with(prefix))
                    .map(|i| (dl[t.entries[i].2 as usize], i, t.entries[i].2))
                    .filter(|e| !deleted[e.2 as usize])
                    .collect();
                all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                let mut seen = std::collections::HashSet::new();
                all.retain(|e| seen.insert(e.2));
                all.truncate(limit);
                let got = t.top(prefix, limit, |d| deleted[d as usize]);
                assert_eq!(got, all, "{prefix:?} {limit}");
            }
        }
    }

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

    /// The builders whose name words start with a typed prefix, first in
    /// name order: the same as a filter over every builder of the cards
    /// written (the test's own words: letters and digits, lowercased),
    /// across two segments, repeats counted once.
    #[test]
    fn builders_starting_are_the_first_builders_by_name_with_the_prefix() {
        let builders = [
            "Helsinki-NLP",
            "helsinki-other",
            "google",
            "Google-Research",
            "gpt2-fans",
            "g",
            "_g_x",
            "deepset",
            "Deep-Learning-Lab",
            "x9",
            "ñandu-g",
        ];
        let cards: Vec<hubsearch_core::ModelCard> = builders
            .iter()
            .enumerate()
            .map(|(i, b)| card(&format!("{b}/model-{i}"), None, &[], ""))
            .collect();
        let idx = index(&cards[..6]);
        let mut w = idx.writer(32, 1).unwrap();
        for c in &cards[6..] {
            w.upsert(c).unwrap();
        }
        // A second card of a builder already written: counted once.
        w.upsert(&card("google/another", None, &[], "")).unwrap();
        w.commit().unwrap();
        idx.reload().unwrap();
        let s = idx.searcher();
        assert!(s.segment_readers().len() >= 2);
        let words = |v: &str| -> String {
            let mut out: Vec<String> = Vec::new();
            let mut word = String::new();
            for c in v.chars() {
                if c.is_ascii_alphanumeric() {
                    word.push(c.to_ascii_lowercase());
                } else if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            if !word.is_empty() {
                out.push(word);
            }
            out.join(" ")
        };
        let mut sorted: Vec<&str> = builders.to_vec();
        sorted.sort_unstable();
        for prefix in [
            "g",
            "go",
            "google r",
            "helsinki",
            "helsinki n",
            "deep",
            "x",
            "x9",
            "n",
            "z",
        ] {
            for limit in [1, 2, 3, 10] {
                let want: Vec<String> = sorted
                    .iter()
                    .filter(|b| words(b).starts_with(prefix))
                    .take(limit)
                    .map(|b| b.to_string())
                    .collect();
                assert_eq!(
                    idx.builders_starting(&s, prefix, limit).unwrap(),
                    want,
                    "{prefix:?} {limit}"
                );
            }
        }
        assert!(idx.builders_starting(&s, "", 3).unwrap().is_empty());
    }
}
