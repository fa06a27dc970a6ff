//! Simulated paid calls for the replay (`hubsearch eval --calls SEED`): the
//! user model that turns a served page into paid calls, so that `fair_impact`
//! (FairCo on impact, docs/ranking.md) has impact to act on, and the impact
//! disparity it targets.
//!
//! Key design decision: a drawn call is booked through
//! `Engine::record_paid_call`, the path `POST /v1/calls` takes (naming the
//! page and the rank it came from), so the books see exactly what a served
//! call would give them; nothing here touches the ledger's accounts.
//!
//! The user model is position-based (docs/metrics.md, Simulated calls): the
//! user examines the hit at rank `j` with the probability the hub's
//! attention model gives it, the exposure the ledger booked for that
//! position (`Attention::page`, `ranking.attention`), and calls an examined
//! hit with a probability by its judged grade: 0.05, 0.5, 0.9 for grades 0,
//! 1, 2, the marketplace simulator's `call_probability` (commit 1fe6057,
//! `crates/eval/src/simulate.rs`, retired with the `simulate` command;
//! `eval/simulations/hf2022-100k/report.md`) and the user model of
//! `crates/eval/tests/ope.rs`. Unjudged hits are grade 0.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::groups::disparity;

/// The chance that a user who examines a hit calls it, by judged grade 0,
/// 1, 2 (higher grades read as 2).
pub const CALL_PROBABILITY: [f64; 3] = [0.05, 0.5, 0.9];

/// How the replay draws paid calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallModel {
    /// Seeds every draw: the same seed gives the same calls.
    pub seed: u64,
    /// Call probability of an examined hit by grade 0, 1, 2.
    pub probability: [f64; 3],
}

impl CallModel {
    /// The default user model with this seed.
    pub fn new(seed: u64) -> CallModel {
        CallModel {
            seed,
            probability: CALL_PROBABILITY,
        }
    }

    /// The call probability of an examined hit of `grade`.
    pub fn call_probability(&self, grade: u32) -> f64 {
        self.probability[(grade as usize).min(2)]
    }

    /// The 0-based positions of a page's shown hits that are called.
    /// `examination[j]` is position j's examination probability (clamped to
    /// [0, 1]), `grades[j]` its hit's grade. Page `page` draws from its own
    /// ChaCha8 stream of the seed, two uniforms per position whatever the
    /// outcome, so a position's draws depend only on (seed, page, position):
    /// two policies replayed with one seed share their random numbers.
    pub fn draw(&self, page: u64, examination: &[f64], grades: &[u32]) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(page);
        let mut called = Vec::new();
        for (j, (e, g)) in examination.iter().zip(grades).enumerate() {
            let (u_look, u_call): (f64, f64) = (rng.gen(), rng.gen());
            if u_look < e.clamp(0.0, 1.0) && u_call < self.call_probability(*g) {
                called.push(j);
            }
        }
        called
    }
}

/// A group's totals in the ledger at the end of a replay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupTotals {
    pub exposure: f64,
    pub merit: f64,
    /// Paid calls, or income (`ranking.impact`).
    pub impact: f64,
}

/// FairCo's disparities over the groups' final totals (docs/metrics.md,
/// Simulated calls): for impact (`I/M`, what `fair_impact` equalises) and
/// exposure (`E/M`, what `fair` equalises), the mean pairwise gap and the
/// max-min over every group with merit, and the mean pairwise gap among
/// each query's groups (`per_query`: the groups of each query's ranked
/// list), averaged over the queries with two or more groups with merit.
pub fn disparities(
    totals: &BTreeMap<u64, GroupTotals>,
    per_query: &[BTreeSet<u64>],
) -> Vec<(String, f64)> {
    let ratio = |t: &GroupTotals, impact: bool| {
        if impact {
            t.impact / t.merit
        } else {
            t.exposure / t.merit
        }
    };
    let mut out = Vec::new();
    for (name, impact) in [("impact", true), ("exposure", false)] {
        let all = disparity(
            totals
                .values()
                .filter(|t| t.merit > 0.0)
                .map(|t| ratio(t, impact))
                .collect(),
        );
        let (mut sum, mut n) = (0.0, 0usize);
        for groups in per_query {
            let d = disparity(
                groups
                    .iter()
                    .filter_map(|g| totals.get(g))
                    .filter(|t| t.merit > 0.0)
                    .map(|t| ratio(t, impact))
                    .collect(),
            );
            if let Some(p) = d.mean_pairwise {
                sum += p;
                n += 1;
            }
        }
        out.push((
            format!("{name}_disparity"),
            all.mean_pairwise.unwrap_or(0.0),
        ));
        out.push((
            format!("{name}_disparity_max_min"),
            all.max_min.unwrap_or(0.0),
        ));
        out.push((format!("{name}_disparity_per_query"), sum / n.max(1) as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_follow_the_probabilities() {
        let m = CallModel::new(7);
        let e = [1.0, 0.63, 0.5, 0.43];
        let g = [2, 0, 1, 5];
        assert_eq!(m.draw(3, &e, &g), m.draw(3, &e, &g));
        // Nobody examined, nobody called; certain examination and calls:
        // every position.
        assert!(m.draw(3, &[0.0; 4], &g).is_empty());
        let sure = CallModel {
            seed: 7,
            probability: [1.0; 3],
        };
        assert_eq!(sure.draw(3, &[1.0; 4], &g), vec![0, 1, 2, 3]);
        // The rate of calls at grade 2, examination 1: 0.9.
        let n = 20_000;
        let calls: usize = (0..n).map(|p| m.draw(p, &[1.0], &[2]).len()).sum();
        let rate = calls as f64 / n as f64;
        assert!((rate - 0.9).abs() < 0.01, "{rate}");
        // Examination 0.5, grade 1: 0.25.
        let calls: usize = (0..n).map(|p| m.draw(p, &[0.5], &[1]).len()).sum();
        let rate = calls as f64 / n as f64;
        assert!((rate - 0.25).abs() < 0.01, "{rate}");
    }

    #[test]
    fn disparities_by_hand() {
        let t = |e: f64, m: f64, i: f64| GroupTotals {
            exposure: e,
            merit: m,
            impact: i,
        };
        let totals: BTreeMap<u64, GroupTotals> = [
            (1, t(2.0, 1.0, 4.0)),
            (2, t(1.0, 2.0, 0.0)),
            (3, t(0.0, 1.0, 1.0)),
            (4, t(5.0, 0.0, 3.0)), // no merit: no ratio
        ]
        .into_iter()
        .collect();
        let q = vec![[1, 2].into_iter().collect(), [3, 4].into_iter().collect()];
        let d: BTreeMap<String, f64> = disparities(&totals, &q).into_iter().collect();
        // Impact ratios 4, 0, 1: gaps 4, 3, 1.
        assert!((d["impact_disparity"] - 8.0 / 3.0).abs() < 1e-12);
        assert_eq!(d["impact_disparity_max_min"], 4.0);
        // Query 1: |4 - 0|; query 2 has one group with merit.
        assert_eq!(d["impact_disparity_per_query"], 4.0);
        // Exposure ratios 2, 0.5, 0: gaps 1.5, 2, 0.5.
        assert!((d["exposure_disparity"] - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(d["exposure_disparity_max_min"], 2.0);
        assert_eq!(d["exposure_disparity_per_query"], 1.5);
    }
}
