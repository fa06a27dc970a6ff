//! Exact dynamic pruning of the top-k text search: MaxScore (Turtle &
//! Flood 1995, "Query evaluation: strategies and optimizations"; as in
//! Lucene's `MaxScoreBulkScorer`) over the summed clauses of a query
//! (docs/retrieval.md, Dynamic pruning).
//!
//! A text query is a sum of clauses (one per query word, and the id
//! phrase), each with an upper bound on its score: a BM25F word never
//! scores `idf * (k1 + 1)` (`bm25f.rs`). Once the collector's k-th score is
//! `t`, the clauses whose bounds add up to at most `t` are *non-essential*:
//! a document matching only them cannot enter the top k. Candidates come
//! from the essential clauses alone; a non-essential clause is read (by
//! seeking) only while the candidate's score so far plus the bounds of the
//! clauses still unread can beat `t`. When every clause is non-essential
//! the segment is done.
//!
//! The pruning is exact: a document is only skipped when its score
//! cannot exceed `t` (the collector keeps a document only above `t`, an
//! equal score losing to the earlier document), and a document collected
//! gets the score the exhaustive query gives it, bit for bit: its clauses'
//! scores are added in clause order from 0, as tantivy's union does. Every
//! other use of the query (counting, facets, `explain`, collectors that
//! see every match) runs the exhaustive query.

use tantivy::query::{Bm25StatisticsProvider, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term, TERMINATED};

use crate::bm25f::{idf, Bm25fQuery, K1};

/// Slack on every upper bound: covers the rounding of scores and of sums
/// taken in another order than the exhaustive query's (relative errors
/// of a few float epsilons), so a bound is never below a real score.
const SLACK: Score = 1.0 + 1e-4;

/// An upper bound on a clause's score, computed from the statistics the
/// clause's weight reads.
#[derive(Clone, Debug)]
pub enum Bound {
    /// A BM25F word scored times a factor (its boost).
    Word(Bm25fQuery, Score),
    /// A constant score.
    Const(Score),
    /// tantivy's BM25 of a phrase of `terms` (one field) times a boost:
    /// below the sum of the terms' IDFs times `k1 + 1`. A phrase prefix is
    /// bounded by the IDFs of all its terms (an extra positive IDF only
    /// raises the bound).
    Phrase(Vec<Term>, Score),
    /// The best of several, the others counting `tie_breaker` of theirs
    /// (tantivy's `DisjunctionMaxQuery`).
    DisMax(Vec<Bound>, Score),
    /// No bound known: the clause is always read.
    Unbounded,
}

impl Bound {
    /// The bound's value under `stats`, with slack.
    fn value(&self, stats: &dyn Bm25StatisticsProvider) -> tantivy::Result<Score> {
        Ok(match self {
            Bound::Word(q, factor) => q.max_score(stats)? * factor * SLACK,
            Bound::Const(score) => *score * SLACK,
            Bound::Phrase(terms, boost) => {
                let num_docs = stats.total_num_docs()?;
                let mut sum = 0.0;
                for t in terms {
                    sum += idf(stats.doc_freq(t)?, num_docs);
                }
                sum * (K1 + 1.0) * boost * SLACK
            }
            Bound::DisMax(parts, tie_breaker) => {
                let (mut max, mut sum) = (0.0 as Score, 0.0 as Score);
                for p in parts {
                    let v = p.value(stats)?;
                    max = max.max(v);
                    sum += v;
                }
                (max + (sum - max) * tie_breaker) * SLACK
            }
            Bound::Unbounded => Score::INFINITY,
        })
    }
}

/// A query whose top k by score are found with MaxScore: `exhaustive`
/// (the query itself) restricted to the top k. `clauses` are the summed
/// clauses `exhaustive` scores by (in its order, with their bounds) and
/// `filter` the zero-scored clauses it requires (none: every document).
pub struct MaxScoreQuery {
    exhaustive: Box<dyn Query>,
    clauses: Vec<(Box<dyn Query>, Bound)>,
    filter: Option<Box<dyn Query>>,
}

impl MaxScoreQuery {
    /// `exhaustive` must score a document as the sum, in order and from
    /// 0, of the scores of the `clauses` it matches, and match exactly the
    /// documents that match some clause and pass `filter`.
    pub fn new(
        exhaustive: Box<dyn Query>,
        clauses: Vec<(Box<dyn Query>, Bound)>,
        filter: Option<Box<dyn Query>>,
    ) -> MaxScoreQuery {
        MaxScoreQuery {
            exhaustive,
            clauses,
            filter,
        }
    }
}

impl Clone for MaxScoreQuery {
    fn clone(&self) -> Self {
        MaxScoreQuery {
            exhaustive: self.exhaustive.box_clone(),
            clauses: self
                .clauses
                .iter()
                .map(|(q, b)| (q.box_clone(), b.clone()))
                .collect(),
            filter: self.filter.as_ref().map(|f| f.box_clone()),
        }
    }
}

impl std::fmt::Debug for MaxScoreQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaxScore({:?})", self.exhaustive)
    }
}

impl Query for MaxScoreQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let exhaustive = self.exhaustive.weight(scoring)?;
        let EnableScoring::Enabled {
            statistics_provider,
            ..
        } = scoring
        else {
            // Nothing is scored: nothing to prune.
            return Ok(exhaustive);
        };
        let mut clauses = Vec::with_capacity(self.clauses.len());
        for (q, bound) in &self.clauses {
            clauses.push((q.weight(scoring)?, bound.value(statistics_provider)?));
        }
        let filter = match &self.filter {
            Some(f) => Some(f.weight(EnableScoring::disabled_from_schema(scoring.schema()))?),
            None => None,
        };
        Ok(Box::new(MaxScoreWeight {
            exhaustive,
            clauses,
            filter,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.exhaustive.query_terms(visitor);
    }
}

struct MaxScoreWeight {
    exhaustive: Box<dyn Weight>,
    /// Each clause's weight and score bound, in the order scores add up.
    clauses: Vec<(Box<dyn Weight>, Score)>,
    filter: Option<Box<dyn Weight>>,
}

impl Weight for MaxScoreWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.exhaustive.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.exhaustive.explain(reader, doc)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.exhaustive.count(reader)
    }

    fn for_each(
        &self,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score),
    ) -> tantivy::Result<()> {
        self.exhaustive.for_each(reader, callback)
    }

    fn for_each_no_score(
        &self,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(&[DocId]),
    ) -> tantivy::Result<()> {
        self.exhaustive.for_each_no_score(reader, callback)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        let mut clauses = Vec::with_capacity(self.clauses.len());
        for (position, (weight, bound)) in self.clauses.iter().enumerate() {
            let scorer = weight.scorer(reader, 1.0)?;
            if scorer.doc() != TERMINATED {
                clauses.push(Clause {
                    scorer,
                    bound: *bound,
                    position,
                });
            }
        }
        let filter = match &self.filter {
            Some(f) => Some(f.scorer(reader, 1.0)?),
            None => None,
        };
        let mut pass = MaxScore::new(clauses, self.clauses.len(), filter);
        pass.run(threshold, callback);
        Ok(())
    }
}

/// One clause's scorer in a segment.
struct Clause {
    scorer: Box<dyn Scorer>,
    bound: Score,
    /// Its place in the sum.
    position: usize,
}

/// MaxScore over one segment's clauses.
struct MaxScore {
    /// By increasing bound.
    clauses: Vec<Clause>,
    /// `prefix[i]`: the sum of the bounds of `clauses[..i]`.
    prefix: Vec<Score>,
    /// Clauses before this one are non-essential.
    first_essential: usize,
    filter: Option<Box<dyn Scorer>>,
    /// The current document's clause scores by position (`None`: no match).
    scores: Vec<Option<Score>>,
}

impl MaxScore {
    fn new(mut clauses: Vec<Clause>, positions: usize, filter: Option<Box<dyn Scorer>>) -> Self {
        clauses.sort_by(|a, b| a.bound.total_cmp(&b.bound));
        let mut prefix = Vec::with_capacity(clauses.len() + 1);
        let mut sum: Score = 0.0;
        prefix.push(sum);
        for c in &clauses {
            sum += c.bound;
            prefix.push(sum * SLACK);
        }
        MaxScore {
            clauses,
            prefix,
            first_essential: 0,
            filter,
            scores: vec![None; positions],
        }
    }

    /// Whether a score of at most `upper` cannot enter the top k.
    #[inline]
    fn cannot_beat(upper: Score, threshold: Score) -> bool {
        upper <= threshold
    }

    /// Make the clauses whose bounds add up to at most `threshold`
    /// non-essential (the threshold only grows).
    fn partition(&mut self, threshold: Score) {
        while self.first_essential < self.clauses.len()
            && Self::cannot_beat(self.prefix[self.first_essential + 1], threshold)
        {
            self.first_essential += 1;
        }
    }

    /// The smallest document an essential clause is on.
    fn next_candidate(&self) -> DocId {
        self.clauses[self.first_essential..]
            .iter()
            .map(|c| c.scorer.doc())
            .min()
            .unwrap_or(TERMINATED)
    }

    /// Whether `doc` passes the filter; if not, the essential clauses are
    /// moved to the next document that does (or all made non-essential
    /// when none does).
    fn passes(&mut self, doc: DocId) -> bool {
        let Some(filter) = self.filter.as_mut() else {
            return true;
        };
        let at = if filter.doc() < doc {
            filter.seek(doc)
        } else {
            filter.doc()
        };
        if at == doc {
            return true;
        }
        if at == TERMINATED {
            // No document passes any more: the segment is done.
            self.first_essential = self.clauses.len();
            return false;
        }
        for c in &mut self.clauses[self.first_essential..] {
            if c.scorer.doc() < at {
                c.scorer.seek(at);
            }
        }
        false
    }

    /// Score `doc` if it can beat `threshold`: the essential clauses on it,
    /// then the non-essential ones by decreasing bound while the bounds of
    /// those unread can still lift it above `threshold`. The exhaustive
    /// score (clause order, from 0) when it can, `None` when not.
    fn score(&mut self, doc: DocId, threshold: Score) -> Option<Score> {
        let mut upper: Score = 0.0;
        for c in &mut self.clauses[self.first_essential..] {
            if c.scorer.doc() == doc {
                let s = c.scorer.score();
                self.scores[c.position] = Some(s);
                upper += s;
            }
        }
        let mut beaten = false;
        for i in (0..self.first_essential).rev() {
            if Self::cannot_beat((upper + self.prefix[i + 1]) * SLACK, threshold) {
                beaten = true;
                break;
            }
            let c = &mut self.clauses[i];
            let at = if c.scorer.doc() < doc {
                c.scorer.seek(doc)
            } else {
                c.scorer.doc()
            };
            if at == doc {
                let s = c.scorer.score();
                self.scores[c.position] = Some(s);
                upper += s;
            }
        }
        let mut total: Score = 0.0;
        for s in &mut self.scores {
            if let Some(s) = s.take() {
                total += s;
            }
        }
        (!beaten).then_some(total)
    }

    fn run(&mut self, mut threshold: Score, callback: &mut dyn FnMut(DocId, Score) -> Score) {
        self.partition(threshold);
        loop {
            if self.first_essential == self.clauses.len() {
                return;
            }
            let doc = self.next_candidate();
            if doc == TERMINATED {
                return;
            }
            if !self.passes(doc) {
                continue;
            }
            if let Some(score) = self.score(doc, threshold) {
                if score > threshold {
                    threshold = callback(doc, score);
                    self.partition(threshold);
                }
            }
            for c in &mut self.clauses[self.first_essential..] {
                if c.scorer.doc() == doc {
                    c.scorer.advance();
                }
            }
        }
    }
}
