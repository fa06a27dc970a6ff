//! The figures at the end of each reported period (docs/study.md, Figures):
//! users' side (nDCG@10 against the whole catalogue, welfare) and builders'
//! income in dollars, read off the simulation's state.

use serde::Serialize;

use super::world::World;

/// Users' side of one period, summed over its visits.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Visits {
    /// Every visit, including those whose type had nothing listed.
    pub(super) visits: u64,
    pub(super) adoptions: u64,
    /// nDCG@10 against every candidate that has entered, over visits whose
    /// type has one with a grade (nothing listed: 0).
    pub(super) ndcg_sum: f64,
    pub(super) ndcg_n: u64,
    /// nDCG@10 against the listed candidates only (the old measure).
    pub(super) listed_sum: f64,
    pub(super) listed_n: u64,
    /// Expected surplus over the outside option (log-sum-exp), every visit.
    pub(super) welfare_sum: f64,
}

/// What one period's end shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeriodFigures {
    /// Days since the start (after the pilot) at the period's end.
    pub day: usize,
    pub ndcg10: f64,
    pub ndcg10_listed: f64,
    /// Users' expected surplus per visit over adopting nothing, in utils.
    pub welfare: f64,
    pub adoptions_per_visit: f64,
    /// Per threshold of `thresholds_usd`: initial tail builders whose initial
    /// models made more than it in profit over the last 30 days.
    pub tail_viable: Vec<f64>,
    /// Initial tail builders whose last 30 days' revenue, net of the fee and
    /// the per-call cost, covers a month of a dedicated instance for their
    /// largest listed model.
    pub tail_covers_dedicated: f64,
    /// Initial tail builders' profit over the last 30 days (0 with nothing
    /// listed): median, 90th and 99th percentiles, USD.
    pub tail_profit_p50: f64,
    pub tail_profit_p90: f64,
    pub tail_profit_p99: f64,
    /// The period's income (revenue net of the fee) across every builder.
    pub income_gini_all: f64,
    pub income_gini_active: f64,
    pub top1pct_income_share: f64,
    pub top10pct_income_share: f64,
    /// Models listed, of those that have entered.
    pub listed_share: f64,
    /// Listed models on a dedicated instance.
    pub dedicated_share: f64,
    /// Builders with a listed model whose 30-day profit is positive.
    pub viable_active_share: f64,
    /// Listed models' median price over serverless cost (it moves only
    /// when builders reprice), and the share priced at the cap.
    pub median_markup: f64,
    pub at_cap_share: f64,
}

/// The state a period's figures are read from.
pub(super) struct Snapshot<'a> {
    pub(super) world: &'a World,
    pub(super) day: usize,
    pub(super) active: &'a [bool],
    pub(super) dedicated: &'a [bool],
    /// Per model, the last 30 days' profit, revenue net of the fee, calls.
    pub(super) trailing: &'a [[f64; 3]],
    pub(super) income: &'a [f64],
    pub(super) dedicated_month: &'a [f64],
    pub(super) overhead: f64,
    pub(super) initial_tail: &'a [usize],
    pub(super) thresholds: &'a [f64],
    pub(super) visits: Visits,
}

/// Per initial tail builder: listed, profit, contribution, largest
/// instance's monthly cost, over its initial models only (a model handed to
/// it by the entry process is not counted: point 7 of the referee).
fn tail_books(s: &Snapshot) -> Vec<(bool, f64, f64, f64)> {
    let w = s.world;
    let mut books = vec![(false, 0.0, 0.0, 0.0); w.builders.len()];
    for m in 0..w.initial_models {
        if !s.active[m] {
            continue;
        }
        let b = &mut books[w.models[m].builder as usize];
        let [profit, revenue, calls] = s.trailing[m];
        b.0 = true;
        b.1 += profit;
        b.2 += revenue - calls * s.overhead;
        b.3 = f64::max(b.3, s.dedicated_month[m]);
    }
    s.initial_tail.iter().map(|&b| books[b]).collect()
}

/// The period's figures.
pub(super) fn period(s: &Snapshot) -> PeriodFigures {
    let w = s.world;
    let v = s.visits;
    let books = tail_books(s);
    let n_tail = books.len().max(1) as f64;
    let tail_viable = s
        .thresholds
        .iter()
        .map(|&t| books.iter().filter(|b| b.0 && b.1 > t).count() as f64 / n_tail)
        .collect();
    let covers = books.iter().filter(|b| b.0 && b.2 >= b.3).count() as f64 / n_tail;
    let mut profits: Vec<f64> = books.iter().map(|b| if b.0 { b.1 } else { 0.0 }).collect();
    profits.sort_by(f64::total_cmp);
    // Every builder's income and standing.
    let nb = w.builders.len();
    let (mut income, mut listed, mut profit) = (vec![0.0; nb], vec![false; nb], vec![0.0; nb]);
    let (mut entered, mut n_listed, mut n_dedicated) = (0usize, 0usize, 0usize);
    for (m, model) in w.models.iter().enumerate() {
        let b = model.builder as usize;
        income[b] += s.income[m];
        if model.entry_day as usize <= s.day {
            entered += 1;
        }
        if s.active[m] {
            listed[b] = true;
            profit[b] += s.trailing[m][0];
            n_listed += 1;
            n_dedicated += usize::from(s.dedicated[m]);
        }
    }
    let active_income: Vec<f64> = (0..nb).filter(|&b| listed[b]).map(|b| income[b]).collect();
    let n_active = listed.iter().filter(|l| **l).count();
    let viable_active = (0..nb).filter(|&b| listed[b] && profit[b] > 0.0).count();
    let ratio = |a: f64, n: u64| if n > 0 { a / n as f64 } else { f64::NAN };
    PeriodFigures {
        day: s.day,
        ndcg10: ratio(v.ndcg_sum, v.ndcg_n),
        ndcg10_listed: ratio(v.listed_sum, v.listed_n),
        welfare: ratio(v.welfare_sum, v.visits),
        adoptions_per_visit: ratio(v.adoptions as f64, v.visits),
        tail_viable,
        tail_covers_dedicated: covers,
        tail_profit_p50: quantile(&profits, 0.5),
        tail_profit_p90: quantile(&profits, 0.9),
        tail_profit_p99: quantile(&profits, 0.99),
        income_gini_all: hubsearch_rank::gini(&income),
        income_gini_active: hubsearch_rank::gini(&active_income),
        top1pct_income_share: hubsearch_rank::concentration::top_fraction_share(&income, 0.01),
        top10pct_income_share: hubsearch_rank::concentration::top_fraction_share(&income, 0.1),
        listed_share: n_listed as f64 / entered.max(1) as f64,
        dedicated_share: n_dedicated as f64 / n_listed.max(1) as f64,
        viable_active_share: viable_active as f64 / n_active.max(1) as f64,
        median_markup: f64::NAN,
        at_cap_share: f64::NAN,
    }
}

/// The `p` quantile of sorted `xs` by the nearest rank (NaN when empty):
/// the smallest value with at least a share `p` of `xs` at or below it.
pub fn quantile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let rank = (p * xs.len() as f64).ceil().max(1.0) as usize;
    xs[rank.min(xs.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::quantile;

    /// Nearest rank, against counting directly.
    #[test]
    fn quantile_by_nearest_rank() {
        let xs: Vec<f64> = (1..=200).map(|i| i as f64).collect();
        for p in [0.01, 0.5, 0.9, 0.99, 1.0] {
            let q = quantile(&xs, p);
            let at_or_below = xs.iter().filter(|x| **x <= q).count() as f64;
            assert!(at_or_below >= p * 200.0);
            assert!(at_or_below - 1.0 < p * 200.0, "p {p}: {q}");
        }
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
    }
}
