//! The report's tables from the accumulated totals: groups in report
//! order with their shares and ratios, the groups without merit, the
//! extremes of the final ratios, the windows' figures and each policy's.

use std::collections::HashSet;

use super::accumulate::{accumulate, Acc, Point};
use super::figures::{Extreme, GroupRow, PageFigures, PolicyRow, Shares, Window, WithoutMerit};
use super::grouping::Grouping;
use super::prepare::{GroupCounts, Prepared};

/// What a group's row counts besides its totals.
struct Sizes {
    /// Distinct models seen as candidates.
    models: usize,
    candidate_slots: usize,
    impressions: usize,
}

/// The final row of totals `a` against the grand totals `all`.
fn row(group: String, n: Sizes, a: &Acc, all: &Acc) -> GroupRow {
    let share = |x: f64, t: f64| if t > 0.0 { x / t } else { 0.0 };
    let opt_share = |x: f64, t: f64| (t > 0.0).then(|| x / t);
    let per = |x: f64| (a.merit > 0.0).then(|| x / a.merit);
    let es = share(a.exposure, all.exposure);
    let ms = share(a.merit, all.merit);
    let is = opt_share(a.calls, all.calls);
    GroupRow {
        group,
        models: n.models,
        candidate_slots: n.candidate_slots,
        impressions: n.impressions,
        exposure: a.exposure,
        merit: a.merit,
        calls: a.calls,
        income_usd: a.income,
        exposure_share: es,
        merit_share: ms,
        impact_share: is,
        income_share: opt_share(a.income, all.income),
        exposure_per_merit: per(a.exposure),
        impact_per_merit: per(a.calls),
        exposure_vs_merit: (ms > 0.0).then(|| es / ms),
        impact_vs_merit: is.and_then(|i| (ms > 0.0).then(|| i / ms)),
    }
}

/// Every group's final label, counts and totals, and the grand totals.
pub(super) struct Final<'a> {
    pub labels: &'a [String],
    pub counts: &'a GroupCounts,
    pub totals: &'a [Acc],
    pub all: Acc,
}

/// The group tables of a report; groups are indices into the labels.
pub(super) struct Tables {
    /// The groups reported, in report order.
    pub order: Vec<usize>,
    /// Their rows, in that order (every one of them).
    pub rows: Vec<GroupRow>,
    pub others: Option<GroupRow>,
    pub totals: GroupRow,
    pub plotted: Vec<usize>,
    pub without_merit: WithoutMerit,
    pub extremes: Vec<Extreme>,
}

impl<'a> Final<'a> {
    /// `counts` must have room for every group of `totals`.
    pub fn new(labels: &'a [String], counts: &'a GroupCounts, totals: &'a [Acc]) -> Final<'a> {
        let mut all = Acc::default();
        for t in totals {
            all.add(t);
        }
        Final {
            labels,
            counts,
            totals,
            all,
        }
    }

    fn sizes(&self, g: usize) -> Sizes {
        Sizes {
            models: self.counts.models[g].len(),
            candidate_slots: self.counts.slots[g],
            impressions: self.counts.shown[g],
        }
    }

    /// The tables, `top` groups listed one by one (the rest summed).
    pub fn tables(&self, grouping: &Grouping, top: usize) -> Tables {
        let order = self.order(grouping);
        let rows: Vec<GroupRow> = order
            .iter()
            .map(|&g| {
                row(
                    self.labels[g].clone(),
                    self.sizes(g),
                    &self.totals[g],
                    &self.all,
                )
            })
            .collect();
        let others = (rows.len() > top).then(|| self.others(&order[top..]));
        Tables {
            others,
            rows,
            totals: self.totals_row(),
            plotted: order.iter().copied().take(8.min(top)).collect(),
            without_merit: self.without_merit(&order),
            extremes: self.extremes(&order),
            order,
        }
    }

    /// Report order: buckets as cut, `unknown` last; builders by exposure.
    fn order(&self, grouping: &Grouping) -> Vec<usize> {
        let buckets = grouping.bucket_labels().len();
        let mut order: Vec<usize> = (0..self.labels.len())
            .filter(|&g| {
                let t = &self.totals[g];
                g < buckets
                    || self.counts.slots[g] > 0
                    || t.merit > 0.0
                    || t.exposure > 0.0
                    || t.calls > 0.0
            })
            .collect();
        if *grouping == Grouping::Builder {
            let totals = self.totals;
            order.sort_by(|&x, &y| {
                totals[y]
                    .exposure
                    .total_cmp(&totals[x].exposure)
                    .then_with(|| totals[y].merit.total_cmp(&totals[x].merit))
                    .then_with(|| self.labels[x].cmp(&self.labels[y]))
            });
        }
        order
    }

    /// The groups beyond the listed ones, summed in one row.
    fn others(&self, rest: &[usize]) -> GroupRow {
        let mut sum = Acc::default();
        let mut n = Sizes {
            models: 0,
            candidate_slots: 0,
            impressions: 0,
        };
        for &g in rest {
            sum.add(&self.totals[g]);
            let s = self.sizes(g);
            n.models += s.models;
            n.candidate_slots += s.candidate_slots;
            n.impressions += s.impressions;
        }
        row(format!("{} others", rest.len()), n, &sum, &self.all)
    }

    /// Every group together.
    fn totals_row(&self) -> GroupRow {
        let models: HashSet<u64> = self.counts.models.iter().flatten().copied().collect();
        let n = Sizes {
            models: models.len(),
            candidate_slots: self.counts.slots.iter().sum(),
            impressions: self.counts.shown.iter().sum(),
        };
        row("all".into(), n, &self.all, &self.all)
    }

    /// Groups without merit: outside the ratios, so outside the
    /// disparities.
    fn without_merit(&self, order: &[usize]) -> WithoutMerit {
        let without: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&g| self.totals[g].merit <= 0.0)
            .collect();
        let mut lacking = Acc::default();
        for &g in &without {
            lacking.add(&self.totals[g]);
        }
        let all = &self.all;
        WithoutMerit {
            groups: without.len(),
            shown: without
                .iter()
                .filter(|&&g| self.totals[g].exposure > 0.0)
                .count(),
            exposure_share: if all.exposure > 0.0 {
                lacking.exposure / all.exposure
            } else {
                0.0
            },
            impact_share: (all.calls > 0.0).then(|| lacking.calls / all.calls),
        }
    }

    /// Who sets the final largest gaps: the highest and lowest ratio of
    /// exposure, then of impact, among the groups with merit.
    fn extremes(&self, order: &[usize]) -> Vec<Extreme> {
        let mut extremes = Vec::new();
        for (measure, value) in [
            ("exposure", (|a: &Acc| a.exposure) as fn(&Acc) -> f64),
            ("impact", |a: &Acc| a.calls),
        ] {
            let mut with: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&g| self.totals[g].merit > 0.0)
                .collect();
            let ratio = |g: usize| value(&self.totals[g]) / self.totals[g].merit;
            with.sort_by(|&x, &y| ratio(x).total_cmp(&ratio(y)));
            if with.len() < 2 {
                continue;
            }
            for (which, g) in [("highest", with[with.len() - 1]), ("lowest", with[0])] {
                extremes.push(Extreme {
                    measure,
                    which,
                    group: self.labels[g].clone(),
                    ratio: ratio(g),
                    value: value(&self.totals[g]),
                    merit: self.totals[g].merit,
                    candidate_slots: self.counts.slots[g],
                });
            }
        }
        extremes
    }
}

/// The disparities at `p`, after `pages` pages with `calls` paid calls.
fn figures(p: &Point, pages: usize, calls: f64) -> PageFigures {
    PageFigures {
        pages,
        calls,
        exposure: p.exposure,
        impact: p.impact,
        per_query_exposure: p.per_query_exposure,
        per_query_impact: p.per_query_impact,
    }
}

/// The figures at each window's end, with the `plotted` groups' shares.
pub(super) fn windows(points: &[Point], plotted: &[usize]) -> Vec<Window> {
    points
        .iter()
        .map(|p| {
            let t = &p.totals;
            let mut sum = Acc::default();
            for x in t {
                sum.add(x);
            }
            Window {
                figures: figures(p, p.end, sum.calls),
                shares: plotted
                    .iter()
                    .map(|&g| Shares {
                        exposure: if sum.exposure > 0.0 {
                            t[g].exposure / sum.exposure
                        } else {
                            0.0
                        },
                        merit: if sum.merit > 0.0 {
                            t[g].merit / sum.merit
                        } else {
                            0.0
                        },
                        impact: (sum.calls > 0.0).then(|| t[g].calls / sum.calls),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Each policy's pages alone (no calls by time: they belong to no policy).
pub(super) fn by_policy(prepared: &[Prepared], groups: usize) -> Vec<PolicyRow> {
    let mut policies: Vec<&str> = prepared.iter().map(|p| p.policy.as_str()).collect();
    policies.sort_unstable();
    policies.dedup();
    policies
        .iter()
        .map(|pol| {
            let sub: Vec<&Prepared> = prepared.iter().filter(|p| p.policy == *pol).collect();
            let r = accumulate(&sub, &[], &[sub.len()], groups);
            let p = r.windows.into_iter().next().expect("one end");
            PolicyRow {
                policy: pol.to_string(),
                figures: figures(&p, sub.len(), p.totals.iter().map(|x| x.calls).sum()),
            }
        })
        .collect()
}
