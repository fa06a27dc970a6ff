//! BM25F: one query word scored over several weighted fields at once
//! (docs/retrieval.md, BM25F; Robertson & Zaragoza 2009, "The Probabilistic
//! Relevance Framework: BM25 and Beyond", §3.4).
//!
//! Per-field BM25 saturates each field's term frequency apart and adds (or
//! takes the best of) the field scores, so a field boost multiplies the
//! score: a common word in a heavily boosted short field (the task) can
//! outweigh the one rare word that carries the intent. BM25F pools first:
//!
//! ```text
//! tf~(w, d) = sum_f  weight_f * tf_f(w, d) / (1 - b + b * len_f(d) / avglen_f)
//! score     = idf(w) * (k1 + 1) * tf~ / (k1 + tf~)
//! ```
//!
//! so a word's score is bounded by `idf(w) * (k1 + 1)` whatever fields it is
//! in: field weights decide how fast evidence saturates, the word's rarity
//! how much it can count. One IDF per word: its document frequency over the
//! whole card is estimated by the largest per-field frequency (the best lower
//! bound the per-field statistics give; Lucene's `CombinedFieldQuery` does
//! the same). Several terms may share a field: a language name also matches
//! its code in the id (`french` -> `fr`), an added variant whose frequency
//! joins the pool but not the IDF (the code is another word; its own
//! frequency says nothing about how rare the name is).

use std::sync::Arc;

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{
    Bm25StatisticsProvider, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, Term, TERMINATED};

/// BM25's term-frequency saturation (tantivy's and Lucene's default).
pub const K1: Score = 1.2;
/// BM25's length normalisation, the same for every field (tantivy's default).
pub const B: Score = 0.75;

/// One word, searched as `(term, field weight)` pairs (each term names its
/// field), scored by BM25F.
#[derive(Clone, Debug)]
pub struct Bm25fQuery {
    /// Term, field weight, and whether its document frequency counts
    /// towards the word's IDF.
    terms: Vec<(Term, Score, bool)>,
    /// The word's document frequency when the caller already read it from
    /// the same searcher (saves a dictionary lookup per field).
    doc_freq: Option<u64>,
}

impl Bm25fQuery {
    /// A word as terms with their field weights. Terms of weight 0 are
    /// dropped; a query without terms matches nothing.
    pub fn new(terms: Vec<(Term, Score)>) -> Bm25fQuery {
        Bm25fQuery {
            terms: terms
                .into_iter()
                .filter(|(_, w)| *w > 0.0)
                .map(|(t, w)| (t, w, true))
                .collect(),
            doc_freq: None,
        }
    }

    /// The word's document frequency, known to the caller: the largest of
    /// its terms' frequencies in the searcher the query will run on.
    pub fn with_doc_freq(mut self, doc_freq: u64) -> Bm25fQuery {
        self.doc_freq = Some(doc_freq);
        self
    }

    /// Add a variant of the word (another token standing for it): its
    /// frequency joins the pool, its document frequency not the IDF.
    pub fn with_variant(mut self, term: Term, weight: Score) -> Bm25fQuery {
        if weight > 0.0 {
            self.terms.push((term, weight, false));
        }
        self
    }

    /// The word's IDF and the document frequency and document count it
    /// comes from, read from `stats` (the weight reads the same).
    fn idf_of(&self, stats: &dyn Bm25StatisticsProvider) -> tantivy::Result<(Score, u64, u64)> {
        let num_docs = stats.total_num_docs()?;
        let doc_freq = match self.doc_freq {
            Some(df) => df,
            None => {
                let mut df = 0u64;
                for (term, _, counts) in &self.terms {
                    if *counts {
                        df = df.max(stats.doc_freq(term)?);
                    }
                }
                df
            }
        };
        Ok((idf(doc_freq, num_docs), doc_freq, num_docs))
    }

    /// The most a document can score (at boost 1): `idf * (k1 + 1)`,
    /// the value every score of the word's scorer is that factor of
    /// (docs/retrieval.md, Dynamic pruning). 0 for a query without terms.
    pub fn max_score(&self, stats: &dyn Bm25StatisticsProvider) -> tantivy::Result<Score> {
        if self.terms.is_empty() {
            return Ok(0.0);
        }
        Ok(self.idf_of(stats)?.0 * (K1 + 1.0))
    }
}

/// The statistics of one term of the word.
#[derive(Clone, Debug)]
struct TermStats {
    term: Term,
    weight: Score,
    /// The field's length normalisation by field-norm id.
    norms: Arc<[Score; 256]>,
}

/// `1 - b + b * len / avglen` as `base + per_token * len`.
#[derive(Clone, Copy, Debug)]
struct LengthNorm {
    base: Score,
    per_token: Score,
}

impl LengthNorm {
    fn new(average: Score) -> LengthNorm {
        if average > 0.0 {
            LengthNorm {
                base: 1.0 - B,
                per_token: B / average,
            }
        } else {
            LengthNorm {
                base: 1.0,
                per_token: 0.0,
            }
        }
    }

    #[inline]
    fn of(self, fieldnorm_id: u8) -> Score {
        self.base + self.per_token * FieldNormReader::id_to_fieldnorm(fieldnorm_id) as Score
    }

    /// [`LengthNorm::of`] for every field-norm id, so that scoring a
    /// document reads one number instead of two and a multiply-add (the
    /// same numbers: scores are bit-identical).
    fn table(self) -> Arc<[Score; 256]> {
        let mut t = [0.0; 256];
        for (id, x) in t.iter_mut().enumerate() {
            *x = self.of(id as u8);
        }
        Arc::new(t)
    }
}

struct Bm25fWeight {
    terms: Vec<TermStats>,
    /// `idf * (k1 + 1)`.
    scale: Score,
    idf: Score,
    doc_freq: u64,
    num_docs: u64,
}

/// The IDF BM25 uses: `ln(1 + (N - n + 0.5) / (n + 0.5))`.
pub fn idf(doc_freq: u64, num_docs: u64) -> Score {
    let n = num_docs.max(doc_freq) as Score;
    let df = doc_freq as Score;
    ((n - df + 0.5) / (df + 0.5)).ln_1p()
}

impl Query for Bm25fQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let stats: Option<&dyn Bm25StatisticsProvider> = match scoring {
            EnableScoring::Enabled {
                statistics_provider,
                ..
            } => Some(statistics_provider),
            EnableScoring::Disabled { .. } => None,
        };
        let mut terms = Vec::with_capacity(self.terms.len());
        let (mut idf, mut doc_freq, mut num_docs) = (0.0, 0u64, 0u64);
        if let Some(stats) = stats {
            (idf, doc_freq, num_docs) = self.idf_of(stats)?;
        }
        for (term, weight, _) in &self.terms {
            let norm = match stats {
                Some(stats) => {
                    let tokens = stats.total_num_tokens(term.field())?;
                    LengthNorm::new(tokens as Score / num_docs.max(1) as Score)
                }
                None => LengthNorm::new(0.0),
            };
            terms.push(TermStats {
                term: term.clone(),
                weight: *weight,
                norms: norm.table(),
            });
        }
        Ok(Box::new(Bm25fWeight {
            terms,
            scale: idf * (K1 + 1.0),
            idf,
            doc_freq,
            num_docs,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for (term, _, _) in &self.terms {
            visitor(term, false);
        }
    }
}

/// One term's postings in a segment, with its field's norms.
struct Source {
    postings: SegmentPostings,
    fieldnorms: FieldNormReader,
    weight: Score,
    /// The field's length normalisation by field-norm id
    /// ([`LengthNorm::table`]).
    norms: Arc<[Score; 256]>,
}

/// The union of a word's postings across fields, scored by BM25F.
pub struct Bm25fScorer {
    sources: Vec<Source>,
    doc: DocId,
    scale: Score,
}

impl Bm25fScorer {
    fn settle(&mut self) -> DocId {
        self.doc = self
            .sources
            .iter()
            .map(|s| s.postings.doc())
            .min()
            .unwrap_or(TERMINATED);
        self.doc
    }

    /// Move the sources behind `target` with `move_on`, take the smallest
    /// document; exhausted sources are dropped.
    fn step(&mut self, target: DocId, move_on: impl Fn(&mut SegmentPostings) -> DocId) -> DocId {
        let mut next = TERMINATED;
        let mut exhausted = false;
        for s in &mut self.sources {
            let mut d = s.postings.doc();
            if d < target {
                d = move_on(&mut s.postings);
                exhausted |= d == TERMINATED;
            }
            next = next.min(d);
        }
        if exhausted {
            self.sources.retain(|s| s.postings.doc() != TERMINATED);
        }
        self.doc = next;
        next
    }

    /// The pooled, length-normalised term frequency of the current document.
    fn pooled_tf(&self) -> Score {
        let doc = self.doc;
        self.sources
            .iter()
            .filter(|s| s.postings.doc() == doc)
            .map(|s| {
                let tf = s.postings.term_freq() as Score;
                s.weight * tf / s.norms[usize::from(s.fieldnorms.fieldnorm_id(doc))]
            })
            .sum()
    }
}

impl DocSet for Bm25fScorer {
    /// One pass over the sources: step those on the current document, take
    /// the smallest next one.
    fn advance(&mut self) -> DocId {
        let doc = self.doc;
        if doc == TERMINATED {
            return doc;
        }
        // The sources on the current document are those behind `doc + 1`.
        self.step(doc + 1, |p| p.advance())
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        self.step(target, |p| p.seek(target))
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.sources
            .iter()
            .map(|s| s.postings.size_hint())
            .max()
            .unwrap_or(0)
    }

    /// Every source is walked: the union costs the sum (as tantivy's
    /// union scorers).
    fn cost(&self) -> u64 {
        self.sources.iter().map(|s| s.postings.cost()).sum()
    }
}

impl Scorer for Bm25fScorer {
    fn score(&mut self) -> Score {
        let tf = self.pooled_tf();
        self.scale * tf / (K1 + tf)
    }
}

impl Bm25fWeight {
    fn bm25f_scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Bm25fScorer> {
        let mut sources = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let field = t.term.field();
            let inverted = reader.inverted_index(field)?;
            if let Some(postings) = inverted.read_postings(&t.term, IndexRecordOption::WithFreqs)? {
                // A field indexed without norms counts every document as
                // of length 1 (as tantivy's term scorer).
                let fieldnorms = reader
                    .fieldnorms_readers()
                    .get_field(field)?
                    .unwrap_or_else(|| FieldNormReader::constant(reader.max_doc(), 1));
                sources.push(Source {
                    postings,
                    fieldnorms,
                    weight: t.weight,
                    norms: Arc::clone(&t.norms),
                });
            }
        }
        let mut scorer = Bm25fScorer {
            sources,
            doc: TERMINATED,
            scale: self.scale * boost,
        };
        scorer.settle();
        Ok(scorer)
    }
}

impl Weight for Bm25fWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let scorer = self.bm25f_scorer(reader, boost)?;
        if scorer.doc() == TERMINATED {
            return Ok(Box::new(EmptyScorer));
        }
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.bm25f_scorer(reader, 1.0)?;
        if scorer.doc() > doc || scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "Document #({doc}) does not match"
            )));
        }
        let tf = scorer.pooled_tf();
        let mut e = Explanation::new("BM25F: idf * (k1 + 1) * tf~ / (k1 + tf~)", scorer.score());
        let mut idf_e = Explanation::new("idf, ln(1 + (N - n + 0.5) / (n + 0.5))", self.idf);
        idf_e.add_const(
            "n, largest per-field document frequency",
            self.doc_freq as Score,
        );
        idf_e.add_const("N, total number of docs", self.num_docs as Score);
        e.add_detail(idf_e);
        let mut tf_e = Explanation::new("tf~, sum of weight * tf / (1 - b + b * len / avglen)", tf);
        for s in scorer.sources.iter().filter(|s| s.postings.doc() == doc) {
            let norm = s.norms[usize::from(s.fieldnorms.fieldnorm_id(doc))];
            let mut f =
                Explanation::new("field", s.weight * s.postings.term_freq() as Score / norm);
            f.add_const("weight", s.weight);
            f.add_const("tf", s.postings.term_freq() as Score);
            f.add_const("1 - b + b * len / avglen", norm);
            tf_e.add_detail(f);
        }
        e.add_detail(tf_e);
        e.add_const("k1", K1);
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::doc;
    use tantivy::schema::{Field, Schema, TEXT};
    use tantivy::Index;

    /// An in-memory index with two text fields, `a` and `b`.
    fn two_fields() -> (Index, Field, Field) {
        let mut sb = Schema::builder();
        let a = sb.add_text_field("a", TEXT);
        let b = sb.add_text_field("b", TEXT);
        (Index::create_in_ram(sb.build()), a, b)
    }

    fn writer(index: &Index) -> tantivy::IndexWriter {
        index.writer(15_000_000).unwrap()
    }

    /// Scores computed by the test from the formula, on counts it knows:
    /// N = 4 documents, fields `a` (weight 2) and `b` (weight 1).
    #[test]
    fn pools_fields_before_saturating() {
        let (index, a, b) = two_fields();
        let mut w = writer(&index);
        w.add_document(doc!(a => "cat", b => "dog dog")).unwrap(); // 0
        w.add_document(doc!(a => "dog", b => "cat cat cat"))
            .unwrap(); // 1
        w.add_document(doc!(a => "fish", b => "cat")).unwrap(); // 2
        w.add_document(doc!(a => "bird", b => "bird")).unwrap(); // 3
        w.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let q = Bm25fQuery::new(vec![
            (Term::from_field_text(a, "cat"), 2.0),
            (Term::from_field_text(b, "cat"), 1.0),
        ]);
        let top = searcher
            .search(&q, &TopDocs::with_limit(10).order_by_score())
            .unwrap();
        // avg lengths: a = 4/4 = 1, b = 7/4 = 1.75. df(cat) = max(1, 2) = 2.
        let idf = (1.0f32 + (4.0 - 2.0 + 0.5) / (2.0 + 0.5)).ln();
        let norm = |len: f32, avg: f32| 1.0 - B + B * len / avg;
        let sat = |tf: f32| idf * (K1 + 1.0) * tf / (K1 + tf);
        let want = [
            (0u32, sat(2.0 * 1.0 / norm(1.0, 1.0))),
            (1, sat(1.0 * 3.0 / norm(3.0, 1.75))),
            (2, sat(1.0 * 1.0 / norm(1.0, 1.75))),
        ];
        assert_eq!(top.len(), 3, "the union of both fields' postings");
        for (doc, score) in want {
            let got = top
                .iter()
                .find(|(_, a)| a.doc_id == doc)
                .expect("matched")
                .0;
            assert!((got - score).abs() < 1e-5, "doc {doc}: {got} vs {score}");
        }
        // The bound: however many fields and occurrences, below idf * (k1 + 1).
        assert!(top.iter().all(|(s, _)| *s < idf * (K1 + 1.0)));
        let e = q.explain(&searcher, top[0].1).unwrap();
        assert!((e.value() - top[0].0).abs() < 1e-6);
        assert!(q
            .explain(&searcher, tantivy::DocAddress::new(0, 3))
            .is_err());
    }

    /// One field at weight 1 is plain BM25: the scores equal tantivy's own
    /// `TermQuery` (an implementation this module does not share), over two
    /// segments (statistics are the searcher's, not a segment's) and with
    /// lengths past 40 tokens (stored approximately as field norms). A
    /// weight-0 term changes nothing; a variant adds to the pool but not
    /// to the IDF.
    #[test]
    fn one_field_is_tantivys_bm25() {
        use tantivy::query::TermQuery;
        let (index, a, b) = two_fields();
        let mut w = writer(&index);
        for seg in 0..2 {
            for i in 0..40usize {
                let n = 1 + (i * 7 + seg * 3) % 90;
                let text = format!("{} {}", "cat ".repeat(i % 4), "filler ".repeat(n));
                w.add_document(doc!(a => text, b => if i % 5 != 0 { "cat" } else { "dog" }))
                    .unwrap();
            }
            w.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 2);
        let cat = Term::from_field_text(a, "cat");
        let top = |q: &dyn Query| {
            let mut v = searcher
                .search(q, &TopDocs::with_limit(100).order_by_score())
                .unwrap();
            v.sort_by_key(|(_, d)| (d.segment_ord, d.doc_id));
            v
        };
        let theirs = top(&TermQuery::new(cat.clone(), IndexRecordOption::WithFreqs));
        let ours = top(&Bm25fQuery::new(vec![
            (cat.clone(), 1.0),
            (Term::from_field_text(b, "cat"), 0.0),
        ]));
        assert!(theirs.len() > 20);
        assert_eq!(theirs.len(), ours.len(), "the weight-0 field adds no match");
        for ((s1, d1), (s2, d2)) in theirs.iter().zip(&ours) {
            assert_eq!(d1, d2);
            assert!((s1 - s2).abs() < 1e-4 * s1.max(1.0), "{d1:?}: {s1} vs {s2}");
        }
        // A variant in field b: more documents match, the IDF stays a's.
        let with = top(&Bm25fQuery::new(vec![(cat.clone(), 1.0)])
            .with_variant(Term::from_field_text(b, "cat"), 1.0));
        assert!(with.len() > ours.len());
        let only_b = with
            .iter()
            .find(|(_, d)| !ours.iter().any(|(_, o)| o == d))
            .expect("a document matching only the variant");
        // Field b holds one token in every document: its normalised tf is 1,
        // so the score is idf * (k1 + 1) * 1 / (k1 + 1) = the IDF, a's
        // (60 documents), not b's (64).
        let n = searcher.num_docs();
        let df_a = searcher.doc_freq(&cat).unwrap();
        let df_b = searcher.doc_freq(&Term::from_field_text(b, "cat")).unwrap();
        assert!(df_b > df_a, "{df_a} {df_b}");
        let want = (1.0f32 + (n as f32 - df_a as f32 + 0.5) / (df_a as f32 + 0.5)).ln();
        assert!((only_b.0 - want).abs() < 1e-5, "{} vs {want}", only_b.0);
    }

    /// Seeking and counting agree with advancing one by one.
    #[test]
    fn seek_and_count() {
        let (index, a, b) = two_fields();
        let mut w = writer(&index);
        for i in 0..300u32 {
            let ta = if i % 3 == 0 { "x" } else { "y" };
            let tb = if i % 5 == 0 { "x" } else { "z" };
            w.add_document(doc!(a => ta, b => tb)).unwrap();
        }
        w.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let q = Bm25fQuery::new(vec![
            (Term::from_field_text(a, "x"), 1.0),
            (Term::from_field_text(b, "x"), 1.0),
        ]);
        let want = (0..300).filter(|i| i % 3 == 0 || i % 5 == 0).count();
        assert_eq!(q.count(&searcher).unwrap(), want);
        let weight = q
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .unwrap();
        let mut s = weight.scorer(searcher.segment_reader(0), 1.0).unwrap();
        assert_eq!(s.seek(7), 9);
        assert_eq!(s.seek(9), 9);
        assert_eq!(s.advance(), 10);
        assert_eq!(s.seek(298), TERMINATED);
    }
}
