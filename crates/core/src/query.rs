//! What a user asks ([`SearchRequest`], [`Filter`]) and what the engine answers
//! ([`Hit`] with its [`ScoreParts`]).

use serde::{Deserialize, Serialize};

use crate::card::ModelCard;
use crate::choice::{Mode, PolicyKind};

/// Structured filters; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub task: Option<String>,
    pub library: Option<String>,
    pub language: Option<String>,
    pub license: Option<String>,
    pub builder: Option<String>,
    /// Lowest price per call in USD (free models count as 0).
    pub min_price: Option<f64>,
    /// Highest price per call in USD.
    pub max_price: Option<f64>,
    /// Only models whose id contains this text, ignoring ASCII case (the
    /// Hugging Face API's `search`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_contains: Option<String>,
}

/// Whether `id` contains `needle`, ignoring ASCII case (no allocation).
pub fn id_contains(id: &str, needle: &str) -> bool {
    let (h, n) = (id.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

impl Filter {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `card` passes the filter (the reference semantics the index's
    /// filter queries must agree with).
    pub fn matches(&self, card: &ModelCard) -> bool {
        let eq = |want: &Option<String>, have: Option<&String>| match want {
            None => true,
            Some(w) => have.is_some_and(|h| h == w),
        };
        let price = card.price_usd.unwrap_or(0.0);
        eq(&self.task, card.task.as_ref())
            && eq(&self.library, card.library.as_ref())
            && eq(&self.license, card.license.as_ref())
            && eq(&self.builder, Some(&card.builder))
            && self
                .language
                .as_ref()
                .is_none_or(|l| card.languages.iter().any(|c| c == l))
            && self.min_price.is_none_or(|m| price >= m)
            && self.max_price.is_none_or(|m| price <= m)
            && self
                .id_contains
                .as_ref()
                .is_none_or(|n| id_contains(&card.id, n))
    }
}

/// One search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub filter: Filter,
    #[serde(default)]
    pub mode: Mode,
    /// Ranking policy; `None` = the configured default.
    #[serde(default)]
    pub policy: Option<PolicyKind>,
    /// Seed for stochastic policies.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub offset: usize,
    pub limit: usize,
    /// Count every match and compute facet counts over them. Costs a pass over
    /// the whole match set; without it `total` is a lower bound (the
    /// candidates retrieved) and search can stop early (block-max WAND).
    #[serde(default)]
    pub facets: bool,
    /// Record the served page in the exposure ledger (a search served to a
    /// person); off for previews and internal calls.
    #[serde(default = "yes")]
    pub record: bool,
    /// How many of the returned hits a person sees (and so receive exposure);
    /// `None` = all of them. Evaluation asks for 100 hits to score nDCG@100
    /// but a user sees the first page.
    #[serde(default)]
    pub exposed: Option<usize>,
    /// Set once nobody waits for the answer any more (the client went away,
    /// or the deadline passed): the page is then not recorded as exposure.
    #[serde(skip)]
    pub abandoned: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

fn yes() -> bool {
    true
}

impl SearchRequest {
    pub fn new(query: impl Into<String>, limit: usize) -> Self {
        SearchRequest {
            query: query.into(),
            filter: Filter::default(),
            mode: Mode::Text,
            policy: None,
            seed: None,
            offset: 0,
            limit,
            facets: false,
            record: true,
            exposed: None,
            abandoned: None,
        }
    }

    /// Whether nobody waits for this search's answer any more.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned
            .as_ref()
            .is_some_and(|a| a.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Why a hit is where it is: every part of its score.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreParts {
    /// BM25 score from the text index, if the text retriever found it.
    pub bm25: Option<f32>,
    /// 1-based rank in the text retriever's list.
    pub bm25_rank: Option<usize>,
    /// Cosine similarity from the vector retriever, if it found it.
    pub vector_sim: Option<f32>,
    /// 1-based rank in the vector retriever's list.
    pub vector_rank: Option<usize>,
    /// Fused relevance, normalised to [0, 1] per query.
    pub relevance: f64,
    /// Popularity signal the policy used (e.g. `ln(1 + calls)`), 0 if unused.
    pub popularity: f64,
    /// Multiplicative long-tail boost (1 = none).
    pub boost: f64,
    /// Additive fairness correction (0 = none).
    pub fairness: f64,
    /// The score the page is ordered by.
    #[serde(rename = "final")]
    pub final_score: f64,
}

/// One ranked result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    /// 1-based position on the result list.
    pub rank: usize,
    pub id: String,
    pub score: f64,
    pub parts: ScoreParts,
    pub card: ModelCard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_semantics() {
        let card = ModelCard {
            id: "a/b".into(),
            builder: "a".into(),
            task: Some("translation".into()),
            languages: vec!["en".into(), "de".into()],
            price_usd: Some(0.01),
            ..Default::default()
        };
        assert!(Filter::default().matches(&card));
        let f = Filter {
            task: Some("translation".into()),
            language: Some("de".into()),
            max_price: Some(0.02),
            ..Default::default()
        };
        assert!(f.matches(&card));
        let f = Filter {
            language: Some("fr".into()),
            ..Default::default()
        };
        assert!(!f.matches(&card));
        let f = Filter {
            min_price: Some(0.05),
            ..Default::default()
        };
        assert!(!f.matches(&card));
    }
}
