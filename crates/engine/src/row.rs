//! One row per candidate through a search. Retrieval fills a [`Row`] with
//! where the card is, what each retriever said and the fused relevance; the
//! candidates stage adds what ranking knows of it ([`Candidate`]); ranking
//! turns the rows into [`RankedRow`]s, each pointing at its row with the
//! policy's score parts. The page's hits and the ledger's page read ranked
//! rows: no parallel arrays, and a ranking's indices are read in one place
//! ([`ranked_rows`]).

use hubsearch_core::ScoreParts;
use hubsearch_index::{CandidateFacts, DocAddress};
use hubsearch_rank::fusion::Evidence;
use hubsearch_rank::{Candidate, Ranked};

/// A score and the 1-based rank it gave in one retriever's list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f32,
    pub rank: usize,
}

/// One candidate card of a search.
#[derive(Debug, Clone)]
pub struct Row {
    pub addr: DocAddress,
    pub facts: CandidateFacts,
    /// BM25, when the text retriever found it.
    pub text: Option<Scored>,
    /// Similarity, when the vector retriever found it.
    pub vector: Option<Scored>,
    /// Cosine similarity to the query, for every candidate with a vector
    /// (text candidates the vector retriever did not reach have one too).
    pub cosine: Option<f32>,
    /// Fused relevance in [0, 1].
    pub relevance: f64,
    /// The query names this model (docs/retrieval.md, Names first).
    pub named: bool,
    /// What ranking knows of it, set by the candidates stage
    /// (`Engine::candidates`); zero before.
    pub candidate: Candidate,
}

impl Row {
    pub(crate) fn new(addr: DocAddress, facts: CandidateFacts) -> Row {
        Row {
            addr,
            facts,
            text: None,
            vector: None,
            cosine: None,
            relevance: 0.0,
            named: false,
            candidate: Candidate::default(),
        }
    }

    /// A card listed without a query: relevance 1.
    pub(crate) fn listed(addr: DocAddress, facts: CandidateFacts) -> Row {
        Row {
            relevance: 1.0,
            ..Row::new(addr, facts)
        }
    }

    /// What the retrievers said, for fusion.
    pub(crate) fn evidence(&self) -> Evidence {
        Evidence {
            text: self.text.map(|t| (t.score as f64, t.rank)),
            vector_rank: self.vector.map(|v| v.rank),
            cosine: self.cosine.map(f64::from),
        }
    }
}

/// A row in a ranking: the row, its place among the retrieved rows (the
/// ledger logs candidates in retrieval order) and the policy's score parts.
#[derive(Debug, Clone)]
pub struct RankedRow<'a> {
    pub row: &'a Row,
    pub slot: usize,
    pub parts: ScoreParts,
}

/// The rows in the order a policy ranked them.
pub(crate) fn ranked_rows(rows: &[Row], order: Vec<Ranked>) -> Vec<RankedRow<'_>> {
    order
        .into_iter()
        .map(|r| RankedRow {
            row: &rows[r.index],
            slot: r.index,
            parts: r.parts,
        })
        .collect()
}

/// The rows in the order given, each scored by its relevance with no
/// boost: listings read off a fast field, similar models.
pub(crate) fn in_given_order(rows: &[Row]) -> Vec<RankedRow<'_>> {
    rows.iter()
        .enumerate()
        .map(|(slot, row)| RankedRow {
            row,
            slot,
            parts: ScoreParts {
                relevance: row.relevance,
                boost: 1.0,
                final_score: row.relevance,
                ..Default::default()
            },
        })
        .collect()
}

/// `order[offset .. offset + limit]`, clipped to its length.
pub(crate) fn page_of<'o, 'r>(
    order: &'o [RankedRow<'r>],
    offset: usize,
    limit: usize,
) -> &'o [RankedRow<'r>] {
    let from = offset.min(order.len());
    &order[from..from.saturating_add(limit).min(order.len())]
}
