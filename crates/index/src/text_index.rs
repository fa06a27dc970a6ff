//! [`TextIndex`]: the tantivy full-text index of cards, on disk.
//!
//! Writes go through [`CardWriter`] (upsert by id, atomic commits); reads
//! through a reader that reloads on commit, so a running server sees what an
//! import in another process committed without restarting.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hubsearch_core::{lang, FacetFilter, FacetName, Filter, ModelCard, Range, WordScoring};
use tantivy::collector::{Count, DocSetCollector, MultiCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery,
    DisjunctionMaxQuery, EmptyQuery, FuzzyTermQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use crate::analyzer::{self, tokens};
use crate::bm25f::Bm25fQuery;
use crate::error::{Error, Result};
use crate::facets::{ord_values, FlatFacetCounts, OrdValues};
use crate::schema::{boosts, schema, Boosts, Fields, FACETS, TEXT_FIELDS};

/// Weight of a word's matches in fields other than its best one.
const TIE_BREAKER: f32 = 0.3;
/// Score of a word matched only as a prefix or within one edit
/// (docs/retrieval.md, Prefixes and typos): about the BM25F score of a word
/// found once, in a field of weight 1, in one card of thirty, well below a
/// rare word's (up to `idf * (k1 + 1)`). Only words no card contains are
/// matched so, so a tolerant match never competes with an exact match of
/// the same word.
const TOLERANT_SCORE: f32 = 3.0;
/// Words a typed prefix may expand to in the id phrase.
const PREFIX_EXPANSIONS: u32 = 500;
/// Shortest word that tolerates one edit.
const FUZZY_MIN_CHARS: usize = 5;

/// Facet name -> (value, count), most frequent first.
pub type FacetCounts = BTreeMap<String, Vec<(String, u64)>>;

/// One document found by BM25.
#[derive(Debug, Clone, Copy)]
pub struct TextHit {
    pub addr: DocAddress,
    pub score: f32,
}

/// Per-candidate facts ranking needs (see [`TextIndex::candidate_facts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateFacts {
    /// `key_of(id)`: tie-breaks and per-model ledger keys.
    pub id_key: u64,
    /// `key_of(builder)`: per-builder ledger keys.
    pub builder_key: u64,
    pub downloads: u64,
    pub paid_calls: u64,
}

/// The answer of a text search.
#[derive(Debug, Clone, Default)]
pub struct TextResults {
    /// Best first.
    pub hits: Vec<TextHit>,
    /// Documents matching the query and filters.
    pub total: usize,
    /// Facet counts over the whole match set (when asked for).
    pub facets: FacetCounts,
}

/// The full-text index.
pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    id_analyzer: TextAnalyzer,
    text_analyzer: TextAnalyzer,
    boosts: Boosts,
    /// Segment -> every id by doc id (see [`TextIndex::ids_of`]).
    id_cache: std::sync::Mutex<HashMap<tantivy::index::SegmentId, Arc<Vec<String>>>>,
    /// (segment, facet field) -> the values of its facet ordinals.
    facet_cache: std::sync::Mutex<HashMap<(tantivy::index::SegmentId, String), OrdValues>>,
    /// Facet -> its counts over the whole hub, and the segments (with their
    /// deleted counts) they were counted on.
    #[allow(clippy::type_complexity)]
    hub_facets: std::sync::Mutex<
        HashMap<&'static str, (Vec<(tantivy::index::SegmentId, u32)>, Vec<(String, u64)>)>,
    >,
}

impl TextIndex {
    /// Open the index in `dir`, creating an empty one if there is none.
    pub fn open_or_create(dir: &Path) -> Result<TextIndex> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema();
        let mmap = MmapDirectory::open(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| match e {
            tantivy::TantivyError::SchemaError(_) => Error::OldSchema {
                path: dir.to_path_buf(),
            },
            other => Error::Tantivy(other),
        })?;
        Self::from_index(index, fields, dir)
    }

    /// Open an existing index; [`Error::NotFound`] when `dir` holds none.
    pub fn open(dir: &Path) -> Result<TextIndex> {
        if !dir.join("meta.json").exists() {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
            });
        }
        Self::open_or_create(dir)
    }

    /// An index in memory (tests, benchmarks).
    pub fn in_ram() -> Result<TextIndex> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields, Path::new(":memory:"))
    }

    fn from_index(index: Index, fields: Fields, dir: &Path) -> Result<TextIndex> {
        analyzer::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(TextIndex {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            id_analyzer: analyzer::id_analyzer(),
            text_analyzer: analyzer::text_analyzer(),
            boosts: Boosts::default(),
            id_cache: Default::default(),
            facet_cache: Default::default(),
            hub_facets: Default::default(),
        })
    }

    /// Set the field boosts used by later queries.
    pub fn set_boosts(&mut self, boosts: Boosts) {
        self.boosts = boosts;
    }

    /// Where the index lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema's fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// A writer; only one may exist at a time across processes.
    pub fn writer(&self, memory_mb: usize, threads: usize) -> Result<CardWriter> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let budget = memory_mb.max(16 * threads) << 20;
        let writer = self
            .index
            .writer_with_num_threads(threads, budget)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(_, msg) => Error::Locked {
                    path: self.dir.clone(),
                    message: msg.unwrap_or_default(),
                },
                other => Error::Tantivy(other),
            })?;
        Ok(CardWriter {
            writer,
            fields: self.fields.clone(),
        })
    }

    /// Pick up the latest commit now (instead of after the reload delay).
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    /// A consistent view of the last commit.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Number of (live) cards.
    pub fn num_docs(&self) -> u64 {
        self.searcher().num_docs()
    }

    /// The query for `text` and `filter`, to run on `searcher` (its words'
    /// statistics are read from it). An empty `text` matches every card
    /// that passes the filter (a listing).
    pub fn query(
        &self,
        searcher: &Searcher,
        text: &str,
        filter: &Filter,
    ) -> Result<Box<dyn Query>> {
        let text_q = self.text_part(searcher, text)?;
        self.with_filter(text_q, filter)
    }

    /// The scored part of [`TextIndex::query`]: `None` for a blank text
    /// (a listing), a query matching nothing when the text has no words.
    fn text_part(&self, searcher: &Searcher, text: &str) -> Result<Option<Box<dyn Query>>> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.text_query(searcher, text)?
                .unwrap_or_else(|| Box::new(EmptyQuery)),
        ))
    }

    /// `text_q` (required) within `filter` (zero-scored clauses).
    fn with_filter(
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

    /// BM25 over the weighted fields (docs/retrieval.md, Scoring). Each
    /// query word scores once over all fields: by BM25F (`bm25f.rs`), or by
    /// its best field with a small tie-breaker (dismax). The words' scores
    /// add up: a card that matches every word of the query beats one that
    /// matches two words in many fields. An exact phrase of the id's words
    /// scores extra.
    fn text_query(&self, searcher: &Searcher, text: &str) -> Result<Option<Box<dyn Query>>> {
        let words = dedup(tokens(&mut self.id_analyzer.clone(), text));
        if words.is_empty() {
            return Ok(None);
        }
        let raw: Vec<String> = tokens(&mut self.id_analyzer.clone(), text);
        // The last word is still being typed unless the text ends in a
        // separator (search as you type).
        let typing = raw
            .last()
            .filter(|_| text.ends_with(|c: char| c.is_ascii_alphanumeric()));
        let mut text_analyzer = self.text_analyzer.clone();
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // The document count BM25 itself uses (deleted documents are still in
        // the frequencies until a merge).
        let num_docs = searcher.total_num_docs()?;
        for word in &words {
            let stem = tokens(&mut text_analyzer, word)
                .into_iter()
                .next()
                .unwrap_or_else(|| word.clone());
            // The word's term in each field (the word itself in the id
            // field, its stem elsewhere) and the field's weight.
            let terms: Vec<(Term, f32)> = boosts(&self.fields, &self.boosts)
                .into_iter()
                .map(|(field, boost, is_id)| {
                    let t = if is_id { word.as_str() } else { stem.as_str() };
                    (Term::from_field_text(field, t), boost)
                })
                .collect();
            // Fields of weight 0 are not searched at all (not even to match
            // with score 0), nor counted in `known` or shared IDF.
            let mut dfs = [0u64; TEXT_FIELDS];
            for (df, (term, boost)) in dfs.iter_mut().zip(&terms) {
                if *boost > 0.0 {
                    *df = searcher.doc_freq(term)?;
                }
            }
            let known = dfs.iter().any(|d| *d > 0);
            // A language name also matches its code in ids (`french` -> `opus-mt-en-fr`).
            let code = lang::language_code(word)
                .map(|code| Term::from_field_text(self.fields.id_text, code));
            let mut disjuncts: Vec<Box<dyn Query>> = match self.boosts.scoring {
                WordScoring::Bm25f => {
                    // The frequencies were just read from this searcher.
                    let df = dfs.iter().copied().max().unwrap_or(0);
                    let mut q = Bm25fQuery::new(terms).with_doc_freq(df);
                    if let Some(code) = code {
                        q = q.with_variant(code, self.boosts.id);
                    }
                    vec![Box::new(q)]
                }
                WordScoring::DisMax => {
                    let term_q = |term: Term, boost| {
                        let q = TermQuery::new(term, IndexRecordOption::WithFreqs);
                        Box::new(BoostQuery::new(Box::new(q), boost)) as Box<dyn Query>
                    };
                    let shared = shared_idf_factors(num_docs, &dfs, self.boosts.shared_idf);
                    let mut d: Vec<Box<dyn Query>> = terms
                        .into_iter()
                        .zip(shared)
                        .filter(|((_, boost), _)| *boost > 0.0)
                        .map(|((term, boost), f)| term_q(term, boost * f))
                        .collect();
                    if let Some(code) = code.filter(|_| self.boosts.id > 0.0) {
                        d.push(term_q(code, self.boosts.id));
                    }
                    d
                }
            };
            // A word no card contains: the last one may be a prefix being
            // typed, one of 5+ letters may be misspelt. Both score a small
            // constant, below any exact match of a word.
            if !known {
                if typing == Some(word) && word.len() >= 2 {
                    for field in [self.fields.id_text, self.fields.tags] {
                        let prefix =
                            PhrasePrefixQuery::new(vec![Term::from_field_text(field, word)]);
                        disjuncts.push(Box::new(ConstScoreQuery::new(
                            Box::new(prefix),
                            TOLERANT_SCORE,
                        )));
                    }
                }
                if word.chars().count() >= FUZZY_MIN_CHARS {
                    for (field, t) in [
                        (self.fields.id_text, word.as_str()),
                        (self.fields.task, stem.as_str()),
                        (self.fields.tags, stem.as_str()),
                    ] {
                        let fuzzy = FuzzyTermQuery::new(Term::from_field_text(field, t), 1, true);
                        disjuncts.push(Box::new(ConstScoreQuery::new(
                            Box::new(fuzzy),
                            TOLERANT_SCORE,
                        )));
                    }
                }
            }
            let word_query: Box<dyn Query> = if disjuncts.len() == 1 {
                disjuncts.pop().expect("one")
            } else {
                Box::new(DisjunctionMaxQuery::with_tie_breaker(
                    disjuncts,
                    TIE_BREAKER,
                ))
            };
            should.push((Occur::Should, word_query));
        }
        if raw.len() >= 2 {
            let terms: Vec<Term> = raw
                .iter()
                .map(|t| Term::from_field_text(self.fields.id_text, t))
                .collect();
            // While the last word is being typed (`opus-mt-e`) and is no
            // whole word yet (unknown, or of one or two characters), the
            // phrase takes it as a prefix (which includes the word itself).
            let partial = match typing {
                Some(w) => w.len() <= 2 || !self.known(searcher, w, w)?,
                None => false,
            };
            let phrase: Box<dyn Query> = if partial {
                let mut q = PhrasePrefixQuery::new(terms);
                q.set_max_expansions(PREFIX_EXPANSIONS);
                Box::new(q)
            } else {
                Box::new(PhraseQuery::new(terms))
            };
            should.push((
                Occur::Should,
                Box::new(BoostQuery::new(phrase, self.boosts.phrase)),
            ));
        }
        Ok(Some(Box::new(BooleanQuery::new(should))))
    }

    /// Whether any card contains `word` in its id or `stem` in a text field.
    fn known(&self, searcher: &Searcher, word: &str, stem: &str) -> Result<bool> {
        if searcher.doc_freq(&Term::from_field_text(self.fields.id_text, word))? > 0 {
            return Ok(true);
        }
        for (field, boost, is_id) in boosts(&self.fields, &self.boosts) {
            if !is_id && boost > 0.0 && searcher.doc_freq(&Term::from_field_text(field, stem))? > 0
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The query's words that no card contains (they match only by
    /// tolerance: as a prefix or within one edit, or not at all).
    pub fn unknown_words(&self, searcher: &Searcher, text: &str) -> Result<Vec<String>> {
        let mut text_analyzer = self.text_analyzer.clone();
        let mut out = Vec::new();
        for word in dedup(tokens(&mut self.id_analyzer.clone(), text)) {
            let stem = tokens(&mut text_analyzer, &word)
                .into_iter()
                .next()
                .unwrap_or_else(|| word.clone());
            if !self.known(searcher, &word, &stem)? {
                out.push(word);
            }
        }
        Ok(out)
    }

    /// The filter as boolean clauses (docs/api.md, Filters): `Must` for
    /// every selection and range, `MustNot` for every excluded value. A
    /// query of `MustNot` clauses alone matches nothing: callers add a
    /// `Must` (the text, the keys, or every card).
    fn filter_queries(&self, filter: &Filter) -> Result<Vec<(Occur, Box<dyn Query>)>> {
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
                for id in self.segment_ids(&searcher, seg as u32)?.iter() {
                    if !id.is_empty() && hubsearch_core::query::id_contains(id, needle) {
                        terms.push(Term::from_field_text(self.fields.id, id));
                    }
                }
            }
            out.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        Ok(out)
    }

    /// Top `limit` cards by BM25 for `text` within `filter`, with the match
    /// count and, if `with_facets`, facet counts over all matches.
    pub fn search(
        &self,
        searcher: &Searcher,
        text: &str,
        filter: &Filter,
        limit: usize,
        with_facets: bool,
    ) -> Result<TextResults> {
        if !with_facets {
            let query = self.query(searcher, text, filter)?;
            // Top-k only: lets tantivy skip blocks that cannot make the top k.
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
        // One pass for the page, the count and the unselected facets (no
        // block skipping: every match is counted anyway), one more per
        // selected facet.
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
        text: &str,
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
        text: &str,
        filter: &Filter,
        top: Option<TopDocs>,
    ) -> Result<Counted> {
        // The text's query is built once (its words' document frequencies
        // are read once) and shared by every pass.
        let text_q = self.text_part(searcher, text)?;
        let within = |f: &Filter| self.with_filter(text_q.as_ref().map(|q| q.box_clone()), f);
        let query = within(filter)?;
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
        let hits = top_handle
            .map(|h| h.extract(&mut fruits))
            .unwrap_or_default();
        let mut facets = FacetCounts::new();
        for (name, handle) in handles {
            facets.insert(name.as_str().to_string(), handle.extract(&mut fruits));
        }
        for name in selected {
            let rest = filter.without(name);
            let counts = if text.trim().is_empty() && rest.is_empty() {
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

    /// The stored card at `addr`.
    pub fn card(&self, searcher: &Searcher, addr: DocAddress) -> Result<ModelCard> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let src = doc
            .get_first(self.fields.source)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Corrupt(format!("document {addr:?} has no source")))?;
        serde_json::from_str(src).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// What ranking reads of each candidate, from fast fields only (no
    /// doc-store reads): cheap enough for hundreds of candidates per query.
    pub fn candidate_facts(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
    ) -> Result<Vec<CandidateFacts>> {
        let mut cols: HashMap<u32, [tantivy::columnar::Column<u64>; 4]> = HashMap::new();
        let mut out = Vec::with_capacity(addrs.len());
        for a in addrs {
            let c = match cols.entry(a.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let ff = searcher.segment_reader(a.segment_ord).fast_fields();
                    e.insert([
                        ff.u64("id_key")?,
                        ff.u64("builder_key")?,
                        ff.u64("downloads")?,
                        ff.u64("paid_calls")?,
                    ])
                }
            };
            out.push(CandidateFacts {
                id_key: c[0].first(a.doc_id).unwrap_or(0),
                builder_key: c[1].first(a.doc_id).unwrap_or(0),
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
        let query = self.query(searcher, "", filter)?;
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

    /// Keys of every card that passes `filter` (the vector side's allowed set).
    pub fn filter_keys(
        &self,
        searcher: &Searcher,
        filter: &Filter,
    ) -> Result<std::collections::HashSet<u64>> {
        let query = self.query(searcher, "", filter)?;
        let docs = searcher.search(&query, &DocSetCollector)?;
        let addrs: Vec<DocAddress> = docs.into_iter().collect();
        Ok(self
            .candidate_facts(searcher, &addrs)?
            .into_iter()
            .map(|f| f.id_key)
            .collect())
    }

    /// Where the cards with these keys are (those that exist and pass `filter`).
    pub fn addresses_of(
        &self,
        searcher: &Searcher,
        keys: &[u64],
        filter: &Filter,
    ) -> Result<HashMap<u64, DocAddress>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut out = HashMap::with_capacity(keys.len());
        if filter.is_empty() {
            // One term-dictionary lookup per key and segment: far cheaper than
            // a TermSetQuery, which builds an automaton and walks the
            // dictionary with it.
            for (ord, seg) in searcher.segment_readers().iter().enumerate() {
                let inverted = seg.inverted_index(self.fields.id_key)?;
                for &k in keys {
                    let term = Term::from_field_u64(self.fields.id_key, k);
                    let Some(mut postings) = inverted
                        .read_postings(&term, IndexRecordOption::Basic)
                        .map_err(tantivy::TantivyError::from)?
                    else {
                        continue;
                    };
                    use tantivy::DocSet;
                    let mut doc = postings.doc();
                    while doc != tantivy::TERMINATED {
                        if !seg.is_deleted(doc) {
                            out.insert(k, DocAddress::new(ord as u32, doc));
                        }
                        doc = postings.advance();
                    }
                }
            }
            return Ok(out);
        }
        let set = TermSetQuery::new(
            keys.iter()
                .map(|k| Term::from_field_u64(self.fields.id_key, *k)),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(set))];
        clauses.extend(self.filter_queries(filter)?);
        let docs = searcher.search(&BooleanQuery::new(clauses), &DocSetCollector)?;
        let addrs: Vec<DocAddress> = docs.into_iter().collect();
        let facts = self.candidate_facts(searcher, &addrs)?;
        out.extend(facts.into_iter().zip(addrs).map(|(f, a)| (f.id_key, a)));
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
        self.each_id(searcher, addrs, |_, id| out.push(id.to_string()))?;
        Ok(out)
    }

    /// Call `f(i, id)` for each card at `addrs[i]`, in order, without
    /// copying the ids (see [`TextIndex::ids_of`]).
    pub fn each_id(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
        mut f: impl FnMut(usize, &str),
    ) -> Result<()> {
        let mut segs: HashMap<u32, Arc<Vec<String>>> = HashMap::new();
        for (i, a) in addrs.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(e) = segs.entry(a.segment_ord) {
                e.insert(self.segment_ids(searcher, a.segment_ord)?);
            }
            let ids = &segs[&a.segment_ord];
            f(i, ids.get(a.doc_id as usize).map_or("", String::as_str));
        }
        Ok(())
    }

    /// Every id of one segment, by doc id (cached).
    /// Per segment of `searcher`, the values of `field`'s facet ordinals,
    /// read once per segment and kept while the segment is searched.
    fn facet_values(&self, searcher: &Searcher, field: &str) -> Result<Vec<OrdValues>> {
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

    fn segment_ids(&self, searcher: &Searcher, seg: u32) -> Result<Arc<Vec<String>>> {
        let reader = searcher.segment_reader(seg);
        let id = reader.segment_id();
        let mut cache = self.id_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&id) {
            return Ok(v.clone());
        }
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
        // Forget segments that are no longer searched.
        let live: std::collections::HashSet<_> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        cache.retain(|k, _| live.contains(k));
        let ids = Arc::new(ids);
        cache.insert(id, ids.clone());
        Ok(ids)
    }

    /// The addresses of live cards whose id is exactly one of `ids`.
    pub fn find_ids(&self, searcher: &Searcher, ids: &[String]) -> Result<Vec<DocAddress>> {
        let mut out = Vec::new();
        for id in ids {
            let q = TermQuery::new(
                Term::from_field_text(self.fields.id, id),
                IndexRecordOption::Basic,
            );
            if let Some(&(_, addr)) = searcher
                .search(&q, &TopDocs::with_limit(1).order_by_score())?
                .first()
            {
                out.push(addr);
            }
        }
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

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        hubsearch_core::dir_size(&self.dir)
    }
}

/// The top documents by score (when asked), the match count and the facets.
type Counted = (Vec<(tantivy::Score, DocAddress)>, usize, FacetCounts);

/// Per field, the factor that turns the field's own BM25 IDF into the
/// word's shared IDF raised to `alpha` (docs/retrieval.md, Shared IDF): the
/// IDF of the field where the word is most common (the fewest-documents
/// bound of how common it is in the whole card), over the field's own.
/// A word rare in a boosted field but common across cards then weighs what
/// it tells; `alpha = 0` is per-field IDF (factors 1).
fn shared_idf_factors(num_docs: u64, dfs: &[u64; TEXT_FIELDS], alpha: f32) -> [f32; TEXT_FIELDS] {
    let mut out = [1.0f32; TEXT_FIELDS];
    if alpha == 0.0 {
        return out;
    }
    let idf = |df: u64| crate::bm25f::idf(df, num_docs);
    let max_df = dfs.iter().copied().max().unwrap_or(0);
    if max_df == 0 {
        return out;
    }
    let shared = idf(max_df);
    // Both IDFs are positive (`idf` is ln_1p of a positive ratio).
    for (o, df) in out.iter_mut().zip(dfs).filter(|(_, df)| **df > 0) {
        *o = (shared / idf(*df)).clamp(0.0, 1.0).powf(alpha);
    }
    out
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

/// Values shown per facet in a search response.
const FACET_VALUES: usize = 20;

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|t| seen.insert(t.clone()));
    v
}

/// Writes cards; nothing is visible or durable until [`CardWriter::commit`].
pub struct CardWriter {
    writer: IndexWriter,
    fields: Fields,
}

impl CardWriter {
    /// Insert or replace the card with this id.
    pub fn upsert(&mut self, card: &ModelCard) -> Result<()> {
        self.writer
            .delete_term(Term::from_field_text(self.fields.id, &card.id));
        self.writer.add_document(self.fields.document(card))?;
        Ok(())
    }

    /// Delete the card with this id (if any).
    pub fn delete(&mut self, id: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.id, id));
    }

    /// Make every change so far durable and visible, atomically.
    pub fn commit(&mut self) -> Result<()> {
        self.writer.commit()?;
        Ok(())
    }

    /// Drop uncommitted changes.
    pub fn rollback(&mut self) -> Result<()> {
        self.writer.rollback()?;
        Ok(())
    }

    /// Wait for merges to finish and release the writer.
    pub fn finish(self) -> Result<()> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str, task: Option<&str>, langs: &[&str], desc: &str) -> ModelCard {
        let (builder, name) = id.split_once('/').unwrap_or(("huggingface", id));
        ModelCard {
            id: id.into(),
            name: name.into(),
            builder: builder.into(),
            task: task.map(str::to_string),
            languages: langs.iter().map(|s| s.to_string()).collect(),
            description: desc.into(),
            license: Some("mit".into()),
            ..Default::default()
        }
    }

    fn index(cards: &[ModelCard]) -> TextIndex {
        let idx = TextIndex::in_ram().unwrap();
        let mut w = idx.writer(32, 1).unwrap();
        for c in cards {
            w.upsert(c).unwrap();
        }
        w.commit().unwrap();
        idx.reload().unwrap();
        idx
    }

    fn ids(idx: &TextIndex, q: &str, filter: &Filter) -> Vec<String> {
        let s = idx.searcher();
        let r = idx.search(&s, q, filter, 10, false).unwrap();
        r.hits
            .iter()
            .map(|h| idx.card(&s, h.addr).unwrap().id)
            .collect()
    }

    /// The failure pattern BM25F and stemmed id words address: the word
    /// that carries the intent (`invoices`) is only in one card's id, in
    /// another form (`invoice`), while the common words match the heavily
    /// weighted task field of many cards (`extract` is an alias of
    /// question answering, `extractive`) and their descriptions.
    #[test]
    fn a_rare_word_in_the_id_beats_common_words_in_boosted_fields() {
        let mut cards: Vec<ModelCard> = (0..30)
            .map(|i| {
                card(
                    &format!("lab{i}/squad-model-{i}"),
                    Some("question-answering"),
                    &["en"],
                    "extract answers from a context, dates and amounts too",
                )
            })
            .collect();
        cards.extend((0..30).map(|i| {
            card(
                &format!("lab{i}/tagger-{i}"),
                Some("token-classification"),
                &["en"],
                "tags people and places",
            )
        }));
        cards.push(card(
            "someone/invoice-extraction",
            Some("token-classification"),
            &[],
            "",
        ));
        let idx = index(&cards);
        let top = ids(
            &idx,
            "extract dates and amounts from invoices",
            &Filter::default(),
        );
        assert_eq!(top[0], "someone/invoice-extraction", "{top:?}");
        // `extraction` is found by `extract` too, the stems agree.
        let top = ids(&idx, "invoice extract", &Filter::default());
        assert_eq!(top[0], "someone/invoice-extraction", "{top:?}");
    }

    #[test]
    fn id_words_find_the_model() {
        let idx = index(&[
            card(
                "Helsinki-NLP/opus-mt-en-de",
                Some("translation"),
                &["en", "de"],
                "English to German",
            ),
            card(
                "Helsinki-NLP/opus-mt-de-en",
                Some("translation"),
                &["de", "en"],
                "German to English",
            ),
            card(
                "someone/opus-mt-en-de-finetuned-on-legal-text",
                Some("translation"),
                &[],
                "",
            ),
            card(
                "other/mt5-small",
                Some("text2text-generation"),
                &[],
                "multilingual t5",
            ),
        ]);
        let f = Filter::default();
        assert_eq!(
            ids(&idx, "opus mt en de", &f)[0],
            "Helsinki-NLP/opus-mt-en-de"
        );
        assert_eq!(
            ids(&idx, "opus-mt-en-de", &f)[0],
            "Helsinki-NLP/opus-mt-en-de"
        );
        assert_eq!(ids(&idx, "opus-mt", &f).len(), 3);
        assert!(ids(&idx, "zzzz", &f).is_empty());
        assert!(ids(&idx, "  --- ", &f).is_empty());
    }

    #[test]
    fn prefixes_and_typos() {
        let idx = index(&[
            card(
                "facebook/wav2vec2-base-960h",
                Some("automatic-speech-recognition"),
                &["en"],
                "speech",
            ),
            card(
                "org/sentiment-roberta",
                Some("text-classification"),
                &[],
                "sentiment analysis of tweets",
            ),
            card(
                "Helsinki-NLP/opus-mt-en-de",
                Some("translation"),
                &["en", "de"],
                "",
            ),
            card(
                "Helsinki-NLP/opus-mt-fi-mt",
                Some("translation"),
                &["fi", "mt"],
                "",
            ),
        ]);
        let f = Filter::default();
        // The last word as a prefix while typing; not after a separator.
        assert_eq!(ids(&idx, "wav2v", &f), ["facebook/wav2vec2-base-960h"]);
        assert!(ids(&idx, "wav2v ", &f).is_empty());
        // An id being typed: the phrase with a prefix.
        assert_eq!(ids(&idx, "opus-mt-e", &f)[0], "Helsinki-NLP/opus-mt-en-de");
        // One edit (a transposition counts one) on words of 5+ letters.
        assert_eq!(ids(&idx, "sentimnet", &f), ["org/sentiment-roberta"]);
        assert_eq!(ids(&idx, "wav2vce2", &f), ["facebook/wav2vec2-base-960h"]);
        assert!(ids(&idx, "sentimxxnt", &f).is_empty());
        // Not below 5 letters, and only on id, task and tag words.
        assert!(ids(&idx, "robrta ", &f) == ["org/sentiment-roberta"]);
        assert!(ids(&idx, "robta ", &f).is_empty());
        assert!(ids(&idx, "tweat ", &f).is_empty());
        let s = idx.searcher();
        assert_eq!(
            idx.unknown_words(&s, "sentimnet tweets").unwrap(),
            ["sentimnet"]
        );
        assert!(idx.unknown_words(&s, "speech en").unwrap().is_empty());
    }

    #[test]
    fn language_names_and_task_aliases_match() {
        let idx = index(&[
            card(
                "a/wav2vec2-de",
                Some("automatic-speech-recognition"),
                &["de"],
                "Speech model",
            ),
            card("b/bert-de", Some("fill-mask"), &["de"], "German BERT"),
            card(
                "c/wav2vec2-fr",
                Some("automatic-speech-recognition"),
                &["fr"],
                "Speech model",
            ),
        ]);
        let got = ids(&idx, "german speech recognition", &Filter::default());
        assert_eq!(got[0], "a/wav2vec2-de");
        let got = ids(&idx, "asr", &Filter::default());
        assert_eq!(got.len(), 2);
    }

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
            .search(&s, "translate", &Filter::default(), 10, true)
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
        let r = idx.search(&s, "translate", &f, 10, true).unwrap();
        assert_eq!(r.total, 1);
        assert_eq!(r.facets["task"][0], ("translation".to_string(), 2));
        assert_eq!(r.facets["language"], [("en".to_string(), 1)]);
        // Filter scores do not change the BM25 order.
        let f = Filter {
            license: FacetFilter::is("mit"),
            ..Default::default()
        };
        let r = idx.search(&s, "translate", &f, 10, false).unwrap();
        let r0 = idx
            .search(&s, "translate", &Filter::default(), 10, false)
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
        assert!(idx.search(&s, "translate", &bad, 10, false).is_err());
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
            idx.disjunctive_facets(&s, "", &f).unwrap().1["task"].clone()
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

    /// Shared IDF by hand: N = 1000; a word in 500 cards' text but 10
    /// cards' task field keeps the task boost times idf(500)/idf(10).
    #[test]
    fn shared_idf_by_hand() {
        let idf = |df: f32| (1.0f32 + (1000.0 - df + 0.5) / (df + 0.5)).ln();
        let mut dfs = [0u64; TEXT_FIELDS];
        dfs[2] = 10; // task
        dfs[8] = 500; // card text
        let f = shared_idf_factors(1000, &dfs, 1.0);
        assert!((f[2] - idf(500.0) / idf(10.0)).abs() < 1e-6, "{f:?}");
        assert_eq!(f[8], 1.0);
        assert_eq!(f[0], 1.0, "a field without the word keeps its boost");
        let half = shared_idf_factors(1000, &dfs, 0.5);
        assert!((half[2] - f[2].sqrt()).abs() < 1e-6);
        assert_eq!(shared_idf_factors(1000, &dfs, 0.0), [1.0; TEXT_FIELDS]);
        // The rare word in the card text now beats a common one in the task
        // field at equal term frequency: the point of sharing.
        assert!(idf(500.0) * 4.3 * f[2] < idf(500.0) * 4.3);
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
            let q = idx.query(&s, "", &f).unwrap();
            let docs = s.search(&q, &DocSetCollector).unwrap();
            let addrs: Vec<DocAddress> = docs.into_iter().collect();
            let mut got = idx.ids_of(&s, &addrs).unwrap();
            got.sort();
            assert_eq!(got, want, "round {round}: {f:?}");
        }
    }

    #[test]
    fn upsert_replaces_and_hashes_track_content() {
        let idx = index(&[card("a/x", None, &[], "one")]);
        let mut w = idx.writer(32, 1).unwrap();
        let newer = card("a/x", None, &[], "two");
        w.upsert(&newer).unwrap();
        w.commit().unwrap();
        idx.reload().unwrap();
        assert_eq!(idx.num_docs(), 1);
        assert_eq!(idx.get("a/x").unwrap().unwrap().1.description, "two");
        assert_eq!(idx.content_hashes().unwrap()["a/x"], newer.content_hash());
        assert!(idx.get("a/y").unwrap().is_none());
    }
}
