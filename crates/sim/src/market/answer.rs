//! The report's answer paragraph, generated from the figures: every number
//! in it is read from the [`StudyResult`], and every qualitative word
//! ("settled", "winner-take-most", "interact") follows a stated rule.

use std::fmt::Write as _;

use super::report::{cells_of, pct, points, relevance, threshold, usd};
use super::stats::Estimate;
use super::study::{Cell, GridPoint, HUB_DEFAULT};
use super::{Regime, StudyPolicy, StudyResult};

/// A period-to-period change counts as settled when both ends of its
/// interval are within this many points (as a share) ...
pub const SETTLED: f64 = 0.005;
/// ... or within this share of the level.
pub const SETTLED_RELATIVE: f64 = 0.05;

/// Winner-take-most: the top 1% of builders take at least this share of
/// income, or the median tail builder makes less than the second threshold.
pub const TOP1_WTM: f64 = 0.5;

/// The answer.
pub fn answer(r: &StudyResult) -> String {
    let mut s = String::new();
    let Some(rel) = relevance(r, Regime::Either) else {
        return "No figures.".into();
    };
    let Some(end) = rel.periods.last() else {
        return "No figures.".into();
    };
    let o = &r.options;
    let share_at = |c: &Cell, k: usize| c.periods.last().map(|p| p.tail_viable[k]);
    let _ = write!(
        s,
        "After {} days at {} visits a day, ranked by relevance, with each builder hosting a model serverless or on a dedicated instance as its expected calls make cheaper, **{}** of the tail builders make any profit from their models over the last 30 days",
        end.day,
        o.traffic,
        pct(&end.tail_viable[0])
    );
    for (k, &t) in o.thresholds_usd.iter().enumerate().skip(1) {
        let _ = write!(
            s,
            ", {} make more than ${t:.0} a month",
            pct(&end.tail_viable[k])
        );
    }
    let _ = write!(
        s,
        ", and {} earn enough to pay for a dedicated instance. The median tail builder makes {} a month, the 99th percentile {}; the top 1% of builders take {} of all income. ",
        pct(&end.tail_covers_dedicated),
        usd(&end.tail_profit_p50),
        usd(&end.tail_profit_p99),
        pct(&end.top1pct_income_share)
    );
    if let (Some(a), Some(b)) = (
        relevance(r, Regime::Serverless).and_then(|c| share_at(c, 0)),
        relevance(r, Regime::Dedicated).and_then(|c| share_at(c, 0)),
    ) {
        let _ = write!(
            s,
            "(With every model serverless the share making a profit is {}; with every model on a dedicated instance, {}.) ",
            pct(&a),
            pct(&b)
        );
    }
    verdict(
        &mut s,
        r,
        end.top1pct_income_share.mean,
        end.tail_profit_p50.mean,
    );
    policies(&mut s, r);
    settled(&mut s, r);
    conditions(&mut s, r);
    strategic(&mut s, r);
    bound(&mut s, r);
    s.push_str("Every figure holds for this world's priors (costs, prices, adoption volumes and churn; docs/study.md lists each with its source); the traffic grid shows how far the thresholds move.");
    s
}

/// Winner-take-most or not, by the stated rule.
fn verdict(s: &mut String, r: &StudyResult, top1: f64, p50: f64) {
    let second = r.options.thresholds_usd.get(1).copied().unwrap_or(0.0);
    if top1 >= TOP1_WTM || p50 < second {
        let _ = write!(
            s,
            "**Per-call income is winner-take-most here**: {}. ",
            if top1 >= TOP1_WTM && p50 < second {
                format!("the top 1% take at least half of the income and the median tail builder makes less than ${second:.0} a month")
            } else if top1 >= TOP1_WTM {
                "the top 1% take at least half of the income".to_string()
            } else {
                format!("the median tail builder makes less than ${second:.0} a month")
            }
        );
    } else {
        let _ = write!(
            s,
            "By the study's rule (top 1% taking half the income, or a median tail builder under ${second:.0} a month) per-call income is **not** winner-take-most here. "
        );
    }
}

/// What the tuned policies change, paired against relevance.
fn policies(s: &mut String, r: &StudyResult) {
    let o = &r.options;
    let best = cells_of(r, Regime::Either)
        .filter(|c| c.tuned)
        .max_by(|a, b| gain(a).total_cmp(&gain(b)));
    let k100 = o.thresholds_usd.iter().position(|&t| t >= 100.0);
    if let Some(b) = best {
        let d = &b.vs_relevance;
        let moved = excludes_zero(&d.tail_viable[0]);
        let _ = write!(
            s,
            "Of the policies tuned (on separate seeds) to lose at most {:.0}% of users' welfare, {} moves the tail share making a profit most: by {} points{} at a welfare change of {} against relevance{}. ",
            100.0 * o.target_loss,
            b.policy.label(),
            points(&d.tail_viable[0]),
            k100.and_then(|k| d.tail_viable.get(k))
                .map(|e| format!(" ({} points for {})", points(e), threshold(o.thresholds_usd[k100.unwrap_or(0)])))
                .unwrap_or_default(),
            pct(&d.welfare_ratio),
            if moved { "" } else { "; the interval includes zero: no detectable change" }
        );
    }
    if let Some(h) = cells_of(r, Regime::Either).find(|c| c.policy == HUB_DEFAULT) {
        let _ = write!(
            s,
            "The hub's default popularity ranking changes it by {} points, at a welfare change of {}. ",
            points(&h.vs_relevance.tail_viable[0]),
            pct(&h.vs_relevance.welfare_ratio)
        );
    }
}

/// Whether the last period's change is within the settling band.
fn settled(s: &mut String, r: &StudyResult) {
    let rel: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.policy == StudyPolicy::Relevance)
        .collect();
    // Per regime: the change's largest end, and the band it must be in.
    let moves: Vec<(f64, f64)> = rel
        .iter()
        .filter_map(|c| {
            let level = c.periods.last()?.tail_viable.first()?.mean;
            let e = c.last_change.as_ref()?;
            Some((
                e.lo.abs().max(e.hi.abs()),
                SETTLED.max(SETTLED_RELATIVE * level),
            ))
        })
        .collect();
    let worst = moves.iter().map(|m| m.0).fold(f64::NAN, f64::max);
    if moves.is_empty() {
        s.push_str("With a single period the study cannot say whether the figures settle. ");
    } else if moves.iter().all(|(x, band)| x <= band) {
        let _ = write!(
            s,
            "The figures have settled: under relevance the share making a profit moves by at most {:.1} points over the last period in every regime (both ends of the interval within {:.1} points or {:.0}% of the level). ",
            100.0 * worst,
            100.0 * SETTLED,
            100.0 * SETTLED_RELATIVE
        );
    } else {
        let _ = write!(
            s,
            "The figures have **not** fully settled: under relevance the share making a profit still moves by up to {:.1} points over the last period (the settling table). ",
            100.0 * worst
        );
    }
}

/// What strategic supply changes, under relevance (paired).
fn strategic(s: &mut String, r: &StudyResult) {
    let find = |rep: bool, seek: bool| {
        r.supply.iter().find(|c| {
            c.policy == StudyPolicy::Relevance && c.repricing == rep && c.seeking_entrants == seek
        })
    };
    let (Some(rp), Some(sk)) = (find(true, false), find(false, true)) else {
        return;
    };
    let _ = write!(
        s,
        "Strategic supply (relevance, either hosting): builders who reprice toward profit change the tail share making a profit by {} points (median markup {:.1}, {} of models at the cap), profit-seeking entrants by {} points, against fixed prices and copying entrants. ",
        points(&rp.vs_fixed.tail_viable[0]),
        rp.end.median_markup.mean,
        pct(&rp.end.at_cap_share),
        points(&sk.vs_fixed.tail_viable[0])
    );
}

/// How far the policies are from what any ranking could do.
fn bound(s: &mut String, r: &StudyResult) {
    let Some(u) = &r.upper else { return };
    let at = |x: f64| {
        u.points
            .iter()
            .find(|p| (p.welfare_ratio - x).abs() < 1e-9)
            .map(|p| p.viable_share)
    };
    if let Some(v) = at(1.0 - r.options.target_loss).or_else(|| at(1.0)) {
        let _ = write!(
            s,
            "What any ranking could do (the LP upper bound on the initial supply, serverless): giving up at most {:.0}% of welfare in the bound's terms, at most {:.1}% of the tail could make ${:.0} a month, against {:.1}% for relevance's page in the same model. ",
            100.0 * r.options.target_loss,
            100.0 * v,
            u.threshold_usd,
            100.0 * u.relevance_share
        );
    }
}

/// Where traffic moves the answer, and whether policy and traffic interact.
fn conditions(s: &mut String, r: &StudyResult) {
    let o = &r.options;
    let at = |pol: fn(&StudyPolicy) -> bool| -> Vec<&GridPoint> {
        let mut v: Vec<&GridPoint> = r
            .grid
            .iter()
            .filter(|p| {
                pol(&p.policy) && p.concentration == o.concentration && p.markup == o.markup_median
            })
            .collect();
        v.sort_by(|a, b| a.traffic.total_cmp(&b.traffic));
        v
    };
    let rel = at(|p| *p == StudyPolicy::Relevance);
    let fair = at(|p| matches!(p, StudyPolicy::Fair { .. }));
    let (Some(lo), Some(hi)) = (rel.first(), rel.last()) else {
        return;
    };
    let k = o
        .thresholds_usd
        .iter()
        .position(|&t| t >= 100.0)
        .unwrap_or(0);
    let _ = write!(
        s,
        "Traffic sets the level: under relevance ({} hosting, concentration {}) the tail share making {} a month is {} at {} visits a day and {} at {}",
        r.grid_regime.name(),
        o.concentration,
        threshold(o.thresholds_usd[k]),
        pct(&lo.tail_viable[k]),
        lo.traffic,
        pct(&hi.tail_viable[k]),
        hi.traffic
    );
    match rel.iter().find(|p| p.tail_viable[k].lo >= 0.5) {
        Some(p) => {
            let _ = write!(
                s,
                "; the majority of the tail makes that much from {} visits a day on. ",
                p.traffic
            );
        }
        None => {
            s.push_str("; at no traffic in the grid does the majority of the tail make that much. ")
        }
    }
    if let (Some(f_lo), Some(f_hi)) = (fair.first(), fair.last()) {
        let apart = f_lo.vs_relevance.hi < f_hi.vs_relevance.lo
            || f_hi.vs_relevance.hi < f_lo.vs_relevance.lo;
        let _ = write!(
            s,
            "{}'s paired gain over relevance is {} points at {} visits a day and {} at {}: {}. ",
            if f_lo.tuned_here {
                "fair (re-tuned in each cell)".to_string()
            } else {
                f_lo.policy.label()
            },
            points(&f_lo.vs_relevance),
            f_lo.traffic,
            points(&f_hi.vs_relevance),
            f_hi.traffic,
            if apart {
                "policy and traffic interact (the gain depends on the traffic), so neither can be ranked first on its own"
            } else {
                "the intervals overlap: no interaction detected at this precision"
            }
        );
    }
}

/// A cell's mean paired gain in the tail share making a profit.
fn gain(c: &Cell) -> f64 {
    c.vs_relevance
        .tail_viable
        .first()
        .map_or(f64::NEG_INFINITY, |e| e.mean)
}

fn excludes_zero(e: &Estimate) -> bool {
    e.lo > 0.0 || e.hi < 0.0
}
