//! Morris screening (docs/study.md, Sensitivity): which priors move the
//! answer. Each factor ranges over an interval; `r` one-at-a-time
//! trajectories through a 4-level grid of the unit cube give each factor
//! `r` elementary effects on the tail share making a profit (and making
//! $100 a month) under relevance with `either` hosting; mu* (the mean
//! absolute effect) ranks them, sigma says how much the effect depends on
//! the other factors (Morris 1991; Campolongo, Cariboni & Saltelli 2007).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::sim::{run, Outcome, Regime, RunSpec, StudyPolicy};
use super::world::{Base, World};
use super::StudyOptions;

/// Grid levels per factor, and the step (Morris's recommended p / (2 (p - 1))).
const LEVELS: usize = 4;
const DELTA: f64 = LEVELS as f64 / (2.0 * (LEVELS as f64 - 1.0));

/// A prior screened: its range and how to set it.
pub struct Factor {
    pub name: &'static str,
    pub lo: f64,
    pub hi: f64,
    /// Interpolate in the logarithm (scale parameters).
    pub log: bool,
    pub set: fn(&mut StudyOptions, f64),
}

impl Factor {
    /// The value at `u` in [0, 1].
    pub fn at(&self, u: f64) -> f64 {
        if self.log {
            (self.lo.ln() + u * (self.hi.ln() - self.lo.ln())).exp()
        } else {
            self.lo + u * (self.hi - self.lo)
        }
    }
}

/// The screened priors, each about its default (docs/study.md lists why).
pub fn factors() -> Vec<Factor> {
    vec![
        Factor {
            name: "outside option utility",
            lo: 3.0,
            hi: 5.0,
            log: false,
            set: |o, v| o.outside_utility = v,
        },
        Factor {
            name: "calls per adopter a day (median)",
            lo: 10.0,
            hi: 40.0,
            log: true,
            set: |o, v| o.calls_per_day_median = v,
        },
        Factor {
            name: "churn per day",
            lo: 1.0 / 180.0,
            hi: 1.0 / 45.0,
            log: true,
            set: |o, v| o.churn_per_day = v,
        },
        Factor {
            name: "markup (median)",
            lo: 2.0,
            hi: 4.5,
            log: true,
            set: |o, v| o.markup_median = v,
        },
        Factor {
            name: "price sensitivity",
            lo: 0.25,
            hi: 1.0,
            log: true,
            set: |o, v| o.price_weight = v,
        },
        Factor {
            name: "platform fee",
            lo: 0.1,
            hi: 0.3,
            log: false,
            set: |o, v| o.platform_fee = v,
        },
        Factor {
            name: "dedicated instance cost (x default)",
            lo: 0.5,
            hi: 2.0,
            log: true,
            set: |o, v| o.dedicated_month_usd = [36.0 * v, 180.0 * v, 600.0 * v],
        },
        Factor {
            name: "exit probability a day",
            lo: 0.03,
            hi: 0.3,
            log: true,
            set: |o, v| o.exit_probability = v,
        },
        Factor {
            name: "entry rate a day",
            lo: 0.001,
            hi: 0.004,
            log: true,
            set: |o, v| o.entry_rate = v,
        },
    ]
}

/// `r` Morris trajectories of `k` factors: each `k + 1` points of the unit
/// cube on a `LEVELS`-level grid, one factor moved by `DELTA` per step.
pub fn trajectories(k: usize, r: usize, seed: u64) -> Vec<Vec<Vec<f64>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let step = 1.0 / (LEVELS as f64 - 1.0);
    // Base levels from which +DELTA stays in the cube.
    let base_levels = ((1.0 - DELTA) / step).round() as usize + 1;
    (0..r)
        .map(|_| {
            let mut x: Vec<f64> = (0..k)
                .map(|_| rng.gen_range(0..base_levels) as f64 * step)
                .collect();
            let mut order: Vec<usize> = (0..k).collect();
            order.shuffle(&mut rng);
            let mut points = vec![x.clone()];
            for i in order {
                x[i] = if x[i] + DELTA <= 1.0 + 1e-12 {
                    x[i] + DELTA
                } else {
                    x[i] - DELTA
                };
                points.push(x.clone());
            }
            points
        })
        .collect()
}

/// One factor's effects.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    /// Mean absolute elementary effect, mean effect, and their spread, of a
    /// move across the factor's whole range (DELTA of the cube scaled to 1).
    pub mu_star: f64,
    pub mu: f64,
    pub sigma: f64,
}

/// Elementary effects of `k` factors from trajectories and their outputs
/// `ys` (per trajectory, per point): (mu*, mu, sigma) each.
pub fn elementary_effects(
    traj: &[Vec<Vec<f64>>],
    ys: &[Vec<f64>],
    k: usize,
) -> Vec<(f64, f64, f64)> {
    let mut effects: Vec<Vec<f64>> = vec![Vec::new(); k];
    for (points, y) in traj.iter().zip(ys) {
        for s in 1..points.len() {
            let Some(i) = (0..k).find(|&i| points[s][i] != points[s - 1][i]) else {
                continue;
            };
            let dx = points[s][i] - points[s - 1][i];
            effects[i].push((y[s] - y[s - 1]) / dx);
        }
    }
    effects
        .iter()
        .map(|e| {
            let n = e.len().max(1) as f64;
            let mu = e.iter().sum::<f64>() / n;
            let mu_star = e.iter().map(|x| x.abs()).sum::<f64>() / n;
            let var = e.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (mu_star, mu, var.sqrt())
        })
        .collect()
}

/// The screening's result: effects on two outputs.
#[derive(Debug, Clone, Serialize)]
pub struct Sensitivity {
    pub trajectories: usize,
    /// On the tail share making a profit, and making $100 a month.
    pub profit: Vec<Effect>,
    pub hundred: Vec<Effect>,
}

/// Screen the priors with `r` trajectories, one run each point (relevance,
/// `either` hosting, the options' days and traffic; world and behaviour
/// seeds `seed + 700 + t`, apart from the reported and tuning ones).
pub fn screen(base: &Base, o: &StudyOptions, r: usize) -> Sensitivity {
    screen_with(o, r, &|opts: &StudyOptions,
                        world_seed: u64,
                        spec: &RunSpec| {
        run(&World::sample(base, opts, world_seed), opts, spec)
    })
}

/// [`screen`], each run (its options, its world's seed, its spec) by
/// `run_one` (the study's: through the run cache).
pub fn screen_with(
    o: &StudyOptions,
    r: usize,
    run_one: &(dyn Fn(&StudyOptions, u64, &RunSpec) -> Outcome + Sync),
) -> Sensitivity {
    let fs = factors();
    let k = fs.len();
    let traj = trajectories(k, r, o.seed + 700);
    let jobs: Vec<(usize, usize)> = (0..r).flat_map(|t| (0..=k).map(move |s| (t, s))).collect();
    let outs: Vec<(f64, f64)> = jobs
        .par_iter()
        .map(|&(t, s)| {
            let mut opts = o.clone();
            for (f, &u) in fs.iter().zip(&traj[t][s]) {
                (f.set)(&mut opts, f.at(u));
            }
            let seed = o.seed + 700 + t as u64;
            let spec = RunSpec {
                policy: StudyPolicy::Relevance,
                regime: Regime::Either,
                behaviour_seed: seed + 1000,
                visits_per_day: opts.visits_per_day,
                traffic: opts.traffic,
                feedback: true,
                days: opts.horizon_days(),
                pilot_days: opts.pilot_days,
            };
            let out = run_one(&opts, seed, &spec);
            let last = out.periods.last().cloned().unwrap_or_default();
            let hundred = opts
                .thresholds_usd
                .iter()
                .position(|&t| t >= 100.0)
                .and_then(|i| last.tail_viable.get(i).copied())
                .unwrap_or(f64::NAN);
            (
                last.tail_viable.first().copied().unwrap_or(f64::NAN),
                hundred,
            )
        })
        .collect();
    let ys = |pick: fn(&(f64, f64)) -> f64| -> Vec<Vec<f64>> {
        (0..r)
            .map(|t| (0..=k).map(|s| pick(&outs[t * (k + 1) + s])).collect())
            .collect()
    };
    let effects = |y: Vec<Vec<f64>>| -> Vec<Effect> {
        elementary_effects(&traj, &y, k)
            .into_iter()
            .zip(&fs)
            .map(|((mu_star, mu, sigma), f)| Effect {
                name: f.name.to_string(),
                lo: f.lo,
                hi: f.hi,
                mu_star,
                mu,
                sigma,
            })
            .collect()
    };
    Sensitivity {
        trajectories: r,
        profit: effects(ys(|p| p.0)),
        hundred: effects(ys(|p| p.1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a linear function every elementary effect is its coefficient
    /// (mu* = |a|, sigma 0); on a product the effects vary (sigma > 0).
    #[test]
    fn elementary_effects_of_known_functions() {
        let a = [3.0, -2.0, 0.0, 0.5];
        let traj = trajectories(4, 12, 5);
        for points in &traj {
            assert_eq!(points.len(), 5);
            for p in points {
                assert!(p.iter().all(|x| (-1e-12..=1.0 + 1e-12).contains(x)));
            }
        }
        let linear: Vec<Vec<f64>> = traj
            .iter()
            .map(|ps| {
                ps.iter()
                    .map(|x| x.iter().zip(&a).map(|(x, a)| x * a).sum())
                    .collect()
            })
            .collect();
        for (i, (mu_star, mu, sigma)) in elementary_effects(&traj, &linear, 4)
            .into_iter()
            .enumerate()
        {
            assert!(
                (mu_star - a[i].abs()).abs() < 1e-9 && (mu - a[i]).abs() < 1e-9 && sigma < 1e-9
            );
        }
        let product: Vec<Vec<f64>> = traj
            .iter()
            .map(|ps| ps.iter().map(|x| x[0] * x[1]).collect())
            .collect();
        let e = elementary_effects(&traj, &product, 4);
        assert!(e[0].2 > 0.0 && e[2].0 == 0.0);
    }

    #[test]
    fn factors_span_their_ranges() {
        for f in factors() {
            assert!((f.at(0.0) - f.lo).abs() < 1e-9 * f.lo.abs().max(1.0));
            assert!((f.at(1.0) - f.hi).abs() < 1e-9 * f.hi.abs().max(1.0));
        }
    }
}
