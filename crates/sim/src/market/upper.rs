//! An upper bound on what any ranking could do for the tail (docs/study.md,
//! Upper bound): a viability-constrained matching in the spirit of
//! Mladenov et al. (ICML 2020), solved as a linear programme per day.
//!
//! One day of visits (systematic sampling of the demand) is shared out as
//! exposure: `e[t][m]` in [0, 1] is candidate m's expected examination per
//! visit of type t, and a page's total is at most `sum_j 1/log2(1 + j)`
//! over its positions (a relaxation of the position constraints: every
//! real page's exposure satisfies it). Adoption and welfare are bounded by
//! linear functions of exposure, each an upper bound on the logit's:
//! a model examined with others is adopted at most as often as when it is
//! examined alone, `e^u / (e^u0 + e^u)`, and the log-sum-exp surplus is at
//! most the sum of the models' own, `ln(1 + e^(u - u0))`. A tail builder
//! is viable when its initial models' steady-state monthly profit (today's
//! adoptions kept up every day: `adoptions x mean calls / churn x 30 x
//! margin`, serverless) reaches the threshold; `z_b` in [0, 1] relaxes
//! "viable". The programme maximises `sum_b z_b` subject to the bound's
//! welfare being at least `x` times relevance's page's, in the same bound.
//! Every relaxation loosens it, so its value is an upper bound on the tail
//! share any ranking of the same supply could make viable on that day.

use microlp::{ComparisonOp, OptimizationDirection, Problem};
use serde::Serialize;

use super::sim::look;
use super::world::{serverless_cost, World};
use super::StudyOptions;

/// A candidate of the programme: whose, and what a unit of exposure per
/// visit brings over the day's visits of its type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LpCand {
    /// The counted (tail) builder it earns for, or none (it counts only
    /// for welfare: a head builder's, an entrant's, one priced below cost).
    pub builder: Option<u32>,
    /// Welfare per unit of exposure (utils a day, the bound).
    pub welfare: f64,
    /// Steady-state monthly profit per unit of exposure, USD (the bound).
    pub profit: f64,
}

/// One day's programme.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    /// Per query type visited that day, its candidates.
    pub types: Vec<Vec<LpCand>>,
    /// Builders counted (indices of `LpCand::builder` are below this).
    pub builders: usize,
    /// Exposure a page hands out in all.
    pub budget: f64,
    /// Relevance's page's welfare, in the bound.
    pub reference_welfare: f64,
    /// Relevance's page's tail builders at or above each threshold asked
    /// (filled by [`Instance::relevance_viable`]).
    pub relevance_profit: Vec<f64>,
}

/// The programme's answer at one welfare floor.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bound {
    /// Welfare floor, as a share of relevance's (in the bound).
    pub welfare_ratio: f64,
    /// The most counted builders viable, relaxed (sum of `z_b`).
    pub viable: f64,
    /// As a share of the denominator (every initial tail builder).
    pub viable_share: f64,
}

/// The frontier under one hosting and threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Frontier {
    pub threshold_usd: f64,
    pub traffic: f64,
    /// Simulated visits of the day the programme shares out.
    pub visits: usize,
    pub types: usize,
    pub columns: usize,
    /// Initial tail builders (the shares' denominator).
    pub tail_builders: usize,
    /// Relevance's own page under the same bound: its share at the threshold.
    pub relevance_share: f64,
    /// The most welfare any allocation gives, over relevance's (in the bound).
    pub max_welfare_ratio: f64,
    pub points: Vec<Bound>,
    pub seconds: f64,
}

/// Why the programme could not be solved.
#[derive(Debug, Clone, PartialEq)]
pub enum LpError {
    /// No allocation reaches the welfare floor.
    Infeasible,
    /// The solver failed (its message).
    Solver(String),
}

impl std::fmt::Display for LpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LpError::Infeasible => write!(f, "no allocation reaches the welfare floor"),
            LpError::Solver(m) => write!(f, "the LP solver failed: {m}"),
        }
    }
}

/// The most builders viable at `threshold` (USD a month, > 0) with welfare
/// at least `floor` (absolute, in the bound), relaxed: the programme's value.
pub fn solve(inst: &Instance, threshold: f64, floor: f64) -> Result<f64, LpError> {
    assert!(threshold > 0.0, "the LP needs a positive threshold");
    let mut p = Problem::new(OptimizationDirection::Maximize);
    let z: Vec<_> = (0..inst.builders)
        .map(|_| p.add_var(1.0, (0.0, 1.0)))
        .collect();
    let mut earn: Vec<Vec<(microlp::Variable, f64)>> = vec![Vec::new(); inst.builders];
    let mut welfare = Vec::new();
    for t in &inst.types {
        let mut page = Vec::with_capacity(t.len());
        for c in t {
            let e = p.add_var(0.0, (0.0, 1.0));
            page.push((e, 1.0));
            if c.welfare != 0.0 {
                welfare.push((e, c.welfare));
            }
            if let Some(b) = c.builder {
                if c.profit > 0.0 {
                    earn[b as usize].push((e, c.profit / threshold));
                }
            }
        }
        if page.len() as f64 > inst.budget {
            p.add_constraint(page.as_slice(), ComparisonOp::Le, inst.budget);
        }
    }
    for (b, mut row) in earn.into_iter().enumerate() {
        // z_b <= sum profit e / threshold.
        row.push((z[b], -1.0));
        p.add_constraint(row.as_slice(), ComparisonOp::Ge, 0.0);
    }
    if floor > 0.0 {
        p.add_constraint(welfare.as_slice(), ComparisonOp::Ge, floor);
    }
    match p.solve() {
        Ok(s) => Ok(s.objective()),
        Err(microlp::Error::Infeasible) => Err(LpError::Infeasible),
        Err(e) => Err(LpError::Solver(e.to_string())),
    }
}

/// A candidate's bound quantities for utility `u` against the outside
/// option `u0`: adoption per exposure `e^u / (e^u0 + e^u)` and welfare per
/// exposure `ln(1 + e^(u - u0))`.
pub fn per_exposure(u: f64, u0: f64) -> (f64, f64) {
    let d = u - u0;
    // Both in forms that neither overflow nor lose precision.
    let adopt = 1.0 / (1.0 + (-d).exp());
    let welfare = if d > 30.0 { d } else { d.exp().ln_1p() };
    (adopt, welfare)
}

impl Instance {
    /// The programme of one day of `visits` simulated visits standing for
    /// `traffic` real ones, on `world`'s initial supply with `prices` (per
    /// model; the world's when none): per type, relevance's page is the
    /// reference; the candidates that count for no tail builder are pruned
    /// to the `page` best by welfare (the others can always take their
    /// exposure, so the pruning loses nothing).
    pub fn of_day(
        world: &World,
        o: &StudyOptions,
        traffic: f64,
        visits: usize,
        prices: Option<&[f64]>,
    ) -> Instance {
        let n = world.initial_models;
        let price = |m: usize| prices.map_or(world.models[m].price, |p| p[m]);
        let mean_calls = o.calls_per_day_median * (o.calls_per_day_sigma.powi(2) / 2.0).exp();
        let life = if o.churn_per_day > 0.0 {
            1.0 / o.churn_per_day
        } else {
            f64::INFINITY
        };
        let mut tail_index = vec![None; world.initial_builders];
        let mut k = 0u32;
        for (b, slot) in tail_index.iter_mut().enumerate() {
            if world.builders[b].tail {
                *slot = Some(k);
                k += 1;
            }
        }
        let page_len = o.page.max(1);
        let looks: Vec<f64> = (1..=page_len).map(look).collect();
        let budget: f64 = looks.iter().sum();
        // The day's visits per type: systematic sampling, offset 1/2.
        let mut count = vec![0usize; world.types.len()];
        let mut cdf = 0.0;
        let mut t = 0usize;
        for i in 0..visits {
            let x = (0.5 + i as f64) / visits.max(1) as f64;
            while t + 1 < world.demand.len() && cdf + world.demand[t] <= x {
                cdf += world.demand[t];
                t += 1;
            }
            count[t] += 1;
        }
        let scale = traffic / visits.max(1) as f64;
        let mut inst = Instance {
            types: Vec::new(),
            builders: k as usize,
            budget,
            reference_welfare: 0.0,
            relevance_profit: vec![0.0; k as usize],
        };
        for (ty, &c) in world.types.iter().zip(&count) {
            if c == 0 {
                continue;
            }
            let vis = c as f64 * scale;
            let mut cands: Vec<(f64, u64, LpCand)> = ty
                .cands
                .iter()
                .filter(|c| (c.model as usize) < n)
                .map(|c| {
                    let m = c.model as usize;
                    let model = &world.models[m];
                    let u = o.grade_weight * c.grade as f64
                        - o.price_weight * (price(m) / o.reference_price_usd).ln();
                    let (adopt, welfare) = per_exposure(u, o.outside_utility);
                    let margin =
                        price(m) * (1.0 - o.platform_fee) - serverless_cost(o, model.params_m);
                    let profit = vis * adopt * mean_calls * life * 30.0 * margin;
                    let builder = tail_index
                        .get(model.builder as usize)
                        .copied()
                        .flatten()
                        .filter(|_| profit > 0.0);
                    (
                        c.relevance,
                        model.key,
                        LpCand {
                            builder,
                            welfare: vis * welfare,
                            profit,
                        },
                    )
                })
                .collect();
            if cands.is_empty() {
                continue;
            }
            // Relevance's page: the reference welfare and its earnings.
            cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (j, (_, _, c)) in cands.iter().take(page_len).enumerate() {
                inst.reference_welfare += looks[j] * c.welfare;
                if let Some(b) = c.builder {
                    inst.relevance_profit[b as usize] += looks[j] * c.profit;
                }
            }
            // Prune the candidates that count for no one to the best by welfare.
            let (mut counted, mut others): (Vec<LpCand>, Vec<LpCand>) = cands
                .into_iter()
                .map(|x| x.2)
                .partition(|c| c.builder.is_some());
            others.sort_by(|a, b| b.welfare.total_cmp(&a.welfare));
            others.truncate(page_len);
            counted.extend(others);
            inst.types.push(counted);
        }
        inst
    }

    /// Columns of the programme (exposures and builders).
    pub fn columns(&self) -> usize {
        self.types.iter().map(Vec::len).sum::<usize>() + self.builders
    }

    /// The most welfare any allocation gives: per type, the budget on the
    /// candidates best by welfare (at most 1 each).
    pub fn max_welfare(&self) -> f64 {
        let mut total = 0.0;
        for t in &self.types {
            let mut w: Vec<f64> = t.iter().map(|c| c.welfare).collect();
            w.sort_by(|a, b| b.total_cmp(a));
            let mut left = self.budget;
            for x in w {
                if left <= 0.0 || x <= 0.0 {
                    break;
                }
                total += x * left.min(1.0);
                left -= 1.0;
            }
        }
        total
    }

    /// Relevance's page's tail builders making at least `threshold`.
    pub fn relevance_viable(&self, threshold: f64) -> usize {
        self.relevance_profit
            .iter()
            .filter(|&&p| p >= threshold)
            .count()
    }
}

/// The frontier: the programme at each welfare floor of `ratios` (shares of
/// relevance's welfare, in the bound), on one day of `o.upper_visits`
/// visits at `traffic`, for a `threshold` in USD a month.
pub fn frontier(world: &World, o: &StudyOptions, traffic: f64, threshold: f64) -> Frontier {
    let started = std::time::Instant::now();
    let inst = Instance::of_day(world, o, traffic, o.upper_visits, None);
    let tail_builders = (0..world.initial_builders)
        .filter(|&b| world.builders[b].tail)
        .count()
        .max(1);
    // The options' floors, and the stretch below the most welfare any
    // allocation gives, where the frontier bends.
    let max_ratio = inst.max_welfare() / inst.reference_welfare.max(f64::MIN_POSITIVE);
    let mut ratios = o.upper_welfare_ratios.clone();
    if max_ratio.is_finite() {
        ratios.extend(
            [1.0, 0.99, 0.97, 0.94, 0.9, 0.85, 0.75]
                .iter()
                .map(|f| f * max_ratio),
        );
    }
    ratios.sort_by(|a, b| b.total_cmp(a));
    ratios.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let points = ratios
        .iter()
        .map(|&x| {
            let viable = solve(&inst, threshold, x * inst.reference_welfare).unwrap_or(f64::NAN);
            Bound {
                welfare_ratio: x,
                viable,
                viable_share: viable / tail_builders as f64,
            }
        })
        .collect();
    Frontier {
        threshold_usd: threshold,
        traffic,
        visits: o.upper_visits,
        types: inst.types.len(),
        columns: inst.columns(),
        tail_builders,
        relevance_share: inst.relevance_viable(threshold) as f64 / tail_builders as f64,
        max_welfare_ratio: max_ratio,
        points,
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest LP by brute force: every vertex of the polytope {A x <=
    /// b} is the solution of n of its constraints held with equality; the
    /// best feasible one is the optimum. Gaussian elimination, no solver.
    fn brute_force_lp(c: &[f64], a: &[Vec<f64>], b: &[f64]) -> Option<f64> {
        let n = c.len();
        let m = a.len();
        let mut best: Option<f64> = None;
        let mut pick = vec![0usize; n];
        fn next(pick: &mut [usize], m: usize) -> bool {
            let n = pick.len();
            let mut i = n;
            while i > 0 {
                i -= 1;
                if pick[i] < m - n + i {
                    pick[i] += 1;
                    for j in i + 1..n {
                        pick[j] = pick[j - 1] + 1;
                    }
                    return true;
                }
            }
            false
        }
        for (i, p) in pick.iter_mut().enumerate() {
            *p = i;
        }
        loop {
            // Solve the n x n system of the picked rows.
            let mut mat: Vec<Vec<f64>> = pick
                .iter()
                .map(|&r| {
                    let mut row = a[r].clone();
                    row.push(b[r]);
                    row
                })
                .collect();
            let mut ok = true;
            for col in 0..n {
                let piv = (col..n).max_by(|&i, &j| mat[i][col].abs().total_cmp(&mat[j][col].abs()));
                let Some(piv) = piv.filter(|&p| mat[p][col].abs() > 1e-12) else {
                    ok = false;
                    break;
                };
                mat.swap(col, piv);
                let pivot = mat[col].clone();
                for (r, row) in mat.iter_mut().enumerate() {
                    if r != col {
                        let f = row[col] / pivot[col];
                        for (x, p) in row.iter_mut().zip(&pivot).skip(col) {
                            *x -= f * p;
                        }
                    }
                }
            }
            if ok {
                let x: Vec<f64> = (0..n).map(|i| mat[i][n] / mat[i][i]).collect();
                let feasible = a.iter().zip(b).all(|(row, &bi)| {
                    row.iter().zip(&x).map(|(p, q)| p * q).sum::<f64>() <= bi + 1e-9
                });
                if feasible {
                    let v: f64 = c.iter().zip(&x).map(|(p, q)| p * q).sum();
                    best = Some(best.map_or(v, |b: f64| b.max(v)));
                }
            }
            if !next(&mut pick, m) {
                return best;
            }
        }
    }

    /// A tiny day: two types, four candidates, two tail builders (one with
    /// models in both types) and a head model; the solver's value at several
    /// welfare floors against the vertex enumeration of the same programme
    /// written out by hand.
    #[test]
    fn the_lp_matches_a_brute_force_vertex_enumeration() {
        let c = |builder: Option<u32>, welfare: f64, profit: f64| LpCand {
            builder,
            welfare,
            profit,
        };
        let inst = Instance {
            // Type 0: builder 0's model, builder 1's model, a head model.
            // Type 1: builder 1's model and a head model.
            types: vec![
                vec![
                    c(Some(0), 1.0, 60.0),
                    c(Some(1), 2.0, 30.0),
                    c(None, 5.0, 0.0),
                ],
                vec![c(Some(1), 0.5, 50.0), c(None, 3.0, 0.0)],
            ],
            builders: 2,
            budget: 1.5,
            reference_welfare: 0.0,
            relevance_profit: vec![],
        };
        let threshold = 100.0;
        // Variables: e00 e01 e02 e10 e11 z0 z1; every constraint as A x <= b.
        let mut a: Vec<Vec<f64>> = Vec::new();
        let mut b: Vec<f64> = Vec::new();
        for i in 0..7 {
            let mut up = vec![0.0; 7];
            up[i] = 1.0;
            a.push(up.clone());
            b.push(1.0);
            up[i] = -1.0;
            a.push(up);
            b.push(0.0);
        }
        a.push(vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        b.push(1.5);
        a.push(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        b.push(1.5);
        // z0 <= 60 e00 / 100; z1 <= (30 e01 + 50 e10) / 100.
        a.push(vec![-0.6, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        b.push(0.0);
        a.push(vec![0.0, -0.3, 0.0, -0.5, 0.0, 0.0, 1.0]);
        b.push(0.0);
        let obj = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        for floor in [0.0, 4.0, 7.0, 8.5, 9.0] {
            let mut a2 = a.clone();
            let mut b2 = b.clone();
            // welfare = e00 + 2 e01 + 5 e02 + 0.5 e10 + 3 e11 >= floor.
            a2.push(vec![-1.0, -2.0, -5.0, -0.5, -3.0, 0.0, 0.0]);
            b2.push(-floor);
            let want = brute_force_lp(&obj, &a2, &b2).expect("feasible");
            let got = solve(&inst, threshold, floor).expect("solved");
            assert!(
                (got - want).abs() < 1e-7,
                "floor {floor}: lp {got}, brute force {want}"
            );
        }
        // Welfare above the most any allocation gives (5 + 0.5 x 2 + 3 + 0.5 x
        // 0.5 = 9.25 at best) is infeasible.
        assert_eq!(solve(&inst, threshold, 9.3), Err(LpError::Infeasible));
        assert!((inst.max_welfare() - 9.25).abs() < 1e-12);
    }

    /// The linear bounds are above the logit's: adoption of one model among
    /// several examined, and the log-sum-exp surplus of a set.
    #[test]
    fn the_linear_bounds_dominate_the_logit() {
        let u0: f64 = 4.0;
        let us = [3.0f64, 4.5, 1.0, 6.0];
        let total: f64 = u0.exp() + us.iter().map(|u: &f64| u.exp()).sum::<f64>();
        let lse = total.ln() - u0;
        let mut sum_w = 0.0;
        for &u in &us {
            let (adopt, w) = per_exposure(u, u0);
            assert!(u.exp() / total <= adopt + 1e-15);
            assert!((adopt - u.exp() / (u0.exp() + u.exp())).abs() < 1e-12);
            sum_w += w;
        }
        assert!(lse <= sum_w + 1e-12);
        // Alone, the bound is exact.
        let (_, w) = per_exposure(4.5, u0);
        assert!(((u0.exp() + 4.5f64.exp()).ln() - u0 - w).abs() < 1e-12);
    }
}
