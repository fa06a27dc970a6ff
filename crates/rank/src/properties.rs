//! Property tests of the ranking math (every policy, every input).

use proptest::prelude::*;

use crate::attention::Attention;
use hubsearch_core::Rounds;

use crate::book::{page_delta, Account, ExposureBook};
use crate::policy::{rank, Candidate, Policy};

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec((0.0f64..=1.0, 0.0f64..1e7, 0.0f64..=1.0, 0u64..20), 1..60).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (relevance, calls, quantile, group))| Candidate {
                    relevance,
                    merit: relevance,
                    calls,
                    quantile,
                    group,
                    key: i as u64 * 7919 % 1000,
                })
                .collect()
        },
    )
}

fn policies() -> Vec<Policy> {
    vec![
        Policy::Relevance,
        Policy::Popularity { alpha: 0.3 },
        Policy::TailBoost { beta: 0.5 },
        Policy::Fair {
            lambda: 0.7,
            rounds: Rounds::Group,
        },
        Policy::FairImpact {
            lambda: 0.7,
            rounds: Rounds::Group,
        },
        Policy::FairBounded { lambda: 0.7 },
        Policy::Stochastic { temperature: 0.2 },
    ]
}

fn some_book(cands: &[Candidate]) -> ExposureBook {
    let mut b = ExposureBook::new();
    for (i, c) in cands.iter().enumerate() {
        let a = Account {
            exposure: (i % 5) as f64,
            merit: (i % 3) as f64,
            rounds: (i % 4) as u64,
            impact: (i % 2) as f64,
        };
        b.set(c.group, a);
    }
    b
}

proptest! {
    #[test]
    fn every_policy_returns_a_permutation_with_finite_scores(cands in candidates(), seed in any::<u64>()) {
        let book = some_book(&cands);
        for p in policies() {
            let out = rank(&p, &cands, &book, seed);
            let mut idx: Vec<usize> = out.iter().map(|r| r.index).collect();
            idx.sort_unstable();
            prop_assert_eq!(idx, (0..cands.len()).collect::<Vec<_>>());
            for r in &out {
                let s = &r.parts;
                prop_assert!(s.final_score.is_finite() && s.relevance.is_finite() && s.boost.is_finite() && s.fairness.is_finite());
            }
            // Sorted by the final score.
            prop_assert!(out.windows(2).all(|w| w[0].parts.final_score >= w[1].parts.final_score));
        }
    }

    #[test]
    fn fair_with_lambda_zero_is_relevance(cands in candidates()) {
        let book = some_book(&cands);
        let b: Vec<usize> = rank(&Policy::Relevance, &cands, &book, 0).iter().map(|r| r.index).collect();
        for p in [Policy::Fair { lambda: 0.0, rounds: Rounds::Group }, Policy::FairImpact { lambda: 0.0, rounds: Rounds::Group }, Policy::FairBounded { lambda: 0.0 }] {
            let a: Vec<usize> = rank(&p, &cands, &book, 0).iter().map(|r| r.index).collect();
            prop_assert_eq!(&a, &b);
        }
    }

    /// FairCo's error is >= 0, 0 for the group furthest ahead, and grows in
    /// proportion to the rounds a group has been a candidate (the `tau - 1`
    /// scaling): the same lag over twice the rounds gets twice the push.
    #[test]
    fn fairco_error_scales_with_rounds(cands in candidates(), extra in 1u64..50) {
        let book = some_book(&cands);
        let err = crate::policy::fairco_errors(&cands, &book, crate::policy::Target::Exposure, Rounds::Group);
        prop_assert!(err.iter().all(|e| *e >= 0.0 && e.is_finite()));
        let mut scaled = ExposureBook::new();
        for (g, a) in book.iter() {
            let mut a = *a;
            a.rounds *= extra + 1;
            a.exposure *= (extra + 1) as f64;
            a.merit *= (extra + 1) as f64;
            scaled.set(*g, a);
        }
        let err2 = crate::policy::fairco_errors(&cands, &scaled, crate::policy::Target::Exposure, Rounds::Group);
        for (e, e2) in err.iter().zip(&err2) {
            prop_assert!((e2 - e * (extra + 1) as f64).abs() <= 1e-9 * (1.0 + e2.abs()), "{e} {e2}");
        }
    }

    #[test]
    fn stochastic_is_deterministic_per_seed(cands in candidates(), seed in any::<u64>()) {
        let book = ExposureBook::new();
        let p = Policy::Stochastic { temperature: 0.3 };
        prop_assert_eq!(rank(&p, &cands, &book, seed), rank(&p, &cands, &book, seed));
    }

    #[test]
    fn exposure_per_page_is_the_attention_total(cands in candidates(), k in 1usize..20, first in 1usize..120) {
        for att in [Attention::Log, Attention::Trec, Attention::Rbp { gamma: 0.5 }] {
            let shown: Vec<usize> = (0..k.min(cands.len())).collect();
            let delta = page_delta(&cands, &shown, first, &att);
            let total: f64 = delta.values().map(|a| a.exposure).sum();
            let want: f64 = (first..first + shown.len()).map(|j| att.weight(j)).sum();
            prop_assert!((total - want).abs() < 1e-9);
            let merit: f64 = delta.values().map(|a| a.merit).sum();
            let want_merit: f64 = cands.iter().map(|c| c.relevance).sum();
            prop_assert!((merit - want_merit).abs() < 1e-9);
        }
    }

    /// Over a fixed stream of queries in which popularity and relevance go
    /// together (the head's models are the more relevant, as on a hub where
    /// the popular get judged best), any lambda > 0 gives the long tail
    /// (models outside the top 10% by popularity) at least the cumulative
    /// exposure that lambda = 0 (pure relevance) gives it.
    ///
    /// "Raising lambda never lowers the tail's exposure" between two positive
    /// lambdas is false for the bounded controller: proptest found lambda 1.56 -> 29.00 but
    /// 1.89 -> 28.98, and 0.215 -> 14.61 but 0.299 -> 14.23 (of 18.9): the
    /// correction reorders the tail among itself and the stream's later
    /// pages change. `tail_exposure_grows_with_lambda_on_average` checks the
    /// claim in expectation instead.
    #[test]
    fn fairness_never_gives_the_tail_less_than_relevance(
        stream in proptest::collection::vec(proptest::collection::vec((0usize..40, 0.0f64..=1.0), 5..25), 5..40),
        lambda in 0.0f64..4.0,
    ) {
        let (zero, _) = tail_exposure(&stream, 0.0);
        let (tail, _) = tail_exposure(&stream, lambda);
        prop_assert!(tail >= zero - 1e-9, "lambda 0 -> {zero}, {lambda} -> {tail}");
    }
}

/// Cumulative (tail, total) exposure of serving `stream` (per query: model,
/// raw relevance) under `fair_bounded`, pages of 5, 40 models where 36..39 are the
/// head (top 10% by popularity) and are the more relevant.
fn tail_exposure(stream: &[Vec<(usize, f64)>], lambda: f64) -> (f64, f64) {
    let mut book = ExposureBook::new();
    let (mut tail, mut all) = (0.0, 0.0);
    for q in stream {
        let mut seen = std::collections::HashSet::new();
        let cands: Vec<Candidate> = q
            .iter()
            .filter(|(m, _)| seen.insert(*m))
            .map(|&(m, r)| {
                let quantile = m as f64 / 39.0;
                let relevance = if quantile >= 0.9 {
                    0.5 + r / 2.0
                } else {
                    r / 2.0
                };
                Candidate {
                    relevance,
                    merit: relevance,
                    calls: 0.0,
                    quantile,
                    group: m as u64,
                    key: m as u64,
                }
            })
            .collect();
        let order = rank(&Policy::FairBounded { lambda }, &cands, &book, 0);
        let shown: Vec<usize> = order.iter().take(5).map(|r| r.index).collect();
        let delta = page_delta(&cands, &shown, 1, &Attention::Log);
        for &i in &shown {
            let e = delta[&cands[i].group].exposure;
            all += e;
            if cands[i].quantile < 0.9 {
                tail += e;
            }
        }
        book.apply(&delta);
    }
    (tail, all)
}

/// Averaged over 300 seeded random query streams, the tail's share of
/// exposure grows with lambda.
#[test]
fn tail_exposure_grows_with_lambda_on_average() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let streams: Vec<Vec<Vec<(usize, f64)>>> = (0..300)
        .map(|_| {
            (0..rng.gen_range(10..40))
                .map(|_| {
                    (0..rng.gen_range(6..20))
                        .map(|_| (rng.gen_range(0..40), rng.gen::<f64>()))
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut prev = -1.0;
    for lambda in [0.0, 0.25, 0.5, 1.0, 2.0, 4.0] {
        let share: f64 = streams
            .iter()
            .map(|s| {
                let (t, a) = tail_exposure(s, lambda);
                t / a
            })
            .sum::<f64>()
            / streams.len() as f64;
        assert!(
            share >= prev,
            "mean tail share fell to {share} at lambda {lambda} (was {prev})"
        );
        prev = share;
    }
}

#[test]
fn stochastic_matches_plackett_luce() {
    let cands: Vec<Candidate> = [1.0, 0.5, 0.0]
        .iter()
        .enumerate()
        .map(|(i, &r)| Candidate {
            relevance: r,
            merit: r,
            calls: 0.0,
            quantile: 0.0,
            group: i as u64,
            key: i as u64,
        })
        .collect();
    let t = 0.5;
    let w: Vec<f64> = cands.iter().map(|c| (c.relevance / t).exp()).collect();
    let s: f64 = w.iter().sum();
    let book = ExposureBook::new();
    let n = 40_000;
    let mut first = [0usize; 3];
    let mut exact_012 = 0;
    for seed in 0..n {
        let r = rank(&Policy::Stochastic { temperature: t }, &cands, &book, seed);
        first[r[0].index] += 1;
        if r.iter().map(|x| x.index).eq([0, 1, 2]) {
            exact_012 += 1;
        }
    }
    for i in 0..3 {
        let p = first[i] as f64 / n as f64;
        assert!(
            (p - w[i] / s).abs() < 0.01,
            "P(first = {i}) = {p}, want {}",
            w[i] / s
        );
    }
    let p012 = exact_012 as f64 / n as f64;
    let want = w[0] / s * w[1] / (w[1] + w[2]);
    assert!((p012 - want).abs() < 0.01, "P(0,1,2) = {p012}, want {want}");
}
