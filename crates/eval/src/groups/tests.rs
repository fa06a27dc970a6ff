//! Group reports checked against hand arithmetic (the expected numbers are
//! written out here, not computed with the module's functions), against
//! brute force, and for invariance under page order.

use std::collections::HashMap;

use hubsearch_core::{BuilderKey, ModelKey};
use hubsearch_engine::ledger::{LoggedCandidate, PageLog, ShownLog};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs())),
        "{what}: {a} != {b}"
    );
}

fn some(a: Option<f64>, b: f64, what: &str) {
    close(a.unwrap_or_else(|| panic!("{what}: none")), b, what);
}

/// A candidate: (model id, merit, logged quantile).
fn cand(id: &str, merit: f64, quantile: f64) -> LoggedCandidate {
    LoggedCandidate {
        model: ModelKey::of(id),
        builder: BuilderKey::of(id.split('/').next().unwrap()),
        relevance: merit,
        merit,
        calls: 0.0,
        quantile,
    }
}

/// A page: candidates (model id, merit, logged quantile) in ranked order,
/// the shown ones from `first_rank` with the given exposures.
fn page(
    id: u64,
    time: u64,
    query: &str,
    policy: &str,
    first_rank: usize,
    candidates: &[(&str, f64, f64)],
    exposures: &[f64],
) -> PageLog {
    let ranked: Vec<LoggedCandidate> = candidates
        .iter()
        .map(|&(id, merit, quantile)| cand(id, merit, quantile))
        .collect();
    let shown = exposures
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            let id = candidates[first_rank - 1 + k].0;
            ShownLog {
                model: id.into(),
                builder: id.split('/').next().unwrap().into(),
                rank: first_rank + k,
                exposure: e,
                relevance: ranked[first_rank - 1 + k].relevance,
                score: 0.0,
                propensity: None,
            }
        })
        .collect();
    PageLog {
        page: id,
        time,
        query: query.into(),
        mode: "text".into(),
        policy: policy.into(),
        group: "model".into(),
        candidates: ranked.len(),
        shown,
        first_rank,
        ranked,
        ..Default::default()
    }
}

fn call(seq: u64, time: u64, model: &str, page: Option<u64>, rank: Option<u64>) -> Call {
    Call {
        seq,
        time,
        model: model.into(),
        builder: model.split('/').next().unwrap().into(),
        amount_usd: 0.01,
        page,
        rank,
    }
}

/// Three pages, two queries, three builders (docs: the worked example).
fn tiny() -> (Vec<PageLog>, Vec<Call>) {
    // q1's candidates, logged the same on both of its pages.
    let (a1, b1, c1) = (("a/1", 0.5, 0.1), ("b/1", 0.3, 0.5), ("c/1", 0.2, 0.95));
    let p0 = page(0, 100, "q1", "relevance", 1, &[a1, b1, c1], &[1.0, 0.5]);
    let q2 = [("b/1", 0.4, 0.5), ("a/2", 0.4, 0.99)];
    let p1 = page(1, 200, "q2", "stochastic", 1, &q2, &[1.0]);
    let p2 = page(2, 300, "q1", "relevance", 2, &[a1, c1, b1], &[0.5, 0.25]);
    let calls = vec![
        call(0, 100, "a/1", Some(0), Some(1)),
        call(1, 200, "b/1", Some(1), Some(1)),
        call(2, 300, "c/1", Some(2), Some(2)),
        // No page: placed by time (window 3, the first whose last page's
        // time is >= 250).
        call(3, 250, "a/2", None, None),
    ];
    (vec![p0, p1, p2], calls)
}

fn opts(grouping: Grouping, windows: usize) -> Options {
    Options {
        grouping,
        windows,
        ..Default::default()
    }
}

fn group<'a>(r: &'a Report, name: &str) -> &'a GroupRow {
    r.groups
        .iter()
        .find(|g| g.group == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

#[test]
fn tiny_log_by_builder_by_hand() {
    let (pages, calls) = tiny();
    let r = analyse(&pages, &calls, None, &opts(Grouping::Builder, 3)).unwrap();
    // By hand: a: E = 1.0, M = 0.5 + 0.4 + 0.5 = 1.4, I = 2 (one on page 0,
    // one by time); b: E = 0.5 + 1.0 + 0.25 = 1.75, M = 0.3 + 0.4 + 0.3 =
    // 1.0, I = 1; c: E = 0.5, M = 0.2 + 0.2 = 0.4, I = 1.
    let (a, b, c) = (group(&r, "a"), group(&r, "b"), group(&r, "c"));
    close(a.exposure, 1.0, "E(a)");
    close(a.merit, 1.4, "M(a)");
    close(a.calls, 2.0, "I(a)");
    close(b.exposure, 1.75, "E(b)");
    close(b.merit, 1.0, "M(b)");
    close(c.exposure, 0.5, "E(c)");
    close(c.merit, 0.4, "M(c)");
    close(a.exposure_share, 1.0 / 3.25, "a's exposure share");
    close(a.merit_share, 1.4 / 2.8, "a's merit share");
    some(a.impact_share, 0.5, "a's impact share");
    some(
        b.exposure_vs_merit,
        (1.75 / 3.25) / (1.0 / 2.8),
        "b's E/M share",
    );
    some(
        c.impact_vs_merit,
        (1.0 / 4.0) / (0.4 / 2.8),
        "c's I/M share",
    );
    assert_eq!((a.models, a.candidate_slots, a.impressions), (2, 3, 1));
    assert_eq!((b.candidate_slots, b.impressions), (3, 3));
    // Builders by exposure: b, a, c.
    let order: Vec<&str> = r.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(order, ["b", "a", "c"]);
    close(r.totals.exposure, 3.25, "total E");
    close(r.totals.calls, 4.0, "total I");
    assert_eq!(r.input.calls_on_pages, 3);
    assert_eq!(r.input.calls_by_time, 1);
    assert_eq!(r.input.later_pages, 1);
    assert_eq!(r.input.key_mismatches, 0);

    // Amortized, final: E/M = a 1/1.4, b 1.75, c 1.25.
    let last = &r.windows.last().unwrap().figures;
    assert_eq!(r.windows.len(), 3);
    assert_eq!(last.pages, 3);
    let (ra, rb, rc) = (1.0 / 1.4, 1.75, 1.25);
    some(last.exposure.max_min, rb - ra, "D_E max-min");
    some(
        last.exposure.mean_pairwise,
        ((rb - ra) + (rc - ra) + (rb - rc)) / 3.0,
        "D_E pairwise",
    );
    // I/M = a 2/1.4, b 1, c 2.5.
    some(last.impact.max_min, 2.5 - 1.0, "D_I max-min");
    some(
        last.impact.mean_pairwise,
        ((2.0 / 1.4 - 1.0) + (2.5 - 2.0 / 1.4) + 1.5) / 3.0,
        "D_I pairwise",
    );
    // Per query: q1 (pages 0, 2): E/M a 1/1, b 0.75/0.6, c 0.5/0.4; I/M
    // a 1, b 0, c 2.5. q2 (page 1): E/M a 0, b 2.5; I/M a 0, b 2.5.
    some(
        last.per_query_exposure.max_min,
        (0.25 + 2.5) / 2.0,
        "per-query D_E max-min",
    );
    some(
        last.per_query_exposure.mean_pairwise,
        ((0.25 + 0.25 + 0.0) / 3.0 + 2.5) / 2.0,
        "per-query D_E pairwise",
    );
    some(last.per_query_impact.max_min, 2.5, "per-query D_I max-min");
    some(
        last.per_query_impact.mean_pairwise,
        ((1.0 + 1.5 + 2.5) / 3.0 + 2.5) / 2.0,
        "per-query D_I pairwise",
    );
    assert_eq!(last.per_query_exposure.queries, 2);
    // After page 0 alone: E/M a 2, b 0.5/0.3, c 0 (c has merit, no
    // exposure); the call by time is not yet counted.
    let first = &r.windows[0].figures;
    some(first.exposure.max_min, 2.0, "window 1 D_E max-min");
    close(first.calls, 1.0, "window 1 calls");
    close(r.windows[1].figures.calls, 2.0, "window 2 calls");
    close(last.calls, 4.0, "window 3 calls");
    // Policies alone: relevance has pages 0 and 2 (q1 only).
    let rel = r
        .by_policy
        .iter()
        .find(|p| p.policy == "relevance")
        .map(|p| &p.figures)
        .unwrap();
    assert_eq!(rel.pages, 2);
    some(rel.exposure.max_min, 0.25, "relevance's D_E");
    some(
        rel.per_query_exposure.max_min,
        0.25,
        "relevance's per-query D_E",
    );
}

#[test]
fn tiers_from_the_log_and_from_cards() {
    let (pages, calls) = tiny();
    // Logged quantiles: a/1 0.1, b/1 0.5, c/1 0.95, a/2 0.99; cut at 0.9:
    // tail = a/1 + b/1, head = c/1 + a/2.
    let g = Grouping::Tier {
        cuts: vec![0.9],
        source: TierSource::Logged,
    };
    let r = analyse(&pages, &calls, None, &opts(g, 1)).unwrap();
    let (tail, head) = (group(&r, "q < 0.9"), group(&r, "q >= 0.9"));
    // tail: E = 1 + 0.5 + 1 + 0.25, M = 0.5+0.3 + 0.4 + 0.5+0.3.
    close(tail.exposure, 2.75, "E(tail)");
    close(tail.merit, 2.0, "M(tail)");
    close(head.exposure, 0.5, "E(head)");
    close(head.merit, 0.8, "M(head)");
    // The call on no page (a/2) has no logged quantile and no card.
    assert_eq!(r.input.unplaced.no_quantile, 1);
    close(group(&r, UNKNOWN).calls, 1.0, "unknown's call");

    // From cards: downloads a/1 0, b/1 5, c/1 5, a/2 100, x/9 1000.
    // Mid-rank quantiles over [0, 5, 5, 100, 1000]: 0.1, 0.4, 0.4, 0.7, 0.9.
    let cards = Cards::new(
        [
            ("a/1", 0),
            ("b/1", 5),
            ("c/1", 5),
            ("a/2", 100),
            ("x/9", 1000),
        ]
        .map(|(id, d)| CardFacts {
            id: id.into(),
            builder: id.split('/').next().unwrap().into(),
            downloads: d,
            created: None,
            modified: None,
        }),
    );
    close(cards.quantile(5), 0.4, "q(5)");
    close(cards.quantile(1000), 0.9, "q(1000)");
    close(cards.quantile(7), 0.6, "q(7) between");
    let g = Grouping::Tier {
        cuts: vec![0.5, 0.9],
        source: TierSource::Cards,
    };
    let r = analyse(&pages, &calls, Some(&cards), &opts(g, 1)).unwrap();
    let names: Vec<&str> = r.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["q < 0.5", "0.5 <= q < 0.9", "q >= 0.9"]);
    // q < 0.5: a/1, b/1, c/1 (2 + 3 + 2 slots); 0.5..0.9: a/2 (1 slot, 1 call by
    // time); q >= 0.9: nobody shown (x/9 is no candidate).
    assert_eq!(r.groups[0].candidate_slots, 7);
    assert_eq!(r.groups[1].candidate_slots, 1);
    close(r.groups[1].calls, 1.0, "a/2's call");
    assert_eq!(r.groups[2].candidate_slots, 0);
    assert_eq!(r.input.unplaced, Unplaced::default());
}

#[test]
fn ages_from_hand_made_cards() {
    let t: u64 = 1_000_000_000;
    let day = 86_400i64;
    let ids = ["m/1", "m/2", "m/3", "m/4", "m/5"];
    let ranked: Vec<(&str, f64, f64)> = ids.iter().map(|&id| (id, 0.2, 0.5)).collect();
    let pages = vec![page(7, t, "q", "relevance", 1, &ranked, &[1.0, 0.5])];
    // m/1 created 10 days before the page; m/2 no creation date, modified
    // 200 days before; m/3 no dates; m/4 modified after the page; m/5 has
    // no card.
    let card = |id: &str, created: Option<i64>, modified: Option<i64>| CardFacts {
        id: id.into(),
        builder: "m".into(),
        downloads: 0,
        created,
        modified,
    };
    let cards = Cards::new([
        card("m/1", Some(t as i64 - 10 * day), Some(t as i64 - 2 * day)),
        card("m/2", None, Some(t as i64 - 200 * day)),
        card("m/3", None, None),
        card("m/4", None, Some(t as i64 + day)),
    ]);
    let g = Grouping::Age {
        cuts_days: vec![30.0, 365.0],
    };
    let r = analyse(&pages, &[], Some(&cards), &opts(g, 1)).unwrap();
    let names: Vec<&str> = r.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(
        names,
        ["age < 30d", "30d <= age < 365d", "age >= 365d", UNKNOWN]
    );
    let slots: Vec<usize> = r.groups.iter().map(|g| g.candidate_slots).collect();
    assert_eq!(slots, [1, 1, 0, 3]);
    close(r.groups[0].exposure, 1.0, "the young model's exposure");
    close(r.groups[1].exposure, 0.5, "m/2's exposure");
    assert_eq!(
        r.input.unplaced,
        Unplaced {
            no_quantile: 0,
            no_card: 1,
            no_date: 1,
            dated_after_page: 1
        }
    );
    // Dates as cards carry them.
    let mut c = hubsearch_core::ModelCard {
        id: "m/9".into(),
        last_modified: Some("2021-05-19T23:55:12.000Z".into()),
        ..Default::default()
    };
    assert_eq!(CardFacts::of(&c).date(), Some(1_621_468_512));
    c.created_at = Some("2020-01-01T00:00:00Z".into());
    assert_eq!(CardFacts::of(&c).date(), Some(1_577_836_800));
    // Without cards, an age grouping is refused; bad cut points too.
    let e = analyse(
        &pages,
        &[],
        None,
        &opts(
            Grouping::Age {
                cuts_days: vec![30.0],
            },
            1,
        ),
    )
    .unwrap_err();
    assert!(e.contains("needs cards"), "{e}");
    let bad = Grouping::Tier {
        cuts: vec![0.9, 0.5],
        source: TierSource::Logged,
    };
    assert!(analyse(&pages, &[], None, &opts(bad, 1)).is_err());
    let bad = Grouping::Tier {
        cuts: vec![1.5],
        source: TierSource::Logged,
    };
    assert!(analyse(&pages, &[], None, &opts(bad, 1)).is_err());
}

#[test]
fn disparity_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for n in 0..40 {
        let x: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..5.0)).collect();
        let d = disparity(x.clone());
        assert_eq!(d.groups, n);
        if n < 2 {
            assert!(d.max_min.is_none() && d.mean_pairwise.is_none());
            continue;
        }
        let (mut sum, mut pairs, mut hi, mut lo) = (0.0, 0.0, f64::MIN, f64::MAX);
        for i in 0..n {
            hi = hi.max(x[i]);
            lo = lo.min(x[i]);
            for j in i + 1..n {
                sum += (x[i] - x[j]).abs();
                pairs += 1.0;
            }
        }
        some(d.max_min, hi - lo, "max-min");
        some(d.mean_pairwise, sum / pairs, "pairwise");
    }
    assert_eq!(window_ends(10, 3), [4, 7, 10]);
    assert_eq!(window_ends(2, 5), [1, 2]);
    assert_eq!(window_ends(0, 5), Vec::<usize>::new());
}

/// A random log: `n` pages over 6 queries, 30 models of 6 builders.
fn random_log(seed: u64, n: u64) -> (Vec<PageLog>, Vec<Call>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<String> = (0..30).map(|i| format!("b{}/m{i}", i % 6)).collect();
    let mut pages = Vec::new();
    let mut calls = Vec::new();
    for p in 0..n {
        let mut pick: Vec<&String> = ids.iter().collect();
        pick.shuffle(&mut rng);
        let k = rng.gen_range(3..12);
        let pick = &pick[..k];
        let ranked: Vec<(&str, f64, f64)> = pick
            .iter()
            .map(|id| {
                (
                    id.as_str(),
                    rng.gen_range(0.0..1.0),
                    rng.gen_range(0.0..1.0),
                )
            })
            .collect();
        let first = if rng.gen_bool(0.2) { 2 } else { 1 };
        let shown_n = rng.gen_range(1..=(k - first + 1).min(5));
        let exp: Vec<f64> = (0..shown_n)
            .map(|j| 1.0 / ((first + j + 1) as f64).log2())
            .collect();
        let q = format!("q{}", rng.gen_range(0..6));
        let policy = if rng.gen_bool(0.5) {
            "relevance"
        } else {
            "stochastic"
        };
        pages.push(page(p, 1000 + p, &q, policy, first, &ranked, &exp));
        for j in 0..shown_n {
            if rng.gen_bool(0.3) {
                calls.push(call(
                    calls.len() as u64,
                    1000 + p,
                    ranked[first - 1 + j].0,
                    Some(p),
                    Some((first + j) as u64),
                ));
            }
        }
        if rng.gen_bool(0.05) {
            calls.push(call(calls.len() as u64, 1000 + p, ranked[0].0, None, None));
        }
    }
    (pages, calls)
}

#[test]
fn page_order_does_not_change_the_final_figures() {
    for seed in 0..20 {
        let (pages, calls) = random_log(seed, 80);
        // Another serving order: page ids permuted, calls follow their page.
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let mut perm: Vec<u64> = (0..pages.len() as u64).collect();
        perm.shuffle(&mut rng);
        let mut shuffled: Vec<PageLog> = pages
            .iter()
            .map(|p| PageLog {
                page: perm[p.page as usize],
                ..p.clone()
            })
            .collect();
        shuffled.shuffle(&mut rng);
        let moved: Vec<Call> = calls
            .iter()
            .map(|c| Call {
                page: c.page.map(|p| perm[p as usize]),
                ..c.clone()
            })
            .collect();
        for grouping in [
            Grouping::Builder,
            Grouping::Tier {
                cuts: vec![0.3, 0.7],
                source: TierSource::Logged,
            },
        ] {
            let o = opts(grouping, 7);
            let a = analyse(&pages, &calls, None, &o).unwrap();
            let b = analyse(&shuffled, &moved, None, &o).unwrap();
            let (fa, fb) = (
                &a.windows.last().unwrap().figures,
                &b.windows.last().unwrap().figures,
            );
            for (x, y, what) in [
                (fa.exposure.max_min, fb.exposure.max_min, "D_E max-min"),
                (
                    fa.exposure.mean_pairwise,
                    fb.exposure.mean_pairwise,
                    "D_E pairwise",
                ),
                (fa.impact.max_min, fb.impact.max_min, "D_I max-min"),
                (
                    fa.impact.mean_pairwise,
                    fb.impact.mean_pairwise,
                    "D_I pairwise",
                ),
                (
                    fa.per_query_exposure.max_min,
                    fb.per_query_exposure.max_min,
                    "q D_E",
                ),
                (
                    fa.per_query_impact.mean_pairwise,
                    fb.per_query_impact.mean_pairwise,
                    "q D_I",
                ),
            ] {
                some(y, x.unwrap(), what);
            }
            let rows = |r: &Report| {
                let mut v: Vec<(String, f64, f64, f64)> = r
                    .groups
                    .iter()
                    .map(|g| (g.group.clone(), g.exposure, g.merit, g.calls))
                    .collect();
                v.sort_by(|x, y| x.0.cmp(&y.0));
                v
            };
            let (ra, rb) = (rows(&a), rows(&b));
            assert_eq!(ra.len(), rb.len());
            for (x, y) in ra.iter().zip(&rb) {
                assert_eq!(x.0, y.0);
                close(x.1, y.1, "exposure");
                close(x.2, y.2, "merit");
                close(x.3, y.3, "calls");
            }
            // The path differs: the first window saw other pages.
            assert_eq!(a.windows.len(), b.windows.len());
        }
    }
}

#[test]
fn group_expected_exposure_by_hand() {
    // One query, one first page showing a/1 then b/1; a/1, b/1 and c/1
    // judged relevant (grade 1); a later page is not a ranking sample.
    let ranked = [("a/1", 0.5, 0.1), ("b/1", 0.3, 0.5), ("c/1", 0.2, 0.9)];
    let pages = vec![
        page(0, 10, "find it", "relevance", 1, &ranked, &[1.0, 0.5]),
        page(1, 11, "find it", "relevance", 3, &ranked, &[0.5]),
    ];
    let qrels: crate::trec::Qrels = [(
        "x1".to_string(),
        HashMap::from([
            ("a/1".to_string(), 1),
            ("b/1".to_string(), 1),
            ("c/1".to_string(), 1),
            ("d/1".to_string(), 0),
        ]),
    )]
    .into();
    let o = Options {
        judged: Some(Judged {
            queries: vec![crate::trec::Query {
                qid: "x1".into(),
                text: "find it".into(),
            }],
            qrels,
            options: rbp(0.5),
        }),
        ..opts(Grouping::Builder, 1)
    };
    let r = analyse(&pages, &[], None, &o).unwrap();
    let ee = r.expected_exposure.unwrap();
    assert_eq!(
        (ee.queries_matched, ee.queries_scored, ee.rankings),
        (1, 1, 1)
    );
    assert_eq!(ee.later_pages_skipped, 1);
    // rbp 0.5: eps(a) = 1, eps(b) = 0.5; three grade-1 documents share
    // ranks 0..2: each (1 - 0.5^3) / (3 * 0.5) = 7/12.
    let t = 7.0 / 12.0;
    close(ee.mean.disparity, 1.0 + 0.25, "EE-D");
    close(ee.mean.relevance, t * 1.5, "EE-R");
    close(
        ee.mean.difference,
        (1.0 - t).powi(2) + (0.5 - t).powi(2) + t * t,
        "EE-L",
    );
    let g: HashMap<&str, (f64, f64)> = ee
        .groups
        .iter()
        .map(|g| (g.group.as_str(), (g.exposure, g.target)))
        .collect();
    close(g["a"].0, 1.0, "eps(a)");
    close(g["c"].0, 0.0, "eps(c)");
    close(g["c"].1, t, "eps*(c)");
    assert!(!g.contains_key("d"), "grade 0 is no target");
}
