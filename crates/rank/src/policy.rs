//! Ranking policies (docs/ranking.md, Policies). Each orders all candidates and
//! returns every hit's score parts, so a user can see why a model is where it
//! is.

use std::collections::HashMap;

use hubsearch_core::config::RankingConfig;
use hubsearch_core::{PolicyKind, Rounds, ScoreParts};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::book::ExposureBook;

/// What a policy knows about one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Candidate {
    /// Relevance to the query, in [0, 1].
    pub relevance: f64,
    /// What the candidate earns as merit in the exposure book: the
    /// calibrated probability that it satisfies the query, blended with an
    /// inverse-propensity estimate from logged calls once the model has
    /// enough impressions (docs/ranking.md, Merit).
    pub merit: f64,
    /// Calls so far (downloads + paid calls): the popularity signal.
    pub calls: f64,
    /// The model's popularity quantile in the hub, in [0, 1] (1 = most popular).
    pub quantile: f64,
    /// The fairness group: the model's key, or its builder's, as a bare
    /// `u64` since it is either kind (`u64::from(ModelKey)` /
    /// `u64::from(BuilderKey)`, or `.0`; `hubsearch_core::ids`).
    pub group: u64,
    /// A stable key (the model id's, `ModelKey.0`) that breaks ties.
    pub key: u64,
}

/// How a page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Policy {
    /// By relevance alone.
    Relevance,
    /// `r * (1 + alpha * ln(1 + calls))`: what hubs do today.
    Popularity { alpha: f64 },
    /// `r * (1 + beta * (1 - q))`: a static long-tail prior.
    TailBoost { beta: f64 },
    /// FairCo with exposure (Fair-E): `r + lambda * err_tau`, where
    /// `err_tau` is the average per-round disparity (`Rounds::Average`), or,
    /// in the paper's form, that disparity times the rounds so far.
    Fair { lambda: f64, rounds: Rounds },
    /// FairCo with impact (Fair-I): the same controller on calls (or
    /// income) per unit of merit instead of exposure.
    FairImpact { lambda: f64, rounds: Rounds },
    /// The bounded, fixed-gain controller ("FairCo-P"): the deficit of
    /// exposure per merit without FairCo's `tau - 1` scaling.
    FairBounded { lambda: f64 },
    /// Plackett-Luce sampling from `exp(r / temperature)`, seeded per request.
    Stochastic { temperature: f64 },
}

impl Policy {
    /// The policy of `kind` with its parameters from the ranking config.
    pub fn new(kind: PolicyKind, r: &RankingConfig) -> Policy {
        match kind {
            PolicyKind::Relevance => Policy::Relevance,
            PolicyKind::Popularity => Policy::Popularity { alpha: r.alpha },
            PolicyKind::TailBoost => Policy::TailBoost { beta: r.beta },
            PolicyKind::Fair => Policy::Fair {
                lambda: r.lambda,
                rounds: r.rounds,
            },
            PolicyKind::FairImpact => Policy::FairImpact {
                lambda: r.impact_lambda,
                rounds: r.rounds,
            },
            PolicyKind::FairBounded => Policy::FairBounded {
                lambda: r.bounded_lambda,
            },
            PolicyKind::Stochastic => Policy::Stochastic {
                temperature: r.temperature,
            },
        }
    }

    /// Which policy this is.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Policy::Relevance => PolicyKind::Relevance,
            Policy::Popularity { .. } => PolicyKind::Popularity,
            Policy::TailBoost { .. } => PolicyKind::TailBoost,
            Policy::Fair { .. } => PolicyKind::Fair,
            Policy::FairImpact { .. } => PolicyKind::FairImpact,
            Policy::FairBounded { .. } => PolicyKind::FairBounded,
            Policy::Stochastic { .. } => PolicyKind::Stochastic,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Whether the policy reads the exposure book.
    pub fn reads_book(&self) -> bool {
        matches!(
            self,
            Policy::Fair { .. } | Policy::FairImpact { .. } | Policy::FairBounded { .. }
        )
    }

    /// The policy's parameters as (name, value) pairs (for logs and reports).
    pub fn params(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Policy::Relevance => vec![],
            Policy::Popularity { alpha } => vec![("alpha", alpha)],
            Policy::TailBoost { beta } => vec![("beta", beta)],
            Policy::Fair { lambda, rounds } | Policy::FairImpact { lambda, rounds } => {
                let global = f64::from(u8::from(rounds == Rounds::Global));
                let average = f64::from(u8::from(rounds == Rounds::Average));
                vec![
                    ("lambda", lambda),
                    ("global_rounds", global),
                    ("average_rounds", average),
                ]
            }
            Policy::FairBounded { lambda } => vec![("lambda", lambda)],
            Policy::Stochastic { temperature } => vec![("temperature", temperature)],
        }
    }
}

/// One candidate's place: its index in the input and its score parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub index: usize,
    pub parts: ScoreParts,
}

/// Order all `cands` under `policy`. `book` is the exposure ledger's state for
/// the candidates' groups (only `Fair` reads it); `seed` drives `Stochastic`.
/// The result is a permutation of the candidates, best first.
pub fn rank(policy: &Policy, cands: &[Candidate], book: &ExposureBook, seed: u64) -> Vec<Ranked> {
    let mut out: Vec<Ranked> = match *policy {
        Policy::Relevance => cands
            .iter()
            .enumerate()
            .map(|(i, c)| ranked(i, c, 0.0, 1.0, 0.0, c.relevance))
            .collect(),
        Policy::Popularity { alpha } => cands
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pop = c.calls.max(0.0).ln_1p();
                let boost = 1.0 + alpha * pop;
                ranked(i, c, pop, boost, 0.0, c.relevance * boost)
            })
            .collect(),
        Policy::TailBoost { beta } => cands
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let boost = 1.0 + beta * (1.0 - c.quantile.clamp(0.0, 1.0));
                ranked(i, c, c.quantile, boost, 0.0, c.relevance * boost)
            })
            .collect(),
        Policy::Fair { lambda, .. }
        | Policy::FairImpact { lambda, .. }
        | Policy::FairBounded { lambda } => {
            let err = match *policy {
                Policy::Fair { rounds, .. } => fairco_errors(cands, book, Target::Exposure, rounds),
                Policy::FairImpact { rounds, .. } => {
                    fairco_errors(cands, book, Target::Impact, rounds)
                }
                _ => exposure_deficits(cands, book),
            };
            cands
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let fairness = lambda * err[i];
                    ranked(i, c, 0.0, 1.0, fairness, c.relevance + fairness)
                })
                .collect()
        }
        Policy::Stochastic { temperature } => {
            // Gumbel-max trick: sorting by r/T + Gumbel noise draws a ranking
            // from Plackett-Luce with weights exp(r/T).
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let t = temperature.max(1e-6);
            cands
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                    let gumbel = -(-u.ln()).ln();
                    ranked(i, c, 0.0, 1.0, 0.0, c.relevance / t + gumbel)
                })
                .collect()
        }
    };
    out.sort_by(|a, b| {
        b.parts
            .final_score
            .total_cmp(&a.parts.final_score)
            .then_with(|| cands[a.index].key.cmp(&cands[b.index].key))
    });
    out
}

fn ranked(
    index: usize,
    c: &Candidate,
    popularity: f64,
    boost: f64,
    fairness: f64,
    final_score: f64,
) -> Ranked {
    Ranked {
        index,
        parts: ScoreParts {
            relevance: c.relevance,
            popularity,
            boost,
            fairness,
            final_score,
            ..Default::default()
        },
    }
}

/// What a FairCo controller equalises per unit of merit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Exposure (Fair-E).
    Exposure,
    /// Impact: calls or income (Fair-I).
    Impact,
}

/// FairCo's error term per candidate (docs/ranking.md, `fair`):
///
/// ```text
/// ratio(G) = X(G) / M(G)           X = exposure or impact, M = merit (past rounds)
/// err_i    = n(G_i) * max(0, max_{G among the candidates' groups} ratio(G) - ratio(G_i))
/// ```
///
/// `n(G_i)` is FairCo's `tau - 1`: the pages served so far (`Global`, the
/// paper's form), or the past rounds in which `G_i` was a candidate
/// (`Group`), or 1 (`Average`: the error is the average per-round disparity
/// itself, so `lambda` weighs a quantity that does not grow with traffic).
/// A group never seen, or with no merit yet, gets 0 and does not take part
/// in the max.
pub fn fairco_errors(
    cands: &[Candidate],
    book: &ExposureBook,
    target: Target,
    rounds: Rounds,
) -> Vec<f64> {
    let ratio = |g: u64| -> Option<f64> {
        let a = book.get(g);
        let x = match target {
            Target::Exposure => a.exposure,
            Target::Impact => a.impact,
        };
        (a.rounds > 0 && a.merit > 0.0).then(|| x / a.merit)
    };
    let ratios: Vec<Option<f64>> = cands.iter().map(|c| ratio(c.group)).collect();
    let max = ratios
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    cands
        .iter()
        .zip(&ratios)
        .map(|(c, r)| {
            let n = match rounds {
                Rounds::Group => book.get(c.group).rounds as f64,
                Rounds::Global => book.pages() as f64,
                Rounds::Average => 1.0,
            };
            r.map_or(0.0, |r| n * (max - r).max(0.0))
        })
        .collect()
}

/// The bounded controller's error term per candidate: `max_G E(G)/M(G) -
/// E(G_i)/M(G_i)` over the candidates' groups, where M includes this query's
/// merit (so a group seen for the first time has a defined, zero ratio). 0
/// for a group with no merit at all.
pub fn exposure_deficits(cands: &[Candidate], book: &ExposureBook) -> Vec<f64> {
    let mut merit_now: HashMap<u64, f64> = HashMap::new();
    for c in cands {
        *merit_now.entry(c.group).or_default() += c.merit.max(0.0);
    }
    let ratio = |g: u64| -> Option<f64> {
        let a = book.get(g);
        let m = a.merit + merit_now.get(&g).copied().unwrap_or(0.0);
        (m > 0.0).then(|| a.exposure / m)
    };
    let ratios: Vec<Option<f64>> = cands.iter().map(|c| ratio(c.group)).collect();
    let max = ratios.iter().flatten().cloned().fold(0.0, f64::max);
    ratios
        .iter()
        .map(|r| r.map_or(0.0, |r| (max - r).max(0.0)))
        .collect()
}

#[cfg(test)]
mod traffic_tests {
    use super::*;
    use crate::attention::Attention;
    use crate::book::page_delta;
    use hubsearch_core::AttentionKind;

    /// The mean largest fairness push (`lambda * err`) over the 100 pages
    /// before each checkpoint, serving the same query (20 candidates, a page
    /// of 10, log attention) from an empty book.
    fn pushes(policy: Policy, checkpoints: &[u64]) -> Vec<f64> {
        // Merit concentrated on the best candidates, as calibrated
        // probabilities are: proportional exposure is out of reach for the
        // best (it would need more than the first rank's attention), so a
        // disparity remains however the pages are ordered.
        let cands: Vec<Candidate> = (0..20u64)
            .map(|i| {
                let r = 1.0 - 0.03 * i as f64;
                Candidate {
                    relevance: r,
                    merit: 0.9 / (1.0 + i as f64).powi(2),
                    group: i,
                    key: i,
                    ..Default::default()
                }
            })
            .collect();
        let att = Attention::new(AttentionKind::Log, 0.5);
        let mut book = ExposureBook::new();
        let mut out = Vec::new();
        let mut window = 0.0;
        let last = *checkpoints.last().unwrap();
        for page in 1..=last {
            let ranked = rank(&policy, &cands, &book, 0);
            let push = ranked.iter().map(|r| r.parts.fairness).fold(0.0, f64::max);
            let shown: Vec<usize> = ranked.iter().take(10).map(|r| r.index).collect();
            book.apply(&page_delta(&cands, &shown, 1, &att));
            let cp = checkpoints
                .iter()
                .find(|&&c| page > c.saturating_sub(100) && page <= c);
            if cp.is_some() {
                window += push;
            }
            if checkpoints.contains(&page) {
                out.push(window / 100.0);
                window = 0.0;
            }
        }
        out
    }

    #[test]
    fn an_average_lambda_means_the_same_at_any_traffic() {
        let checkpoints = [1_000, 1_000_000];
        let avg = pushes(
            Policy::Fair {
                lambda: 0.1,
                rounds: Rounds::Average,
            },
            &checkpoints,
        );
        let ratio = avg[1] / avg[0];
        assert!(avg[0] > 0.0, "{avg:?}");
        assert!((0.5..=2.0).contains(&ratio), "average rounds: {avg:?}");
        // The paper's form (global rounds): the same lambda pushes about
        // 1000 times harder after 1000 times the pages.
        let global = pushes(
            Policy::Fair {
                lambda: 0.1,
                rounds: Rounds::Global,
            },
            &checkpoints,
        );
        eprintln!("mean largest push at 1e3 and 1e6 pages: average {avg:?}, global {global:?}");
        assert!(global[1] / global[0] > 100.0, "global rounds: {global:?}");
    }
}
