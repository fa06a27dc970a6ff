//! What a user asks ([`SearchRequest`], [`Filter`]) and what the engine answers
//! ([`Hit`] with its [`ScoreParts`]).

use serde::{Deserialize, Serialize};

use crate::card::ModelCard;
use crate::choice::{Mode, PolicyKind};

/// One facet's selection (docs/api.md, Filters): a card passes when it has
/// at least one of `any` (when `any` is not empty), every one of `all`, and
/// none of `not`. Several values of one facet are OR-ed (`any`), as a
/// frontend's multi-select means; the facets are AND-ed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FacetFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not: Vec<String>,
}

impl FacetFilter {
    /// Exactly this value.
    pub fn is(value: impl Into<String>) -> FacetFilter {
        FacetFilter {
            any: vec![value.into()],
            ..Default::default()
        }
    }

    /// True when nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.all.is_empty() && self.not.is_empty()
    }

    /// Whether a card with these values passes.
    pub fn passes<'a>(&self, values: impl Iterator<Item = &'a str> + Clone) -> bool {
        let has = |w: &String| values.clone().any(|v| v == w);
        (self.any.is_empty() || self.any.iter().any(has))
            && self.all.iter().all(has)
            && !self.not.iter().any(has)
    }
}

/// An inclusive range; an absent end is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Range<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<T>,
}

impl<T: PartialOrd + Copy> Range<T> {
    /// True when neither end is set.
    pub fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: T) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// The facets a filter can select, by the name the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FacetName {
    Task,
    Library,
    Language,
    License,
    Builder,
}

impl FacetName {
    /// Every facet whose value counts a search can return.
    pub const ALL: [FacetName; 5] = [
        FacetName::Task,
        FacetName::Library,
        FacetName::Language,
        FacetName::License,
        FacetName::Builder,
    ];

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FacetName::Task => "task",
            FacetName::Library => "library",
            FacetName::Language => "language",
            FacetName::License => "license",
            FacetName::Builder => "builder",
        }
    }
}

/// Structured filters (docs/api.md, Filters); every set part must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    pub task: FacetFilter,
    pub library: FacetFilter,
    pub language: FacetFilter,
    pub license: FacetFilter,
    pub builder: FacetFilter,
    /// Tags as the Hugging Face Hub writes them ([`ModelCard::hub_tags`]).
    pub tags: FacetFilter,
    /// Price per call in USD (free models count as 0).
    pub price: Range<f64>,
    pub downloads: Range<u64>,
    pub likes: Range<u64>,
    /// Creation time, unix seconds; a card without one never passes a bound.
    pub created: Range<i64>,
    /// Last modification time, unix seconds; as `created`.
    pub updated: Range<i64>,
    /// Only models whose id contains this text, ignoring ASCII case (the
    /// Hugging Face API's `search`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_contains: Option<String>,
}

/// Whether `id` contains `needle`, ignoring ASCII case (no allocation).
pub fn id_contains(id: &str, needle: &str) -> bool {
    let (h, n) = (id.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A card's time as the index keeps it: unix seconds, `None` when absent
/// (or not after 1970, which the index cannot tell from absent).
pub fn card_time(s: &Option<String>) -> Option<i64> {
    s.as_deref()
        .and_then(crate::card::unix_seconds)
        .filter(|t| *t > 0)
}

impl Filter {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// One facet's selection.
    pub fn facet(&self, name: FacetName) -> &FacetFilter {
        match name {
            FacetName::Task => &self.task,
            FacetName::Library => &self.library,
            FacetName::Language => &self.language,
            FacetName::License => &self.license,
            FacetName::Builder => &self.builder,
        }
    }

    /// One facet's selection, to change.
    pub fn facet_mut(&mut self, name: FacetName) -> &mut FacetFilter {
        match name {
            FacetName::Task => &mut self.task,
            FacetName::Library => &mut self.library,
            FacetName::Language => &mut self.language,
            FacetName::License => &mut self.license,
            FacetName::Builder => &mut self.builder,
        }
    }

    /// This filter without one facet's selection (what that facet's counts
    /// are taken over: disjunctive facets).
    pub fn without(&self, name: FacetName) -> Filter {
        let mut f = self.clone();
        *f.facet_mut(name) = FacetFilter::default();
        f
    }

    /// Whether `card` passes the filter (the reference semantics the index's
    /// filter queries must agree with).
    pub fn matches(&self, card: &ModelCard) -> bool {
        fn one(v: &Option<String>) -> impl Iterator<Item = &str> + Clone {
            v.iter().map(String::as_str)
        }
        let time_ok = |r: &Range<i64>, t: &Option<String>| {
            r.is_open() || card_time(t).is_some_and(|t| r.contains(t))
        };
        let hub_tags = if self.tags.is_empty() {
            Vec::new()
        } else {
            card.hub_tags()
        };
        self.task.passes(one(&card.task))
            && self.library.passes(one(&card.library))
            && self.license.passes(one(&card.license))
            && self
                .builder
                .passes(std::iter::once(card.builder.as_str()).filter(|b| !b.is_empty()))
            && self
                .language
                .passes(card.languages.iter().map(String::as_str))
            && self.tags.passes(hub_tags.iter().map(String::as_str))
            && self.price.contains(card.price_usd.unwrap_or(0.0))
            && self.downloads.contains(card.downloads)
            && self.likes.contains(card.likes)
            && time_ok(&self.created, &card.created_at)
            && time_ok(&self.updated, &card.last_modified)
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
    /// Weight of the vector side in hybrid fusion for this request, in
    /// [0, 1] (Meilisearch's name); `None` = `search.vector_weight`.
    #[serde(default)]
    pub semantic_ratio: Option<f64>,
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
            semantic_ratio: None,
            offset: 0,
            limit,
            facets: false,
            record: true,
            exposed: None,
            abandoned: None,
        }
    }

    /// Whether this is filtered browsing rather than a query: no words (the
    /// one place the rule is written; docs/api.md, Paging).
    pub fn is_browsing(&self) -> bool {
        self.query.trim().is_empty()
    }

    /// The retrieval mode this request runs in: browsing is always text
    /// (there is nothing to embed), a query runs in its mode.
    pub fn effective_mode(&self) -> Mode {
        if self.is_browsing() {
            Mode::Text
        } else {
            self.mode
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The card's text (body or description, Markdown reduced to text)
    /// cropped around the words the query matched, as HTML: the text
    /// escaped, matched words in `<mark>`, `…` where cropped; the only
    /// markup in it (docs/retrieval.md, Snippets).
    #[serde(default)]
    pub formatted: String,
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
            downloads: 500,
            created_at: Some("2022-03-01T00:00:00Z".into()),
            ..Default::default()
        };
        assert!(Filter::default().matches(&card));
        let f = Filter {
            task: FacetFilter::is("translation"),
            language: FacetFilter::is("de"),
            price: Range {
                min: None,
                max: Some(0.02),
            },
            ..Default::default()
        };
        assert!(f.matches(&card));
        let f = Filter {
            language: FacetFilter::is("fr"),
            ..Default::default()
        };
        assert!(!f.matches(&card));
        let f = Filter {
            price: Range {
                min: Some(0.05),
                max: None,
            },
            ..Default::default()
        };
        assert!(!f.matches(&card));
        // OR within a facet, NOT, ALL.
        let mut f = Filter::default();
        f.language.any = vec!["fr".into(), "de".into()];
        assert!(f.matches(&card));
        f.language.not = vec!["en".into()];
        assert!(!f.matches(&card));
        let mut f = Filter::default();
        f.language.all = vec!["en".into(), "fr".into()];
        assert!(!f.matches(&card));
        f.language.all = vec!["en".into(), "de".into()];
        assert!(f.matches(&card));
        // Ranges, and a missing date never passes a bound.
        let mut f = Filter::default();
        f.downloads.min = Some(501);
        assert!(!f.matches(&card));
        f.downloads.min = Some(500);
        assert!(f.matches(&card));
        f.created.max = Some(crate::card::unix_seconds("2022-01-01T00:00:00Z").unwrap());
        assert!(!f.matches(&card));
        let mut f = Filter::default();
        f.updated.max = Some(i64::MAX);
        assert!(
            !f.matches(&card),
            "no last_modified: no updated bound passes"
        );
        // Tags as the Hub writes them.
        let mut f = Filter::default();
        f.tags.all = vec!["translation".into(), "de".into()];
        assert!(f.matches(&card));
        f.tags.all.push("license:mit".into());
        assert!(!f.matches(&card));
        // Disjunctive facets drop their own selection only.
        let f = Filter {
            task: FacetFilter::is("summarization"),
            language: FacetFilter::is("de"),
            ..Default::default()
        };
        assert!(!f.matches(&card));
        assert!(f.without(FacetName::Task).matches(&card));
        assert!(!f.without(FacetName::Language).matches(&card));
    }
}
