//! Lookups by address, id or key: stored cards, the fast-field facts
//! ranking reads per candidate, ids (from a per-segment cache), cards
//! ordered by a fast field, and hub-wide columns.

use std::collections::HashMap;
use std::sync::Arc;

use hubsearch_core::{BuilderKey, Filter, ModelCard, ModelKey};
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::{CandidateFacts, QueryWords, SegmentCache, TextIndex};
use crate::error::{Error, Result};

impl TextIndex {
    /// The stored card at `addr`.
    pub fn card(&self, searcher: &Searcher, addr: DocAddress) -> Result<ModelCard> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let src = doc
            .get_first(self.fields.source)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Corrupt(format!("document {addr:?} has no source")))?;
        serde_json::from_str(src).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// The stored document at `addr`: its card and, when the index stored
    /// them, its snippet texts.
    pub fn stored(&self, searcher: &Searcher, addr: DocAddress) -> Result<StoredCard> {
        Ok(StoredCard {
            doc: searcher.doc(addr)?,
            source: self.fields.source,
            addr,
        })
    }

    /// What ranking reads of each candidate, from fast fields only (no
    /// doc-store reads): cheap enough for hundreds of candidates per query.
    pub fn candidate_facts(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
    ) -> Result<Vec<CandidateFacts>> {
        let mut cols = PerSegment::default();
        let mut out = Vec::with_capacity(addrs.len());
        for a in addrs {
            let c = cols.get(a.segment_ord, |seg| self.fact_columns(searcher, seg))?;
            out.push(CandidateFacts {
                id_key: ModelKey(c[0].first(a.doc_id).unwrap_or(0)),
                builder_key: BuilderKey(c[1].first(a.doc_id).unwrap_or(0)),
                downloads: c[2].first(a.doc_id).unwrap_or(0),
                paid_calls: c[3].first(a.doc_id).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Cards passing `filter`, ordered by a fast field (`downloads`,
    /// `paid_calls`, `created_at`, `last_modified`, `price`), `offset`..`offset+limit`.
    pub fn top_by_field(
        &self,
        searcher: &Searcher,
        filter: &Filter,
        field: &str,
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<DocAddress>, usize)> {
        use tantivy::Order;
        let query = self.query(searcher, &QueryWords::blank(), filter)?;
        let order = if descending { Order::Desc } else { Order::Asc };
        // The collector allocates offset + limit slots: never more than the
        // index holds, whatever a client asks for.
        let max = searcher.num_docs() as usize;
        let top = TopDocs::with_limit(limit.clamp(1, max.max(1))).and_offset(offset.min(max));
        let addrs: Vec<DocAddress> = match field {
            "downloads" | "paid_calls" | "likes" => searcher
                .search(&query, &top.order_by_fast_field::<u64>(field, order))?
                .into_iter()
                .map(|(_, a)| a)
                .collect(),
            "created_at" | "last_modified" => searcher
                .search(&query, &top.order_by_fast_field::<i64>(field, order))?
                .into_iter()
                .map(|(_, a)| a)
                .collect(),
            "price" => searcher
                .search(&query, &top.order_by_fast_field::<f64>(field, order))?
                .into_iter()
                .map(|(_, a)| a)
                .collect(),
            other => return Err(Error::InvalidQuery(format!("cannot sort by {other}"))),
        };
        let total = searcher.search(&query, &Count)?;
        Ok((addrs, total))
    }

    /// Where the card of each key is: `out[i]` for `keys[i]`, `None` where
    /// no live card has that key or it does not pass `filter`.
    pub fn addresses_of(
        &self,
        searcher: &Searcher,
        keys: &[ModelKey],
        filter: &Filter,
    ) -> Result<Vec<Option<DocAddress>>> {
        let mut out = vec![None; keys.len()];
        if keys.is_empty() {
            return Ok(out);
        }
        if filter.is_empty() {
            // A look-up per key and segment in the segment's key table
            // (built once per segment from the id_key fast field): a
            // term-dictionary lookup per key cost ~1 µs each, and vector
            // search asks for hundreds.
            // Two passes a segment: every key's directory slot, then the
            // pairs in each, so the reads of different keys overlap.
            for (ord, seg) in searcher.segment_readers().iter().enumerate() {
                let table = self.segment_keys(searcher, ord as u32)?;
                let slots: Vec<std::ops::Range<usize>> =
                    keys.iter().map(|k| table.slot(k.0)).collect();
                for ((out, &k), slot) in out.iter_mut().zip(keys).zip(slots) {
                    for (_, doc) in table.docs_in(slot, k.0) {
                        if !seg.is_deleted(doc) {
                            *out = Some(DocAddress::new(ord as u32, doc));
                        }
                    }
                }
            }
            return Ok(out);
        }
        let set = TermSetQuery::new(
            keys.iter()
                .map(|k| Term::from_field_u64(self.fields.id_key, k.0)),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(set))];
        clauses.extend(self.filter_queries(filter)?);
        let docs = searcher.search(&BooleanQuery::new(clauses), &DocSetCollector)?;
        let addrs: Vec<DocAddress> = docs.into_iter().collect();
        let facts = self.candidate_facts(searcher, &addrs)?;
        let found: HashMap<ModelKey, DocAddress> = facts
            .into_iter()
            .zip(addrs)
            .map(|(f, a)| (f.id_key, a))
            .collect();
        for (slot, k) in out.iter_mut().zip(keys) {
            *slot = found.get(k).copied();
        }
        Ok(out)
    }

    /// Fast-field facts of every live card (hub-wide popularity, stats).
    pub fn all_facts(&self) -> Result<Vec<CandidateFacts>> {
        let searcher = self.searcher();
        let mut addrs = Vec::with_capacity(searcher.num_docs() as usize);
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            addrs.extend(seg.doc_ids_alive().map(|d| DocAddress::new(ord as u32, d)));
        }
        self.candidate_facts(&searcher, &addrs)
    }

    /// The ids of cards at `addrs`, from a per-segment cache of every id
    /// (segments are immutable: a segment's ids are read once, in one
    /// sorted pass over its id dictionary, and dropped when the segment
    /// leaves the index).
    pub fn ids_of(&self, searcher: &Searcher, addrs: &[DocAddress]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(addrs.len());
        self.each_id(searcher, addrs, None, |_, id| out.push(id.to_string()))?;
        Ok(out)
    }

    /// Call `f(i, id)` for each card at `addrs[i]`, in order, without
    /// copying the ids (see [`TextIndex::ids_of`]). With `first_word` (one
    /// lowercase name word, as [`name_key`](super::names::name_key) writes
    /// them), the cards whose id's first word and whose name's (the id
    /// after its last `/`) are both another word are passed over by a hash
    /// of those words, without reading their ids (names first asks this
    /// of hundreds of candidates per query). A hash can collide: `f` may
    /// still see ids without the word, and must compare them itself.
    pub fn each_id(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
        first_word: Option<&str>,
        mut f: impl FnMut(usize, &str),
    ) -> Result<()> {
        let wanted = first_word.map(first_word_hash);
        let mut segs = PerSegment::default();
        for (i, a) in addrs.iter().enumerate() {
            let ids = segs.get(a.segment_ord, |seg| self.segment_ids(searcher, seg))?;
            let doc = a.doc_id as usize;
            if let Some(h) = wanted {
                if !ids.heads.get(doc).is_some_and(|p| p.contains(&h)) {
                    continue;
                }
            }
            f(i, ids.ids.get(doc).map_or("", String::as_str));
        }
        Ok(())
    }

    /// Every id of one segment, by doc id, with the hashes of their first
    /// words (cached).
    pub(super) fn segment_ids(&self, searcher: &Searcher, seg: u32) -> Result<Arc<SegmentIds>> {
        cached(&self.id_cache, searcher, seg, |reader| {
            let mut ids = vec![String::new(); reader.max_doc() as usize];
            if let Some(col) = reader.fast_fields().str("id")? {
                let mut by_ord: Vec<(u64, u32)> = (0..reader.max_doc())
                    .filter_map(|d| col.term_ords(d).next().map(|o| (o, d)))
                    .collect();
                by_ord.sort_unstable();
                let mut ords: Vec<u64> = by_ord.iter().map(|(o, _)| *o).collect();
                ords.dedup();
                let mut names = Vec::with_capacity(ords.len());
                col.dictionary()
                    .sorted_ords_to_term_cb(&ords, |b| {
                        names.push(String::from_utf8_lossy(b).into_owned())
                    })
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                let mut k = 0;
                for (ord, d) in by_ord {
                    while ords[k] != ord {
                        k += 1;
                    }
                    ids[d as usize] = names.get(k).cloned().unwrap_or_default();
                }
            }
            let heads = ids.iter().map(|id| first_word_hashes(id)).collect();
            Ok(SegmentIds { ids, heads })
        })
    }

    /// Segment `seg`'s columns of candidate facts (id key, builder key,
    /// downloads, paid calls), opened once per segment and cached: opening
    /// a column reads its header, which a search paid four times a segment.
    fn fact_columns(&self, searcher: &Searcher, seg: u32) -> Result<Arc<FactColumns>> {
        cached(&self.fact_cache, searcher, seg, |reader| {
            let ff = reader.fast_fields();
            Ok([
                ff.u64("id_key")?,
                ff.u64("builder_key")?,
                ff.u64("downloads")?,
                ff.u64("paid_calls")?,
            ])
        })
    }

    /// Segment `seg`'s key table: its (id key, doc id) pairs, every doc
    /// (deleted ones too: callers check), cached per segment like the ids.
    fn segment_keys(&self, searcher: &Searcher, seg: u32) -> Result<Arc<KeyTable>> {
        cached(&self.key_cache, searcher, seg, |reader| {
            let col = reader.fast_fields().u64("id_key")?;
            let pairs: Vec<(u64, u32)> = (0..reader.max_doc())
                .filter_map(|d| col.first(d).map(|k| (k, d)))
                .collect();
            Ok(KeyTable::new(pairs))
        })
    }

    /// The addresses of live cards whose id is exactly one of `ids` (one
    /// per id found, in `ids`' order): looked up by the id's key, each
    /// checked against the id itself.
    pub fn find_ids(&self, searcher: &Searcher, ids: &[String]) -> Result<Vec<DocAddress>> {
        let keys: Vec<ModelKey> = ids.iter().map(|id| ModelKey::of(id)).collect();
        let addrs = self.addresses_of(searcher, &keys, &Filter::default())?;
        let asked: Vec<(&String, DocAddress)> = ids
            .iter()
            .zip(addrs)
            .filter_map(|(id, a)| Some((id, a?)))
            .collect();
        let at: Vec<DocAddress> = asked.iter().map(|(_, a)| *a).collect();
        let mut out = Vec::with_capacity(at.len());
        self.each_id(searcher, &at, None, |i, found| {
            if found == asked[i].0 {
                out.push(asked[i].1);
            }
        })?;
        Ok(out)
    }

    /// The card with this id, if indexed.
    pub fn get(&self, id: &str) -> Result<Option<(DocAddress, ModelCard)>> {
        let searcher = self.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        let top = searcher.search(&q, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            None => Ok(None),
            Some(&(_, addr)) => Ok(Some((addr, self.card(&searcher, addr)?))),
        }
    }

    /// Id -> content hash of every live card (to skip unchanged re-imports).
    pub fn content_hashes(&self) -> Result<HashMap<String, u64>> {
        let searcher = self.searcher();
        let mut out = HashMap::with_capacity(searcher.num_docs() as usize);
        for seg in searcher.segment_readers() {
            let ff = seg.fast_fields();
            let Some(ids) = ff.str("id")? else { continue };
            let hashes = ff.u64("content_hash")?;
            let mut buf = String::new();
            for doc in seg.doc_ids_alive() {
                if let Some(ord) = ids.term_ords(doc).next() {
                    buf.clear();
                    ids.ord_to_str(ord, &mut buf)
                        .map_err(|e| Error::Corrupt(e.to_string()))?;
                    out.insert(buf.clone(), hashes.first(doc).unwrap_or(0));
                }
            }
        }
        Ok(out)
    }

    /// A u64 fast field (`downloads`, `likes`, `paid_calls`) of every live card.
    pub fn all_u64(&self, field: &str) -> Result<Vec<u64>> {
        let searcher = self.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64(field)?;
            out.extend(seg.doc_ids_alive().map(|d| col.first(d).unwrap_or(0)));
        }
        Ok(out)
    }
}

/// Segment `seg`'s entry of a per-segment `cache`, made by `make` from the
/// segment's reader when missing (entries of segments no longer in the
/// index are dropped then). Segments are immutable, so an entry never goes
/// stale. The cache is not locked while an entry is made (a large
/// segment's table takes milliseconds; other searches go on reading the
/// entries there are): two searches missing the same entry at once both
/// make it, and the first one stored is kept.
pub(super) fn cached<T>(
    cache: &SegmentCache<T>,
    searcher: &Searcher,
    seg: u32,
    make: impl FnOnce(&tantivy::SegmentReader) -> Result<T>,
) -> Result<Arc<T>> {
    let reader = searcher.segment_reader(seg);
    let id = reader.segment_id();
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = lock().get(&id) {
        return Ok(v.clone());
    }
    let v = Arc::new(make(reader)?);
    let mut cache = lock();
    keep_live(&mut cache, searcher);
    Ok(cache.entry(id).or_insert(v).clone())
}

/// What one call has taken from a per-segment cache, by segment ordinal
/// (a call reads a few segments, each for many addresses).
struct PerSegment<T>(Vec<Option<Arc<T>>>);

impl<T> Default for PerSegment<T> {
    fn default() -> Self {
        PerSegment(Vec::new())
    }
}

impl<T> PerSegment<T> {
    /// Segment `seg`'s entry, taken by `take` the first time.
    fn get(&mut self, seg: u32, take: impl FnOnce(u32) -> Result<Arc<T>>) -> Result<&Arc<T>> {
        let i = seg as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        match &mut self.0[i] {
            Some(v) => Ok(v),
            slot => Ok(slot.insert(take(seg)?)),
        }
    }
}

/// One segment's ids by doc id, with a hash of the first word of each
/// id and of its name (see [`TextIndex::each_id`]).
#[derive(Debug, Default)]
pub(super) struct SegmentIds {
    pub(super) ids: Vec<String>,
    heads: Vec<[u32; 2]>,
}

/// The hashes of `id`'s first word and of its name's (after the last
/// `/`; the id's own when it has none), lowercase.
fn first_word_hashes(id: &str) -> [u32; 2] {
    let first = |s: &str| {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| !w.is_empty())
            .map_or(0, first_word_hash)
    };
    let name = id.rsplit_once('/').map_or(id, |(_, name)| name);
    [first(id), first(name)]
}

/// FNV-1a (32 bits) of a word's lowercase bytes.
fn first_word_hash(word: &str) -> u32 {
    word.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0193)
    })
}

/// Forget the cached entries of segments that are no longer searched.
pub(super) fn keep_live<V>(cache: &mut HashMap<tantivy::index::SegmentId, V>, searcher: &Searcher) {
    let live: std::collections::HashSet<_> = searcher
        .segment_readers()
        .iter()
        .map(|r| r.segment_id())
        .collect();
    cache.retain(|k, _| live.contains(k));
}

/// A segment's fast-field columns of [`CandidateFacts`], in field order.
pub(super) type FactColumns = [tantivy::columnar::Column<u64>; 4];

/// A segment's (id key, doc id) pairs sorted by key, with a directory on
/// the keys' top bits: id keys are BLAKE3 prefixes (`key_of`), so about one
/// pair falls in each of the directory's slots and a look-up reads two or
/// three cache lines, where a binary search over a large segment read a
/// dozen or more (vector search looks up hundreds of keys per query).
pub(super) struct KeyTable {
    pairs: Vec<(u64, u32)>,
    /// `dir[s]..dir[s + 1]` are the pairs whose key's top `bits` bits are `s`.
    dir: Vec<u32>,
    bits: u32,
}

impl KeyTable {
    fn new(mut pairs: Vec<(u64, u32)>) -> KeyTable {
        pairs.sort_unstable();
        // About one pair per slot (at least 1 bit, at most 30).
        let bits = (usize::BITS - pairs.len().leading_zeros()).clamp(1, 30);
        let slots = 1usize << bits;
        let mut dir = Vec::with_capacity(slots + 1);
        let mut i = 0;
        for s in 0..slots {
            while i < pairs.len() && ((pairs[i].0 >> (64 - bits)) as usize) < s {
                i += 1;
            }
            dir.push(i as u32);
        }
        dir.push(pairs.len() as u32);
        KeyTable { pairs, dir, bits }
    }

    /// Where the pairs whose key shares `k`'s top bits are, `k`'s among
    /// them (sorted by key).
    fn slot(&self, k: u64) -> std::ops::Range<usize> {
        let s = (k >> (64 - self.bits)) as usize;
        self.dir[s] as usize..self.dir[s + 1] as usize
    }

    /// The pairs with key `k` among those of `slot` (`slot(k)`), in key
    /// order (several when a card was replaced in the segment; none when
    /// no card has it).
    fn docs_in(
        &self,
        slot: std::ops::Range<usize>,
        k: u64,
    ) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.pairs[slot].iter().copied().filter(move |p| p.0 == k)
    }

    /// [`KeyTable::docs_in`] its own slot.
    #[cfg(test)]
    fn docs_of(&self, k: u64) -> Vec<(u64, u32)> {
        self.docs_in(self.slot(k), k).collect()
    }
}

/// A stored document ([`TextIndex::stored`]).
pub struct StoredCard {
    doc: TantivyDocument,
    source: tantivy::schema::Field,
    addr: DocAddress,
}

impl StoredCard {
    /// The card.
    pub fn card(&self) -> Result<ModelCard> {
        serde_json::from_str(self.source()?).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// The card with an empty `card_text`, its body skipped unread (what a
    /// search hit shows).
    pub fn card_without_text(&self) -> Result<ModelCard> {
        ModelCard::from_json_without_text(self.source()?).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// The card's stored JSON.
    fn source(&self) -> Result<&str> {
        self.doc
            .get_first(self.source)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Corrupt(format!("document {:?} has no source", self.addr)))
    }

    /// Its snippet texts (`plain::snippet_texts`: description, body), when
    /// the index stored them (built since they were).
    pub fn texts(&self) -> Option<(&str, &str)> {
        let mut values = self
            .doc
            .get_all(self.source)
            .skip(1)
            .filter_map(|v| v.as_str());
        Some((values.next()?, values.next()?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{card, index};
    use super::super::TextIndex;
    use hubsearch_core::card::key_of;
    use hubsearch_core::{FacetFilter, Filter, ModelKey};
    use tantivy::DocAddress;

    /// With a first word, `each_id` still shows every card whose id or
    /// name (after the last `/`) starts with that word, whatever the case
    /// and separators (worked out here by hand, word by word), and passes
    /// over at least the cards where neither does.
    #[test]
    fn each_id_by_first_word_keeps_every_match() {
        let ids = [
            "Helsinki-NLP/opus-mt-en-de",
            "bert-base-uncased",
            "BERT/Bert-Large",
            "a/b/bert-tiny",
            "ümlaut-bert/x",
            "bert",
            "x/__bert__",
            "roberta-base",
            "opus/bertje",
        ];
        let cards: Vec<_> = ids.iter().map(|id| card(id, None, &[], "text")).collect();
        let idx = index(&cards);
        let s = idx.searcher();
        let keys: Vec<ModelKey> = ids.iter().map(|id| ModelKey::of(id)).collect();
        let addrs: Vec<DocAddress> = idx
            .addresses_of(&s, &keys, &Filter::default())
            .unwrap()
            .into_iter()
            .map(Option::unwrap)
            .collect();
        let first = |t: &str| -> String {
            let mut w = String::new();
            for c in t.chars() {
                if c.is_ascii_alphanumeric() {
                    w.push(c.to_ascii_lowercase());
                } else if !w.is_empty() {
                    break;
                }
            }
            w
        };
        for word in [
            "bert", "helsinki", "opus", "x", "a", "roberta", "b", "large",
        ] {
            let mut seen = Vec::new();
            idx.each_id(&s, &addrs, Some(word), |_, id| seen.push(id.to_string()))
                .unwrap();
            for id in ids {
                let name = id.rsplit('/').next().unwrap();
                let starts = first(id) == word || first(name) == word;
                assert_eq!(seen.contains(&id.to_string()), starts, "{word}: {id}");
            }
        }
    }

    /// Three cards in one segment, then in another: `a/x` replaced, `b/y`
    /// deleted, `d/w` added.
    fn edited() -> TextIndex {
        let idx = index(&[
            card("a/x", None, &[], "first"),
            card("b/y", None, &[], "second"),
            card("c/z", None, &[], "third"),
        ]);
        let mut w = idx.writer(32, 1).unwrap();
        w.upsert(&card("a/x", None, &[], "first, updated")).unwrap();
        w.delete("b/y");
        w.upsert(&card("d/w", None, &[], "fourth")).unwrap();
        w.commit().unwrap();
        idx.reload().unwrap();
        idx
    }

    /// Ids found by key are the ones a term query on the id finds: a
    /// replaced card's live copy, nothing for a deleted id, an id in
    /// other case or a missing one.
    #[test]
    fn find_ids_agrees_with_a_term_query() {
        let idx = edited();
        let s = idx.searcher();
        let ids: Vec<String> = ["a/x", "b/y", "c/z", "A/X", "nobody", "c/z", "d/w"]
            .iter()
            .map(|i| i.to_string())
            .collect();
        let found = idx.find_ids(&s, &ids).unwrap();
        let by_term: Vec<DocAddress> = ids
            .iter()
            .filter_map(|id| idx.get(id).unwrap().map(|(a, _)| a))
            .collect();
        assert_eq!(found, by_term);
        assert_eq!(found.len(), 4);
    }

    /// A stored card comes back whole, with its snippet texts beside it:
    /// the description's and the body's Markdown as a reader sees them
    /// (written by hand here).
    #[test]
    fn stored_cards_keep_their_snippet_texts() {
        let mut c = card("a/x", None, &[], "A **fast** `tok<en>izer`");
        c.card_text =
            "---\nlicense: mit\n---\n# Usage\n\nSee [the docs](https://x.y) &amp; <b>go</b> now.\n"
                .into();
        let idx = index(&[c.clone()]);
        let s = idx.searcher();
        let addr = idx.find_ids(&s, &["a/x".to_string()]).unwrap()[0];
        let stored = idx.stored(&s, addr).unwrap();
        assert_eq!(stored.card().unwrap(), c);
        let head = stored.card_without_text().unwrap();
        assert_eq!((head.card_text.as_str(), &head.id), ("", &c.id));
        assert_eq!(
            stored.texts(),
            Some(("A fast tok<en>izer", "Usage See the docs & go now."))
        );
        assert_eq!(idx.card(&s, addr).unwrap(), c);
    }

    /// The sorted-key lookup agrees with tantivy's own `TermSetQuery` path
    /// (taken under a filter every card passes) across segments, an updated
    /// card (old copy deleted), a deleted card and an unknown key.
    #[test]
    fn addresses_of_agrees_with_a_term_set_query() {
        let idx = edited();
        let s = idx.searcher();
        assert!(s.segment_readers().len() >= 2);
        let keys: Vec<ModelKey> = ["a/x", "b/y", "c/z", "d/w", "nobody/none"]
            .iter()
            .map(|id| ModelKey::of(id))
            .collect();
        let fast = idx.addresses_of(&s, &keys, &Filter::default()).unwrap();
        let everyone = Filter {
            license: FacetFilter::is("mit"),
            ..Default::default()
        };
        let reference = idx.addresses_of(&s, &keys, &everyone).unwrap();
        assert_eq!(fast, reference);
        let found: Vec<bool> = fast.iter().map(Option::is_some).collect();
        assert_eq!(found, [true, false, true, true, false]);
        assert_eq!(
            idx.card(&s, fast[0].unwrap()).unwrap().description,
            "first, updated"
        );
    }

    /// The key table finds exactly the pairs a linear scan finds: keys
    /// spread as hashes and bunched (many in one slot, the top and bottom
    /// of the range), repeated keys, absent keys, tables of 0 to 3,000 pairs.
    #[test]
    fn the_key_table_finds_what_a_scan_finds() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 2, 3, 17, 1000, 3000] {
            let mut pairs: Vec<(u64, u32)> = (0..n)
                .map(|d| {
                    let k = match d % 5 {
                        0 => next(),
                        1 => next() >> 40,                    // bunched in slot 0
                        2 => u64::MAX - (next() >> 50),       // bunched at the top
                        _ => key_of(&format!("m/{}", d / 2)), // repeated keys
                    };
                    (k, d as u32)
                })
                .collect();
            let probes: Vec<u64> = pairs
                .iter()
                .map(|p| p.0)
                .chain((0..200).map(|_| next()))
                .chain([0, 1, u64::MAX, u64::MAX - 1])
                .collect();
            pairs.reverse();
            let table = super::KeyTable::new(pairs.clone());
            for k in probes {
                let mut want: Vec<(u64, u32)> =
                    pairs.iter().copied().filter(|p| p.0 == k).collect();
                want.sort_unstable();
                assert_eq!(table.docs_of(k), want, "key {k} in {n} pairs");
            }
        }
    }
}
