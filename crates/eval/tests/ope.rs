//! The IPS estimate of a target policy's calls, from pages the `stochastic`
//! policy served, against the ground truth of this test's user model
//! (position-based looks by the attention model, calls by relevance grade).

use hubsearch_eval::ope::{deterministic, ips_calls, logged_calls, logging_marginals, LoggedPage};
use hubsearch_rank::plackett_luce::marginals;
use hubsearch_rank::{rank, Attention, Candidate, ExposureBook, Policy};
use rand::{Rng, SeedableRng};

const PAGE: usize = 5;

#[test]
fn ips_recovers_the_target_policys_calls() {
    // The chance a user who looks at a card calls it, by relevance grade
    // 0, 1, 2: a user model of this test's own.
    let call_p = [0.05, 0.5, 0.9];
    let attention = Attention::Log;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    // 30 queries of 20 candidates: relevance, and the grade a judge gave.
    let queries: Vec<Vec<(f64, usize)>> = (0..30)
        .map(|_| {
            (0..20)
                .map(|_| {
                    let r: f64 = rng.gen();
                    // The judge mostly agrees with the retrieval score.
                    let noisy = (r + rng.gen_range(-0.2..0.2)).clamp(0.0, 1.0);
                    let grade = if noisy > 0.75 {
                        2
                    } else {
                        usize::from(noisy > 0.45)
                    };
                    (r, grade)
                })
                .collect()
        })
        .collect();
    let cands = |q: &[(f64, usize)]| -> Vec<Candidate> {
        q.iter()
            .enumerate()
            .map(|(i, (r, _))| Candidate {
                relevance: *r,
                merit: *r,
                calls: 0.0,
                quantile: 0.0,
                group: i as u64,
                key: i as u64,
            })
            .collect()
    };
    // Expected calls of a page under this test's user model.
    let expected = |q: &[(f64, usize)], shown: &[usize]| -> f64 {
        let rel: Vec<f64> = shown.iter().map(|&i| q[i].1 as f64 / 2.0).collect();
        attention
            .page(1, &rel)
            .iter()
            .zip(shown)
            .map(|(a, &i)| a.min(1.0) * call_p[q[i].1])
            .sum()
    };
    let book = ExposureBook::new();
    let logger = Policy::Stochastic { temperature: 0.25 };
    let mut pages = Vec::new();
    for n in 0..9_000 {
        let qi = n % queries.len();
        let q = &queries[qi];
        let shown: Vec<usize> = rank(&logger, &cands(q), &book, n as u64)
            .iter()
            .take(PAGE)
            .map(|r| r.index)
            .collect();
        let rel: Vec<f64> = shown.iter().map(|&i| q[i].1 as f64 / 2.0).collect();
        let looks = attention.page(1, &rel);
        let calls = shown
            .iter()
            .zip(looks)
            .map(|(&i, look)| {
                let (u, v): (f64, f64) = (rng.gen(), rng.gen());
                u32::from(u < look.min(1.0) && v < call_p[q[i].1])
            })
            .collect();
        pages.push(LoggedPage {
            query: qi,
            shown,
            calls,
        });
    }
    let logits: Vec<Vec<f64>> = queries
        .iter()
        .map(|q| q.iter().map(|(r, _)| r / 0.25).collect())
        .collect();
    let mu = logging_marginals(&logits, PAGE, 20_000, 5);

    // Target 1: rank by relevance. Its true calls per page: every query
    // equally often, its fixed page.
    let orders: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| {
            rank(&Policy::Relevance, &cands(q), &book, 0)
                .iter()
                .map(|r| r.index)
                .collect()
        })
        .collect();
    let truth: f64 = queries
        .iter()
        .zip(&orders)
        .map(|(q, o)| expected(q, &o[..PAGE]))
        .sum::<f64>()
        / queries.len() as f64;
    let pi: Vec<Vec<Vec<f64>>> = orders.iter().map(|o| deterministic(o, 20, PAGE)).collect();
    let est = ips_calls(&pages, &mu, &pi);
    let naive = logged_calls(&pages);
    assert!(
        (est.value - truth).abs() < 3.0 * est.stderr + 0.02 * truth,
        "IPS {est:?} vs truth {truth}"
    );
    // The logged average is the logging policy's, not the target's.
    assert!(
        (naive.value - truth).abs() > 3.0 * (est.value - truth).abs(),
        "naive {naive:?}, IPS {est:?}, truth {truth}"
    );

    // Target 2: a sharper Plackett-Luce (T = 0.1), its marginals sampled;
    // truth by simulating its pages' expected calls.
    let sharp = Policy::Stochastic { temperature: 0.1 };
    let pi2: Vec<Vec<Vec<f64>>> = queries
        .iter()
        .enumerate()
        .map(|(qi, q)| {
            let l: Vec<f64> = q.iter().map(|(r, _)| r / 0.1).collect();
            marginals(&l, PAGE, 20_000, 100 + qi as u64)
        })
        .collect();
    let mut truth2 = 0.0;
    let draws = 400;
    for (qi, q) in queries.iter().enumerate() {
        for s in 0..draws {
            let shown: Vec<usize> = rank(
                &sharp,
                &cands(q),
                &book,
                (qi * draws + s) as u64 + 1_000_000,
            )
            .iter()
            .take(PAGE)
            .map(|r| r.index)
            .collect();
            truth2 += expected(q, &shown);
        }
    }
    truth2 /= (queries.len() * draws) as f64;
    let est2 = ips_calls(&pages, &mu, &pi2);
    println!("relevance target: truth {truth:.4}, IPS {est:?}, logged {naive:?}");
    println!("PL T=0.1 target: truth {truth2:.4}, IPS {est2:?}");
    assert!(
        (est2.value - truth2).abs() < 3.0 * est2.stderr + 0.02 * truth2,
        "IPS {est2:?} vs truth {truth2}"
    );
}
