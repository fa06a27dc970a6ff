//! The pay-per-call study's simulator (docs/study.md): a world small enough
//! to compute by hand, determinism per seed, the feedback loop, and the
//! study's policies against the engine's.

use hubsearch_core::Rounds;
use hubsearch_rank::{rank, Account, Candidate, ExposureBook, Policy};
use hubsearch_sim::market::cache::encode_outcome;
use hubsearch_sim::market::sim::{
    fair_scores_with, run, static_score, top, Regime, RunSpec, Scored, StudyPolicy, TopK,
};
use hubsearch_sim::market::world::{Base, Builder, Cand, Kind, Model, QueryType, World};
use hubsearch_sim::market::StudyOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model(builder: u32, price: f64, downloads: f64) -> Model {
    Model {
        builder,
        task: 0,
        key: 100 + builder as u64,
        downloads,
        params_m: 100.0,
        params_known: true,
        price,
        entry_day: 0,
    }
}

fn cand(model: u32, relevance: f64, grade: u8) -> Cand {
    Cand {
        model,
        relevance,
        grade,
    }
}

fn qtype(cands: Vec<Cand>) -> QueryType {
    QueryType {
        text: "q".into(),
        kind: Kind::Need,
        task: 0,
        downloads: 0.0,
        cands,
    }
}

/// Three builders (A in the head, B and C in the tail), two query types:
/// type 0 finds A (grade 2) above C (grade 0), type 1 finds B above C.
fn hand_world() -> World {
    World {
        models: vec![
            model(0, 0.01, 0.0),
            model(1, 0.001, 0.0),
            model(2, 0.01, 0.0),
        ],
        builders: vec![
            Builder::incumbent(false),
            Builder::incumbent(true),
            Builder::incumbent(true),
        ],
        tasks: vec!["t".into()],
        types: vec![
            qtype(vec![cand(0, 0.9, 2), cand(2, 0.1, 0)]),
            qtype(vec![cand(1, 0.8, 2), cand(2, 0.2, 0)]),
        ],
        demand: vec![0.5, 0.5],
        initial_models: 3,
        initial_builders: 3,
    }
}

/// Users who always adopt the one model they see, streams of exactly 10
/// calls a day that never churn, and builders who retire a losing model at
/// once: every figure follows by hand.
fn hand_options() -> StudyOptions {
    StudyOptions {
        page: 1,
        outside_utility: -1000.0,
        calls_per_day_median: 10.0,
        calls_per_day_sigma: 0.0,
        churn_per_day: 0.0,
        exit_probability: 1.0,
        reentry_per_day: 0.0,
        platform_fee: 0.2,
        cost_per_call_usd: 0.0005,
        cost_per_call_per_m_params_usd: 0.0,
        dedicated_month_usd: [30.0, 30.0, 30.0],
        keep_builder_days: true,
        days: 40,
        ..StudyOptions::default()
    }
}

fn hand_spec(regime: Regime) -> RunSpec {
    RunSpec {
        policy: StudyPolicy::Relevance,
        regime,
        behaviour_seed: 9,
        // Two visits a day, one per type (systematic sampling of 0.5 / 0.5);
        // each stands for one real visit.
        visits_per_day: 2,
        traffic: 2.0,
        feedback: true,
        days: 40,
        pilot_days: 0,
    }
}

#[test]
fn a_small_world_computed_by_hand() {
    let w = hand_world();
    let o = hand_options();
    // Serverless: cost $0.0005 a call, no fixed cost. A is adopted once a
    // day, so on day d (0-based) it serves 10 (d + 1) calls and earns
    // 10 (d + 1) (0.01 x 0.8 - 0.0005) = 0.075 (d + 1); B earns
    // 10 (d + 1) (0.001 x 0.8 - 0.0005) = 0.003 (d + 1); C is never shown
    // first, earns nothing, loses nothing, and stays.
    let s = run(&w, &o, &hand_spec(Regime::Serverless));
    let sum = |k: f64, from: usize, to: usize| k * (from..=to).map(|d| (d + 1) as f64).sum::<f64>();
    for day in [0usize, 9, 29, 39] {
        let from = day.saturating_sub(29);
        assert!(
            (s.builder_profit_days[0][day] - sum(0.075, from, day)).abs() < 1e-9,
            "A, day {day}"
        );
        assert!(
            (s.builder_profit_days[1][day] - sum(0.003, from, day)).abs() < 1e-9,
            "B, day {day}"
        );
        assert_eq!(s.builder_profit_days[2][day], 0.0);
    }
    // Income is revenue net of the fee: A's 10 (d + 1) x 0.008 over 40 days.
    assert!((s.model_income[0] - 0.08 * (40.0 * 41.0 / 2.0)).abs() < 1e-9);
    assert_eq!(s.model_exit_day, vec![None, None, None]);
    // Tail builders viable at the end: B (profit > 0), not C (profit 0).
    assert_eq!(s.tail_viable_share, 0.5);
    assert_eq!(s.adoptions_per_visit, 1.0);
    assert_eq!(s.ndcg10, 1.0);
    // Exposure: rank 1 only, 1 / log2(2) = 1 per visit.
    assert_eq!(s.model_exposure, vec![40.0, 40.0, 0.0]);

    // Welfare: the one model shown is always looked at, so a visit's
    // surplus is ln(e^u0 + e^u) - u0 = u - u0 (e^u0 vanishes at u0 = -1000):
    // u = 1.5 x 2 - 0.5 ln(price / 0.001), A at $0.01 and B at $0.001.
    let (u_a, u_b) = (3.0 - 0.5 * 10f64.ln(), 3.0);
    let welfare = ((u_a + 1000.0) + (u_b + 1000.0)) / 2.0;
    assert!((s.welfare - welfare).abs() < 1e-9, "{}", s.welfare);

    // Dedicated: $30 a month = $1 a day per model, $0.0005 a call. Exits
    // follow the expected profit over 90 days (churn 0: today's calls for 90
    // days plus the inflow, 10 calls a day more each day: 90 x 91 / 2 x 10).
    // On day 29, the first day a model is 30 days old: A expects
    // 0.0075 x (300 x 90 + 10 x 4095) - 90 > 0 and stays; B expects
    // 0.0003 x 67,950 - 90 < 0 and C -90: both retired.
    let d = run(&w, &o, &hand_spec(Regime::Dedicated));
    assert!((d.builder_profit_days[0][29] - (0.075 * 465.0 - 30.0)).abs() < 1e-9);
    assert!((d.builder_profit_days[1][28] - (0.003 * 435.0 - 29.0)).abs() < 1e-9);
    assert!((d.builder_profit_days[2][28] + 29.0).abs() < 1e-9);
    assert_eq!(d.model_exit_day, vec![None, Some(29), Some(29)]);
    // A retired model's builder has nothing listed: no profit counted after.
    assert_eq!(d.builder_profit_days[1][30], 0.0);
    // C was never first on a page; after day 29 type 1 has nothing to show.
    assert_eq!(d.model_exposure, vec![40.0, 30.0, 0.0]);
    assert_eq!(d.tail_viable_share, 0.0);
    // B's calls never cover its fixed cost: not viable on any day.
    assert!(d.days.iter().all(|x| x.viable_tail_share == 0.0));
    assert_eq!(s.days[0].viable_tail_share, 0.5);
    // From day 30 type 1 has nothing listed: its visits still count, with
    // no surplus (lost supply) and nDCG 0 against the whole catalogue.
    let welfare_d = (40.0 * (u_a + 1000.0) + 30.0 * (u_b + 1000.0)) / 80.0;
    assert!((d.welfare - welfare_d).abs() < 1e-9, "{}", d.welfare);
    assert!((d.ndcg10 - 70.0 / 80.0).abs() < 1e-12, "{}", d.ndcg10);
    assert_eq!(d.ndcg10_listed, 1.0);

    // Retired models come back (at once here): B is listed again from day
    // 31 and, in its new grace period, stays to the end.
    let back = StudyOptions {
        reentry_per_day: 1.0,
        ..o.clone()
    };
    let r = run(&w, &back, &hand_spec(Regime::Dedicated));
    assert_eq!(r.model_exposure[1], 30.0 + 9.0);
    assert_eq!(r.model_exit_day[1], Some(29));

    // One simulated visit standing for 4 real ones: a block of 4 adopters
    // (sigma 0: 10 calls a day each), so A earns 4 x 0.08 (d + 1) a day.
    let mut four = hand_spec(Regime::Serverless);
    four.traffic = 8.0;
    let f = run(&w, &o, &four);
    assert!((f.model_income[0] - 4.0 * 0.08 * 820.0).abs() < 1e-9);
}

/// With the warm start the adopters begin at their long-run level: calls a
/// day are flat from the first period to the last; a cold start climbs.
#[test]
fn the_warm_start_begins_at_the_long_run_level() {
    let w = World {
        types: vec![qtype(vec![
            cand(0, 0.9, 2),
            cand(1, 0.5, 2),
            cand(2, 0.1, 1),
        ])],
        demand: vec![1.0],
        ..hand_world()
    };
    let o = StudyOptions {
        days: 60,
        years: 3,
        exit_probability: 0.0,
        reentry_per_day: 0.0,
        ..StudyOptions::default()
    };
    let spec = |pilot_days| RunSpec {
        policy: StudyPolicy::Relevance,
        regime: Regime::Serverless,
        behaviour_seed: 3,
        visits_per_day: 200,
        traffic: 200.0,
        feedback: true,
        days: 180,
        pilot_days,
    };
    let mean = |o: &hubsearch_sim::market::Outcome, a: usize, b: usize| {
        o.days[a..b].iter().map(|d| d.calls).sum::<f64>() / (b - a) as f64
    };
    let warm = run(&w, &o, &spec(60));
    let cold = run(&w, &o, &spec(0));
    let (w1, w3) = (mean(&warm, 0, 30), mean(&warm, 150, 180));
    assert!((w1 / w3 - 1.0).abs() < 0.15, "warm: {w1} then {w3}");
    let (c1, c3) = (mean(&cold, 0, 30), mean(&cold, 150, 180));
    assert!(c1 / c3 < 0.5, "cold: {c1} then {c3}");
    assert_eq!(warm.periods.len(), 3);
}

/// A random base: `n` models of `b` builders over `t` query types.
fn random_base(n: usize, b: usize, t: usize, seed: u64) -> Base {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let models: Vec<Model> = (0..n)
        .map(|i| {
            Model::free(
                (i % b) as u32,
                (i % 3) as u32,
                i as u64 * 7919,
                if rng.gen_bool(0.3) {
                    0.0
                } else {
                    (rng.gen::<f64>() * 12.0).exp().floor()
                },
            )
        })
        .collect();
    let types = (0..t)
        .map(|_| {
            let k = rng.gen_range(3..40);
            let mut cands: Vec<Cand> = (0..k)
                .map(|_| cand(rng.gen_range(0..n as u32), rng.gen(), rng.gen_range(0..3)))
                .collect();
            cands.sort_by_key(|c| c.model);
            cands.dedup_by_key(|c| c.model);
            QueryType {
                text: "q".into(),
                kind: if rng.gen_bool(0.3) {
                    Kind::Name
                } else {
                    Kind::Need
                },
                task: 0,
                downloads: rng.gen::<f64>() * 1e4,
                cands,
            }
        })
        .collect();
    Base {
        models,
        builders: (0..b).map(|i| Builder::incumbent(i % 10 != 0)).collect(),
        tasks: vec!["a".into(), "b".into(), "c".into()],
        types,
        models_without_task: 0,
    }
}

fn small_options() -> StudyOptions {
    StudyOptions {
        days: 60,
        visits_per_day: 300,
        traffic: 3000.0,
        entry_rate: 0.01,
        ..StudyOptions::default()
    }
}

fn spec(policy: StudyPolicy, regime: Regime, seed: u64) -> RunSpec {
    RunSpec {
        policy,
        regime,
        behaviour_seed: seed,
        visits_per_day: 300,
        traffic: 3000.0,
        feedback: true,
        days: 60,
        pilot_days: 10,
    }
}

#[test]
fn a_run_is_reproducible_bit_for_bit_per_seed() {
    let base = random_base(400, 60, 30, 1);
    let o = small_options();
    let w1 = World::sample(&base, &o, 5);
    let w2 = World::sample(&base, &o, 5);
    assert!(w1.models.len() > 400, "entrants arrive");
    for p in [
        StudyPolicy::Fair { lambda: 0.01 },
        StudyPolicy::Stochastic { temperature: 0.1 },
        StudyPolicy::TailBoost { beta: 1.0 },
    ] {
        let a = run(&w1, &o, &spec(p, Regime::Dedicated, 3));
        let b = run(&w2, &o, &spec(p, Regime::Dedicated, 3));
        let json = |x| serde_json::to_string(x).unwrap();
        assert!(
            json(&a) == json(&b),
            "{} differs between two runs",
            p.label()
        );
        assert_eq!(a.model_income, b.model_income);
        assert_eq!(a.model_exit_day, b.model_exit_day);
        // Another behaviour seed is another year.
        let c = run(&w1, &o, &spec(p, Regime::Dedicated, 4));
        assert_ne!(a.model_income, c.model_income, "{}", p.label());
    }
    // Another world seed, other prices and entrants.
    let w3 = World::sample(&base, &o, 6);
    assert_ne!(
        w1.models.iter().map(|m| m.price).collect::<Vec<_>>()[..400],
        w3.models.iter().map(|m| m.price).collect::<Vec<_>>()[..400]
    );
}

#[test]
fn popularity_learns_from_calls_the_feedback_loop() {
    // One query type: A, popular in 2022 but only close to what is asked
    // (grade 1), and B, unknown but exactly right (grade 2). Under
    // `popularity`, A comes first; users who look further adopt B; with
    // feedback B's calls overtake A's decaying downloads and B moves up.
    let w = World {
        models: vec![model(0, 0.001, 1000.0), model(1, 0.001, 0.0)],
        builders: vec![Builder::incumbent(false), Builder::incumbent(true)],
        tasks: vec!["t".into()],
        types: vec![qtype(vec![cand(0, 0.5, 1), cand(1, 0.5, 2)])],
        demand: vec![1.0],
        initial_models: 2,
        initial_builders: 2,
    };
    let o = StudyOptions {
        page: 2,
        days: 120,
        exit_probability: 0.0,
        ..StudyOptions::default()
    };
    let mut s = spec(
        StudyPolicy::Popularity { alpha: 1.0 },
        Regime::Serverless,
        1,
    );
    s.days = 120;
    s.visits_per_day = 20;
    s.traffic = 20.0;
    let on = run(&w, &o, &s);
    let off = run(
        &w,
        &o,
        &RunSpec {
            feedback: false,
            ..s
        },
    );
    // Without feedback B is second on every page: exposure 1 / log2(3) per visit.
    let per_visit = 1.0 / 3f64.log2();
    assert!((off.model_exposure[1] - per_visit * 2400.0).abs() < 1e-6);
    // With it, B reaches the top and keeps it.
    assert!(
        on.model_exposure[1] > off.model_exposure[1] * 1.2,
        "B's exposure with feedback {} vs without {}",
        on.model_exposure[1],
        off.model_exposure[1]
    );
    assert!(on.model_income[1] > off.model_income[1]);
}

#[test]
fn the_study_ranks_as_the_engine_does() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for trial in 0..50 {
        let n = rng.gen_range(2..60);
        let rel: Vec<f64> = (0..n).map(|_| rng.gen()).collect();
        let x: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() * 5.0).collect();
        let imp: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() * 50.0).collect();
        let merit: Vec<f64> = (0..n)
            .map(|_| {
                if rng.gen_bool(0.1) {
                    0.0
                } else {
                    rng.gen::<f64>() * 9.0
                }
            })
            .collect();
        let seen: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.8)).collect();
        let pop: Vec<f64> = (0..n).map(|_| (rng.gen::<f64>() * 10.0).exp()).collect();
        let quant: Vec<f64> = (0..n).map(|_| rng.gen()).collect();
        let pages: u64 = rng.gen_range(0..10_000);
        let keys: Vec<u64> = (0..n).map(|i| (i as u64 * 31) % 97).collect();
        let mut book = ExposureBook::new();
        for i in 0..n {
            book.set(
                keys[i],
                Account {
                    exposure: x[i],
                    merit: merit[i],
                    rounds: u64::from(seen[i]),
                    impact: imp[i],
                },
            );
        }
        book.set_pages(pages);
        let cands: Vec<Candidate> = (0..n)
            .map(|i| Candidate {
                relevance: rel[i],
                merit: rel[i],
                calls: pop[i],
                quantile: quant[i],
                group: keys[i],
                key: keys[i],
            })
            .collect();
        let k = 10.min(n);
        for p in [
            StudyPolicy::Relevance,
            StudyPolicy::Popularity { alpha: 0.7 },
            StudyPolicy::TailBoost { beta: 2.0 },
            StudyPolicy::Fair { lambda: 0.003 },
            StudyPolicy::FairImpact { lambda: 0.0002 },
        ] {
            let engine: Vec<u64> = rank(&p.to_rank(), &cands, &book, 0)
                .iter()
                .take(k)
                .map(|r| keys[r.index])
                .collect();
            let mut ours: Vec<Scored> = (0..n)
                .map(|i| Scored {
                    score: static_score(&p, rel[i], pop[i], quant[i]),
                    key: keys[i],
                    item: i as u32,
                })
                .collect();
            match p {
                StudyPolicy::Fair { lambda } => {
                    fair_scores_with(&mut ours, &x, &merit, &seen, pages, lambda, &mut Vec::new())
                }
                StudyPolicy::FairImpact { lambda } => fair_scores_with(
                    &mut ours,
                    &imp,
                    &merit,
                    &seen,
                    pages,
                    lambda,
                    &mut Vec::new(),
                ),
                _ => {}
            }
            top(&mut ours, k);
            let ours: Vec<u64> = ours.iter().take(k).map(|c| c.key).collect();
            assert_eq!(ours, engine, "trial {trial}, {}", p.label());
        }
    }
    // The study's FairCo is the engine's global-rounds FairCo.
    assert!(matches!(
        StudyPolicy::Fair { lambda: 1.0 }.to_rank(),
        Policy::Fair {
            rounds: Rounds::Global,
            ..
        }
    ));
}

/// Repricing by hand (docs/study.md, Strategic builders): in the hand world
/// every visitor adopts the one model shown whatever its price, so a model
/// that sells earns more each spell and keeps raising its price by x1.25
/// until the cap (10 x its cost of $0.0005: $0.005); one priced above the
/// cap is brought down to it; a model never shown moves up once (its first
/// spell has nothing to compare with), then, with no sales after no sales,
/// down by /1.25 a spell to its floor, break-even net of the fee ($0.0005 /
/// 0.8). Twelve spells of 5 days.
#[test]
fn builders_reprice_toward_profit_within_floor_and_cap() {
    let w = hand_world();
    let mut o = hand_options();
    o.days = 60;
    o.reprice_days = 5;
    o.reprice_step = 1.25;
    o.reprice_cap_markup = 10.0;
    let spec = RunSpec {
        days: 60,
        ..hand_spec(Regime::Serverless)
    };
    let out = run(&w, &o, &spec);
    let cap = 0.005;
    let floor = 0.0005 / 0.8;
    // Model 1 from $0.001: 1.25^7 = 4.77 < 5 < 1.25^8, so capped by spell 8.
    assert!(
        (out.model_price[1] - cap).abs() < 1e-12,
        "{:?}",
        out.model_price
    );
    // Model 0 from $0.01, above the cap: at the cap from the first spell.
    assert!((out.model_price[0] - cap).abs() < 1e-12);
    // Model 2: up to the cap, then 11 spells down; 0.005 / 1.25^10 < floor.
    assert!((out.model_price[2] - floor).abs() < 1e-12);
    assert!(0.005 / 1.25f64.powi(9) > floor && 0.005 / 1.25f64.powi(10) < floor);
    // Two of three listed models at the cap at the end; the median markup
    // (price over cost) is the cap's 10.
    let end = out.periods.last().unwrap();
    assert!((end.at_cap_share - 2.0 / 3.0).abs() < 1e-12);
    assert!((end.median_markup - 10.0).abs() < 1e-9);
    // Without repricing the prices stay the world's.
    o.reprice_days = 0;
    let fixed = run(&w, &o, &spec);
    let world_prices: Vec<f64> = w.models.iter().map(|m| m.price).collect();
    assert_eq!(fixed.model_price, world_prices);
}

/// Pages by the fast path (precomputed candidates, FairCo's merit booked as
/// it is read, the page kept as the scores come) are the general path's bit
/// for bit: every figure and every per-model vector, for each per-visit
/// policy and the static ones (their day's page), in a world with a type
/// that lists a model twice (that type always takes the general path,
/// sharing the book with the rest).
#[test]
fn per_visit_pages_are_the_same_by_the_fast_path() {
    let mut base = random_base(400, 60, 30, 2);
    let twice = base.types[0].cands[0];
    base.types[0].cands.push(twice);
    let fast = small_options();
    let slow = StudyOptions {
        slow_pages: true,
        ..small_options()
    };
    let w = World::sample(&base, &fast, 5);
    let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for p in [
        StudyPolicy::Fair { lambda: 1e-3 },
        StudyPolicy::Fair { lambda: 10.0 },
        StudyPolicy::FairImpact { lambda: 1e-8 },
        StudyPolicy::FairImpact { lambda: 1e-2 },
        StudyPolicy::Stochastic { temperature: 0.1 },
        StudyPolicy::Relevance,
        StudyPolicy::Popularity { alpha: 1.0 },
        StudyPolicy::TailBoost { beta: 1.0 },
    ] {
        for regime in [Regime::Either, Regime::Serverless] {
            let a = run(&w, &fast, &spec(p, regime, 3));
            let b = run(&w, &slow, &spec(p, regime, 3));
            let label = format!("{} {}", p.label(), regime.name());
            assert_eq!(encode_outcome(&a), encode_outcome(&b), "{label}");
            assert_eq!(bits(&a.model_exposure), bits(&b.model_exposure), "{label}");
            assert_eq!(bits(&a.model_income), bits(&b.model_income), "{label}");
            assert_eq!(bits(&a.model_price), bits(&b.model_price), "{label}");
            assert_eq!(a.model_exit_day, b.model_exit_day, "{label}");
            assert!(a.model_exposure.iter().sum::<f64>() > 0.0, "{label}");
        }
    }
}

/// `TopK` keeps what `top` keeps, in its order, whatever order the
/// candidates come in: ties of score (signed zeros too) broken by distinct
/// keys, pages longer and shorter than the candidates.
#[test]
fn top_k_as_they_come_is_top() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut t = TopK::default();
    let mut got = Vec::new();
    for round in 0..600 {
        let n = rng.gen_range(0..300usize);
        let k = rng.gen_range(1..16usize);
        let mut keys: Vec<u64> = (0..n as u64).map(|i| i * 31 + 7).collect();
        for i in (1..n).rev() {
            keys.swap(i, rng.gen_range(0..=i));
        }
        let mut xs: Vec<Scored> = (0..n)
            .map(|j| Scored {
                score: match rng.gen_range(0..4) {
                    0 => rng.gen_range(0..5) as f64,
                    1 => -0.0,
                    2 => 0.0,
                    _ => rng.gen::<f64>() * 1e3 - 10.0,
                },
                key: keys[j],
                item: j as u32,
            })
            .collect();
        match round % 3 {
            0 => xs.sort_by(|a, b| a.score.total_cmp(&b.score)),
            1 => xs.sort_by(|a, b| b.score.total_cmp(&a.score)),
            _ => {}
        }
        let mut expect = xs.clone();
        top(&mut expect, k);
        expect.truncate(k);
        t.start(k);
        for (j, x) in xs.iter().enumerate() {
            t.offer(x.score, j as u32);
        }
        t.finish(&mut got, |j| xs[j as usize]);
        assert_eq!(got, expect, "round {round}: n {n}, k {k}");
    }
}
