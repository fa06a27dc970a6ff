//! The scored text query (docs/retrieval.md, Scoring): per query word,
//! BM25F or dismax over the weighted fields, with tolerant matches
//! (prefix, one edit) for words no card contains, plus a bonus for the
//! exact phrase of the id's words.

use hubsearch_core::{lang, Filter, WordScoring};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery,
    EmptyQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, Term};

use super::TextIndex;
use crate::analyzer::tokens;
use crate::bm25f::Bm25fQuery;
use crate::error::Result;
use crate::maxscore::{Bound, MaxScoreQuery};
use crate::schema::{boosts, TEXT_FIELDS};

/// Weight of a word's matches in fields other than its best one.
const TIE_BREAKER: f32 = 0.3;
/// Score of a word matched only as a prefix of an id's or tag's word
/// (docs/retrieval.md, Prefixes and typos): about the BM25F score of a word
/// found once, in a field of weight 1, in one card of thirty, well below a
/// rare word's (up to `idf * (k1 + 1)`). Only words no card contains are
/// matched so, so a tolerant match never competes with an exact match of
/// the same word.
const TOLERANT_SCORE: f32 = 3.0;
/// Words a typed prefix may expand to in the id phrase.
const PREFIX_EXPANSIONS: u32 = 500;
/// How much a corrected word counts, relative to the same word typed
/// right (docs/retrieval.md, Prefixes and typos).
const CORRECTED_WEIGHT: f32 = 0.5;

/// One summed clause of the text query (a word, the id phrase) and the
/// bound of its score.
pub(super) type Clause = (Box<dyn Query>, Bound);

/// A query's text, tokenized once: its words as the id analyzer splits
/// them (in order, and without repeats) and each word's stem. Every part of
/// a search reads these (the scored query, the facets' passes, the unknown
/// words) instead of tokenizing the text again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryWords {
    /// No words at all: a listing.
    blank: bool,
    /// The text ends in a word character: the last word is still being
    /// typed (search as you type).
    ends_in_word: bool,
    /// Every word, in order, repeats kept (the id phrase).
    raw: Vec<String>,
    /// The words without repeats, each where it first occurs.
    words: Vec<String>,
    /// `words`' stems (the text analyzer's), in the same order.
    stems: Vec<String>,
    /// Per word of `words`: whether it is written joined to another word
    /// somewhere in the text (`sentence-tr`, `opus-mt-en-de`: part of a
    /// name, not a word of its own).
    joined: Vec<bool>,
}

impl QueryWords {
    /// No words: what a listing or a filter alone searches with (nothing
    /// to tokenize).
    pub fn blank() -> QueryWords {
        QueryWords {
            blank: true,
            ..Default::default()
        }
    }

    /// The words without repeats.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether the text is blank (a listing).
    pub fn is_blank(&self) -> bool {
        self.blank
    }
}

impl TextIndex {
    /// Tokenize a query's text once (see [`QueryWords`]).
    pub fn words(&self, text: &str) -> QueryWords {
        let (raw, raw_joined) = joined_tokens(&mut self.id_analyzer.clone(), text);
        let words = dedup(raw.clone());
        let joined = words
            .iter()
            .map(|w| raw.iter().zip(&raw_joined).any(|(r, j)| r == w && *j))
            .collect();
        let mut text_analyzer = self.text_analyzer.clone();
        let stems = words
            .iter()
            .map(|w| stem_of(&mut text_analyzer, w))
            .collect();
        QueryWords {
            blank: text.trim().is_empty(),
            ends_in_word: text.ends_with(|c: char| c.is_ascii_alphanumeric()),
            raw,
            words,
            stems,
            joined,
        }
    }

    /// The query for `text` and `filter`, to run on `searcher` (its words'
    /// statistics are read from it). An empty `text` matches every card
    /// that passes the filter (a listing).
    pub fn query(
        &self,
        searcher: &Searcher,
        text: &QueryWords,
        filter: &Filter,
    ) -> Result<Box<dyn Query>> {
        let text_q = self.text_part(searcher, text)?;
        self.scored_query(text_q.as_deref(), filter)
    }

    /// The scored part of [`TextIndex::query`] as its summed clauses:
    /// `None` for a blank text (a listing), no clauses (a query matching
    /// nothing) when the text has no words.
    pub(super) fn text_part(
        &self,
        searcher: &Searcher,
        text: &QueryWords,
    ) -> Result<Option<Vec<Clause>>> {
        if text.blank {
            return Ok(None);
        }
        Ok(Some(self.text_query(searcher, text)?))
    }

    /// The text's `clauses` (`None`: a listing) within `filter`: the sum of
    /// the clauses a card matches, required with the filter's zero-scored
    /// clauses. With pruning on (BM25F words), wrapped so that a top-k
    /// search skips cards that cannot enter the top k (`maxscore.rs`);
    /// every other use runs the same query exhaustively.
    pub(super) fn scored_query(
        &self,
        clauses: Option<&[Clause]>,
        filter: &Filter,
    ) -> Result<Box<dyn Query>> {
        let Some(clauses) = clauses else {
            return self.with_filter(None, filter);
        };
        let text_q: Box<dyn Query> = if clauses.is_empty() {
            Box::new(EmptyQuery)
        } else {
            let should = clauses.iter().map(|(q, _)| (Occur::Should, q.box_clone()));
            Box::new(BooleanQuery::new(should.collect()))
        };
        let exhaustive = self.with_filter(Some(text_q), filter)?;
        if !self.prunes(Some(clauses)) {
            return Ok(exhaustive);
        }
        let required = if self.filter_queries(filter)?.is_empty() {
            None
        } else {
            Some(self.with_filter(None, filter)?)
        };
        let clauses = clauses
            .iter()
            .map(|(q, b)| (q.box_clone(), b.clone()))
            .collect();
        Ok(Box::new(MaxScoreQuery::new(exhaustive, clauses, required)))
    }

    /// Whether a top-k search of `clauses` is pruned: pruning is on, there
    /// are words, and they are scored by BM25F (whose bounds are known).
    pub(super) fn prunes(&self, clauses: Option<&[Clause]>) -> bool {
        self.pruning
            && clauses.is_some_and(|c| !c.is_empty())
            && self.boosts.scoring == WordScoring::Bm25f
    }

    /// BM25 over the weighted fields (docs/retrieval.md, Scoring). Each
    /// query word scores once over all fields: by BM25F (`bm25f.rs`), or by
    /// its best field with a small tie-breaker (dismax). The words' scores
    /// add up: a card that matches every word of the query beats one that
    /// matches two words in many fields. An exact phrase of the id's words
    /// scores extra. The clauses, in the order their scores add up.
    fn text_query(&self, searcher: &Searcher, text: &QueryWords) -> Result<Vec<Clause>> {
        if text.words.is_empty() {
            return Ok(Vec::new());
        }
        // The last word is still being typed unless the text ends in a
        // separator (search as you type).
        let typing = text.raw.last().filter(|_| text.ends_in_word);
        let mut should: Vec<Clause> = Vec::new();
        // The document count BM25 itself uses (deleted documents are still in
        // the frequencies until a merge).
        let num_docs = searcher.total_num_docs()?;
        for ((word, stem), joined) in text.words.iter().zip(&text.stems).zip(&text.joined) {
            let typed = typing == Some(word);
            let as_language = !(*joined || typed && self.starts_a_name(searcher, text)?);
            should.push(self.word_query(searcher, num_docs, (word, stem), typed, as_language)?);
        }
        should.extend(self.phrase_query(searcher, &text.raw, typing)?);
        Ok(should)
    }

    /// One query word (with its stem; `typed` when it is the last word,
    /// still being typed) scored once over all fields: its exact matches,
    /// and tolerant ones when no card contains it, in one disjunction.
    /// Unless `as_language`, the languages field is not searched (a
    /// language code written as part of a name is no language).
    fn word_query(
        &self,
        searcher: &Searcher,
        num_docs: u64,
        (word, stem): (&str, &str),
        typed: bool,
        as_language: bool,
    ) -> Result<Clause> {
        // The word's term in each field (the word itself in the id
        // field, its stem elsewhere) and the field's weight.
        let terms: Vec<(Term, f32)> = boosts(&self.fields, &self.boosts)
            .into_iter()
            .map(|(field, boost, is_id)| {
                let t = if is_id { word } else { stem };
                let boost = if field == self.fields.languages && !as_language {
                    0.0
                } else {
                    boost
                };
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
        let mut disjuncts = self.exact_disjuncts(word, terms, &dfs, num_docs);
        // A word no card contains: the last one may be a prefix being
        // typed, one of 5+ letters may be misspelt. Both score a small
        // constant, below any exact match of a word.
        if !known {
            disjuncts.extend(self.tolerant_disjuncts(searcher, word, typed)?);
        }
        Ok(if disjuncts.len() == 1 {
            disjuncts.pop().expect("one")
        } else {
            let (queries, bounds) = disjuncts.into_iter().unzip();
            let q = DisjunctionMaxQuery::with_tie_breaker(queries, TIE_BREAKER);
            (Box::new(q), Bound::DisMax(bounds, TIE_BREAKER))
        })
    }

    /// The exact matches of `word`, given its `terms` (term and weight per
    /// field) and their document frequencies `dfs` read from a searcher of
    /// `num_docs` documents: one BM25F query, or one term query per
    /// searched field (dismax).
    fn exact_disjuncts(
        &self,
        word: &str,
        terms: Vec<(Term, f32)>,
        dfs: &[u64; TEXT_FIELDS],
        num_docs: u64,
    ) -> Vec<Clause> {
        // A language name also matches its code in ids (`french` -> `opus-mt-en-fr`).
        let code =
            lang::language_code(word).map(|code| Term::from_field_text(self.fields.id_text, code));
        match self.boosts.scoring {
            WordScoring::Bm25f => {
                // The frequencies were just read from this searcher.
                let df = dfs.iter().copied().max().unwrap_or(0);
                let mut q = Bm25fQuery::new(terms).with_doc_freq(df);
                if let Some(code) = code {
                    q = q.with_variant(code, self.boosts.id);
                }
                vec![(Box::new(q.clone()), Bound::Word(q, 1.0))]
            }
            WordScoring::DisMax => {
                // Not pruned by MaxScore (tantivy's block-max WAND may
                // prune its term queries).
                let term_q = |term: Term, boost| {
                    let q = TermQuery::new(term, IndexRecordOption::WithFreqs);
                    let q = Box::new(BoostQuery::new(Box::new(q), boost)) as Box<dyn Query>;
                    (q, Bound::Unbounded)
                };
                let shared = shared_idf_factors(num_docs, dfs, self.boosts.shared_idf);
                let mut d: Vec<Clause> = terms
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
        }
    }

    /// The tolerant matches of a word no card contains: as a prefix in ids
    /// and tags while it is being `typed` (2+ characters), scoring
    /// [`TOLERANT_SCORE`]; and its corrections ([`TextIndex::corrections`])
    /// scored as one word by BM25F, weighed by [`CORRECTED_WEIGHT`].
    fn tolerant_disjuncts(
        &self,
        searcher: &Searcher,
        word: &str,
        typed: bool,
    ) -> Result<Vec<Clause>> {
        let mut disjuncts: Vec<Clause> = Vec::new();
        if typed && word.len() >= 2 {
            for field in [self.fields.id_text, self.fields.tags] {
                let prefix = PhrasePrefixQuery::new(vec![Term::from_field_text(field, word)]);
                let q = ConstScoreQuery::new(Box::new(prefix), TOLERANT_SCORE);
                disjuncts.push((Box::new(q), Bound::Const(TOLERANT_SCORE)));
            }
        }
        let corrections = self.corrections(searcher, word)?;
        if !corrections.is_empty() {
            let mut text_analyzer = self.text_analyzer.clone();
            let mut terms: Vec<(Term, f32)> = Vec::new();
            for (c, _) in &corrections {
                let stem = stem_of(&mut text_analyzer, c);
                for (field, boost, is_id) in boosts(&self.fields, &self.boosts) {
                    let t = Term::from_field_text(field, if is_id { c } else { &stem });
                    if !terms.iter().any(|(x, _)| *x == t) {
                        terms.push((t, boost));
                    }
                }
            }
            let q = Bm25fQuery::new(terms);
            let boosted = BoostQuery::new(Box::new(q.clone()), CORRECTED_WEIGHT);
            disjuncts.push((Box::new(boosted), Bound::Word(q, CORRECTED_WEIGHT)));
        }
        Ok(disjuncts)
    }

    /// The exact phrase of the id's words (`raw`, in order, repeats kept),
    /// boosted; `None` for fewer than two words. `typing` is the last word
    /// when it is still being typed.
    fn phrase_query(
        &self,
        searcher: &Searcher,
        raw: &[String],
        typing: Option<&String>,
    ) -> Result<Option<Clause>> {
        if raw.len() < 2 {
            return Ok(None);
        }
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
        let bound = Bound::Phrase(terms.clone(), self.boosts.phrase);
        let phrase: Box<dyn Query> = if partial {
            let mut q = PhrasePrefixQuery::new(terms);
            q.set_max_expansions(PREFIX_EXPANSIONS);
            Box::new(q)
        } else {
            Box::new(PhraseQuery::new(terms))
        };
        let q = BoostQuery::new(phrase, self.boosts.phrase);
        Ok(Some((Box::new(q), bound)))
    }

    /// Whether the text, its last word still being typed, is the start of
    /// some card's id or name (`herbert ba` of `allegro/herbert-base-cased`):
    /// a name being typed, whose last word is then no language code.
    fn starts_a_name(&self, searcher: &Searcher, text: &QueryWords) -> Result<bool> {
        if !text.ends_in_word || text.raw.len() < 2 {
            return Ok(false);
        }
        let last = text.raw.last().map_or("", String::as_str);
        if hubsearch_core::lang::language_names(last).is_none() {
            return Ok(false);
        }
        Ok(!self
            .completions(searcher, &text.raw.join(" "), 1)?
            .is_empty())
    }

    /// Whether some card's id or name has `word` (lowercase) as a word.
    pub fn in_ids(&self, searcher: &Searcher, word: &str) -> Result<bool> {
        let term = Term::from_field_text(self.fields.id_text, word);
        Ok(searcher.doc_freq(&term)? > 0)
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
    /// tolerance: as a prefix or as a typo, or not at all).
    pub fn unknown_words(&self, searcher: &Searcher, text: &QueryWords) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (word, stem) in text.words.iter().zip(&text.stems) {
            if !self.known(searcher, word, stem)? {
                out.push(word.clone());
            }
        }
        Ok(out)
    }
}

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

/// The stem of a query word: its first token by `text_analyzer` (the word
/// itself when it has none).
fn stem_of(text_analyzer: &mut TextAnalyzer, word: &str) -> String {
    tokens(text_analyzer, word)
        .into_iter()
        .next()
        .unwrap_or_else(|| word.to_string())
}

/// The tokens of `text` under `analyzer` (the id analyzer), each with
/// whether it is written joined to another word: a character other than
/// whitespace right before or after it (`sentence-tr`, `XLMRoberta`).
fn joined_tokens(analyzer: &mut TextAnalyzer, text: &str) -> (Vec<String>, Vec<bool>) {
    use tantivy::tokenizer::TokenStream;
    let mut stream = analyzer.token_stream(text);
    let (mut words, mut joined) = (Vec::new(), Vec::new());
    let touches = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
    while let Some(t) = stream.next() {
        let before = text[..t.offset_from].chars().next_back();
        let after = text[t.offset_to..].chars().next();
        words.push(t.text.clone());
        joined.push(touches(before) || touches(after));
    }
    (words, joined)
}

/// `v` without repeats, each value kept where it first occurs.
fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|t| seen.insert(t.clone()));
    v
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
