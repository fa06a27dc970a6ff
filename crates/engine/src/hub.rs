//! [`HubPopularity`]: the hub-wide popularity facts ranking and statistics
//! need: each model's popularity quantile (for `tail_boost`), the head sets
//! (top 1%, top 10, top 10%) that concentration figures are reported over,
//! and every model and builder key (so Gini counts the never-shown as zeros).

use std::collections::{HashMap, HashSet};

use hubsearch_core::config::{MeritCalibration, RankingConfig};
use hubsearch_core::{Group, Mode};
use hubsearch_index::CandidateFacts;
use hubsearch_rank::{calibrated_probability, Candidate, MeritFeatures};

use crate::row::Row;

/// Popularity of every model in the hub at one point in time.
#[derive(Debug, Clone, Default)]
pub struct HubPopularity {
    /// Downloads of every model, ascending (for quantiles).
    sorted: Vec<u64>,
    /// The quantile of each download count below [`QUANTILE_TABLE`], as
    /// `sorted` gives it (most cards have few downloads: a search asks for
    /// hundreds of quantiles).
    small: Vec<f64>,
    /// Model key -> builder key.
    pub builder_of: HashMap<u64, u64>,
    /// Model key -> downloads.
    pub downloads: HashMap<u64, u64>,
    /// The most popular models (by downloads).
    pub model_heads: Heads,
    /// The most popular builders (by their models' downloads).
    pub builder_heads: Heads,
    /// Every builder key.
    pub builders: HashSet<u64>,
}

/// The most popular members of a population, the sets concentration figures
/// are reported over.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    /// The top 1% (at least one).
    pub top_1pct: HashSet<u64>,
    /// The 10 most popular.
    pub top_10: HashSet<u64>,
    /// The top 10% (the head; the rest is the tail).
    pub head: HashSet<u64>,
}

impl Heads {
    /// Heads of `(key, popularity)` pairs; ties go to the smaller key, so the
    /// sets are deterministic.
    fn of(mut pop: Vec<(u64, u64)>) -> Heads {
        pop.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let n = pop.len();
        let take = |k: usize| -> HashSet<u64> { pop.iter().take(k).map(|(key, _)| *key).collect() };
        Heads {
            top_1pct: take(n.div_ceil(100).max(1).min(n)),
            top_10: take(10.min(n)),
            head: take(n.div_ceil(10).min(n)),
        }
    }
}

impl HubPopularity {
    pub fn from_facts(facts: &[CandidateFacts]) -> HubPopularity {
        let mut sorted: Vec<u64> = facts.iter().map(|f| f.downloads).collect();
        sorted.sort_unstable();
        let mut per_builder: HashMap<u64, u64> = HashMap::new();
        for f in facts {
            *per_builder.entry(f.builder_key.0).or_default() += f.downloads;
        }
        let small = (0..QUANTILE_TABLE)
            .map(|d| mid_rank_quantile(&sorted, d))
            .collect();
        HubPopularity {
            sorted,
            small,
            builder_of: facts
                .iter()
                .map(|f| (f.id_key.0, f.builder_key.0))
                .collect(),
            downloads: facts.iter().map(|f| (f.id_key.0, f.downloads)).collect(),
            model_heads: Heads::of(facts.iter().map(|f| (f.id_key.0, f.downloads)).collect()),
            builder_heads: Heads::of(per_builder.into_iter().collect()),
            builders: facts.iter().map(|f| f.builder_key.0).collect(),
        }
    }

    /// Per-model values summed per builder.
    pub fn by_builder(&self, per_model: &HashMap<u64, f64>) -> HashMap<u64, f64> {
        let mut out: HashMap<u64, f64> = HashMap::new();
        // In key order, so each builder's sum is bit-reproducible.
        let mut sorted: Vec<(&u64, &f64)> = per_model.iter().collect();
        sorted.sort_unstable_by_key(|(m, _)| **m);
        for (m, v) in sorted {
            if let Some(b) = self.builder_of.get(m) {
                *out.entry(*b).or_default() += v;
            }
        }
        out
    }

    /// What ranking knows of a card: its relevance (also its merit, until
    /// the caller sets the calibrated merit and blends in logged evidence), its calls (downloads,
    /// the paid calls its card reports and `ledger_calls` the ledger
    /// recorded), its popularity quantile, and its fairness group. The one
    /// place candidates are made: search, listings, the simulator and the
    /// benchmark all call it.
    pub fn candidate(
        &self,
        facts: &CandidateFacts,
        relevance: f64,
        ledger_calls: u64,
        group: Group,
    ) -> Candidate {
        Candidate {
            relevance,
            merit: relevance,
            calls: facts
                .downloads
                .saturating_add(facts.paid_calls)
                .saturating_add(ledger_calls) as f64,
            quantile: self.quantile(facts.downloads),
            group: match group {
                Group::Model => facts.id_key.into(),
                Group::Builder => facts.builder_key.into(),
            },
            key: facts.id_key.0,
        }
    }

    /// Models in the hub.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Popularity quantile of a download count, in [0, 1] (mid-rank: ties
    /// share the middle of their run, so if a share s of the models have no
    /// downloads, they all get s / 2, not 0).
    pub fn quantile(&self, downloads: u64) -> f64 {
        match usize::try_from(downloads)
            .ok()
            .and_then(|d| self.small.get(d))
        {
            Some(&q) => q,
            None => mid_rank_quantile(&self.sorted, downloads),
        }
    }
}

/// Download counts whose quantile [`HubPopularity`] keeps in a table.
const QUANTILE_TABLE: u64 = 4096;

/// The quantile of `downloads` among the ascending download counts
/// `sorted`, in [0, 1], by mid-rank (ties share the middle of their run);
/// 0 when there are none. [`HubPopularity::quantile`], and what the
/// grouping computes from an export's cards.
pub fn mid_rank_quantile(sorted: &[u64], downloads: u64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let lo = sorted.partition_point(|&d| d < downloads);
    let hi = sorted.partition_point(|&d| d <= downloads);
    ((lo + hi) as f64 / 2.0) / n as f64
}

/// The retrieval mode a query's rows came from, read off their evidence:
/// text and cosine evidence is hybrid, text alone is text, vector alone is
/// vector; `None` when no row has any (a listing, which ranks without a query).
pub fn rows_mode(rows: &[Row]) -> Option<Mode> {
    let text = rows.iter().any(|r| r.text.is_some());
    let vector = rows
        .iter()
        .any(|r| r.cosine.is_some() || r.vector.is_some());
    match (text, vector) {
        (true, true) => Some(Mode::Hybrid),
        (true, false) => Some(Mode::Text),
        (false, true) => Some(Mode::Vector),
        (false, false) => None,
    }
}

/// What the merit model reads of each row (docs/ranking.md, Merit): BM25
/// over the query's best BM25, the cosine, the best rank in a retriever's
/// own list (by score: tied hits share the last of their ranks), whether
/// the query names it (a named card reads as text 1 and cosine 1 where the
/// mode has them, and rank 1: it is shown first, and a shallow retrieval
/// may have found it only by its name), and the query's breadth (the mean
/// BM25 over the best of its first `merit_depth` text hits). None depends
/// on how deep retrieval went, as long as it reaches `merit_depth`.
pub fn merit_features(rows: &[Row], merit_depth: usize) -> Vec<MeritFeatures> {
    let best = rows
        .iter()
        .filter_map(|r| r.text.map(|t| f64::from(t.score)))
        .fold(0.0, f64::max);
    let mut top: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.text.map(|t| f64::from(t.score)))
        .collect();
    top.sort_by(|a, b| b.total_cmp(a));
    top.truncate(merit_depth);
    // Each retriever's scores, best first: tied hits share the last rank of
    // their group (however the index orders them, and wherever a shallower
    // retrieval cuts the group).
    let sorted = |scores: Vec<f32>| {
        let mut v = scores;
        v.sort_by(|a, b| b.total_cmp(a));
        v
    };
    let text_scores = sorted(
        rows.iter()
            .filter_map(|r| r.text.map(|t| t.score))
            .collect(),
    );
    let vector_scores = sorted(
        rows.iter()
            .filter_map(|r| r.vector.map(|v| v.score))
            .collect(),
    );
    let mode = rows_mode(rows);
    let breadth = if best > 0.0 && !top.is_empty() {
        top.iter().map(|s| (s / best).clamp(0.0, 1.0)).sum::<f64>() / top.len() as f64
    } else {
        0.0
    };
    rows.iter()
        .map(|r| {
            if r.named {
                // Named cards come first whatever the retrievers said (and a
                // shallow retrieval may not have reached them at all).
                return MeritFeatures {
                    text: f64::from(u8::from(mode != Some(Mode::Vector))),
                    cosine: f64::from(u8::from(mode != Some(Mode::Text))),
                    rank: 1,
                    named: true,
                    breadth,
                };
            }
            let text = match r.text {
                Some(t) if best > 0.0 => (f64::from(t.score) / best).clamp(0.0, 1.0),
                _ => 0.0,
            };
            let ranks = [
                r.text.map(|t| tie_rank(&text_scores, t.score)),
                r.vector.map(|v| tie_rank(&vector_scores, v.score)),
            ];
            let rank = ranks.into_iter().flatten().min();
            MeritFeatures {
                text,
                cosine: r.cosine.map_or(0.0, |c| f64::from(c).max(0.0)),
                rank: rank.unwrap_or(0),
                named: false,
                breadth,
            }
        })
        .collect()
}

/// The number of `sorted` (descending) scores at least `score`: the last
/// rank of its tie group. A tie group that a shallower retrieval cuts ranks
/// at least as deep as the cut, so past `merit_depth` at either depth.
fn tie_rank(sorted: &[f32], score: f32) -> usize {
    sorted.partition_point(|s| *s >= score).max(1)
}

/// The calibration of a retrieval mode's merit model.
pub fn merit_calibration(r: &RankingConfig, mode: Mode) -> &MeritCalibration {
    match mode {
        Mode::Text => &r.merit_text,
        Mode::Vector => &r.merit_vector,
        Mode::Hybrid => &r.merit_hybrid,
    }
}

/// Each row's base merit: the calibrated probability that it satisfies the
/// query (`ranking.merit_*`, 0 past `ranking.merit_depth`); for a listing
/// (no retriever evidence) its relevance, 1.
pub fn base_merits(rows: &[Row], r: &RankingConfig) -> Vec<f64> {
    match rows_mode(rows) {
        None => rows.iter().map(|row| row.relevance).collect(),
        Some(mode) => {
            let b = merit_calibration(r, mode);
            merit_features(rows, r.merit_depth)
                .iter()
                .map(|f| calibrated_probability(f, b, r.merit_depth))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_heads() {
        let facts: Vec<CandidateFacts> = (0..200u64)
            .map(|i| CandidateFacts {
                id_key: hubsearch_core::ModelKey(i),
                builder_key: hubsearch_core::BuilderKey(i % 7),
                downloads: if i < 60 { 0 } else { i },
                paid_calls: 0,
            })
            .collect();
        let h = HubPopularity::from_facts(&facts);
        assert_eq!(h.quantile(0), 0.15);
        assert!(h.quantile(199) > 0.99);
        assert_eq!(h.model_heads.top_1pct, HashSet::from([199, 198]));
        assert_eq!(h.model_heads.head.len(), 20);
        assert!(h.model_heads.head.contains(&180) && !h.model_heads.head.contains(&179));
        assert_eq!(h.builders.len(), 7);
    }

    /// The table of small download counts answers as the binary search
    /// does, on both sides of its end.
    #[test]
    fn tabled_quantiles_are_the_searched_ones() {
        let facts: Vec<CandidateFacts> = (0..3000u64)
            .map(|i| CandidateFacts {
                id_key: hubsearch_core::ModelKey(i),
                builder_key: hubsearch_core::BuilderKey(i),
                downloads: (i * i) % 9001,
                paid_calls: 0,
            })
            .collect();
        let h = HubPopularity::from_facts(&facts);
        for d in (0..10_000).chain([u64::MAX]) {
            assert_eq!(h.quantile(d), mid_rank_quantile(&h.sorted, d), "{d}");
        }
    }
}
