//! [`HubPopularity`]: the hub-wide popularity facts ranking and statistics
//! need: each model's popularity quantile (for `tail_boost`), the head sets
//! (top 1%, top 10, top 10%) that concentration figures are reported over,
//! and every model and builder key (so Gini counts the never-shown as zeros).

use std::collections::{HashMap, HashSet};

use hubsearch_core::Group;
use hubsearch_index::CandidateFacts;
use hubsearch_rank::Candidate;

/// Popularity of every model in the hub at one point in time.
#[derive(Debug, Clone, Default)]
pub struct HubPopularity {
    /// Downloads of every model, ascending (for quantiles).
    sorted: Vec<u64>,
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
            *per_builder.entry(f.builder_key).or_default() += f.downloads;
        }
        HubPopularity {
            sorted,
            builder_of: facts.iter().map(|f| (f.id_key, f.builder_key)).collect(),
            downloads: facts.iter().map(|f| (f.id_key, f.downloads)).collect(),
            model_heads: Heads::of(facts.iter().map(|f| (f.id_key, f.downloads)).collect()),
            builder_heads: Heads::of(per_builder.into_iter().collect()),
            builders: facts.iter().map(|f| f.builder_key).collect(),
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
    /// the caller blends in logged evidence), its calls (downloads,
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
                Group::Model => facts.id_key,
                Group::Builder => facts.builder_key,
            },
            key: facts.id_key,
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
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let lo = self.sorted.partition_point(|&d| d < downloads);
        let hi = self.sorted.partition_point(|&d| d <= downloads);
        ((lo + hi) as f64 / 2.0) / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_heads() {
        let facts: Vec<CandidateFacts> = (0..200u64)
            .map(|i| CandidateFacts {
                id_key: i,
                builder_key: i % 7,
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
}
