//! The study's report: REPORT.md (the answer, tables with 95% intervals,
//! the design) and its SVG plots, written from a [`StudyResult`].

use std::fmt::Write as _;
use std::path::Path;

use hubsearch_core::PolicyKind;

use super::stats::Estimate;
use super::study::{Cell, HUB_DEFAULT};
use super::{Regime, StudyResult};
use crate::svg::{line_chart, Series};

fn ci(e: &Estimate, digits: usize) -> String {
    if !e.mean.is_finite() {
        return "n/a".into();
    }
    format!("{:.d$} [{:.d$}, {:.d$}]", e.mean, e.lo, e.hi, d = digits)
}

fn pct(e: &Estimate) -> String {
    if !e.mean.is_finite() {
        return "n/a".into();
    }
    format!(
        "{:.1}% [{:.1}, {:.1}]",
        100.0 * e.mean,
        100.0 * e.lo,
        100.0 * e.hi
    )
}

fn cell(r: &StudyResult, regime: Regime, kind: PolicyKind) -> Option<&Cell> {
    r.cells
        .iter()
        .find(|c| c.regime == regime && c.policy.kind() == kind && c.policy != HUB_DEFAULT)
        .or_else(|| {
            r.cells
                .iter()
                .find(|c| c.regime == regime && c.policy.kind() == kind)
        })
}

fn default_cell(r: &StudyResult, regime: Regime) -> Option<&Cell> {
    r.cells
        .iter()
        .find(|c| c.regime == regime && c.policy == HUB_DEFAULT)
}

/// The answer, from the figures (docs/study.md, Reading the answer).
fn answer(r: &StudyResult) -> String {
    let mut s = String::new();
    let v = |regime, kind| cell(r, regime, kind).map(|c| c.figures.tail_viable_share);
    let (Some(rel_s), Some(rel_d)) = (
        v(Regime::Serverless, PolicyKind::Relevance),
        v(Regime::Dedicated, PolicyKind::Relevance),
    ) else {
        return "No figures.".into();
    };
    answer_dedicated(&mut s, r, &rel_s, &rel_d);
    answer_serverless(&mut s, r);
    answer_traffic(&mut s, r);
    s.push_str("These figures hold for this world's priors (docs/study.md lists them and what each is based on); other costs, prices or adoption volumes move the thresholds.");
    s
}

/// The cell of `regime` at equal relevance that keeps the most tail
/// builders viable.
fn best_at_equal_relevance(r: &StudyResult, regime: Regime) -> Option<&Cell> {
    r.cells
        .iter()
        .filter(|c| c.regime == regime && c.equal_relevance)
        .max_by(|a, b| {
            a.figures
                .tail_viable_share
                .mean
                .total_cmp(&b.figures.tail_viable_share.mean)
        })
}

/// The viable tail under relevance (`rel_s`, `rel_d`: serverless,
/// dedicated), the hub's default and the best policy under dedicated
/// hosting, and income concentration.
fn answer_dedicated(s: &mut String, r: &StudyResult, rel_s: &Estimate, rel_d: &Estimate) {
    let pop_d = default_cell(r, Regime::Dedicated).map(|c| c.figures.tail_viable_share);
    let best_d = best_at_equal_relevance(r, Regime::Dedicated);
    let gini = cell(r, Regime::Dedicated, PolicyKind::Relevance).map(|c| c.figures.income_gini_all);
    let _ = write!(
        s,
        "At {} visits a day, after {} days, per-call income keeps **{:.1}%** of the tail builders viable (a listed model and positive profit over the last 30 days) under serverless hosting and **{:.1}%** under dedicated hosting when the hub ranks by relevance",
        r.options.traffic,
        r.options.days,
        100.0 * rel_s.mean,
        100.0 * rel_d.mean
    );
    if let Some(p) = pop_d {
        let _ = write!(
            s,
            " ({:.1}% under the hub's default popularity ranking, dedicated)",
            100.0 * p.mean
        );
    }
    s.push_str(". ");
    if let Some(b) = best_d {
        let overlap = b.figures.tail_viable_share.lo <= rel_d.hi;
        let _ = write!(
            s,
            "The best policy at equal relevance under dedicated hosting, {}, reaches {}{}. ",
            b.policy.label(),
            pct(&b.figures.tail_viable_share),
            if overlap && b.policy.kind() != PolicyKind::Relevance {
                ", an interval that overlaps relevance's: no policy changes the answer at this traffic"
            } else {
                ""
            }
        );
    }
    if let Some(g) = gini {
        let _ = write!(
            s,
            "Income stays concentrated whatever the policy (builders' income Gini under relevance {}). ",
            ci(&g, 3)
        );
    }
}

/// The best policy under serverless hosting against relevance.
fn answer_serverless(s: &mut String, r: &StudyResult) {
    if let (Some(best_s), Some(rel)) = (
        best_at_equal_relevance(r, Regime::Serverless),
        cell(r, Regime::Serverless, PolicyKind::Relevance),
    ) {
        let _ = write!(
            s,
            "Under serverless hosting the best policy at equal relevance, {}, keeps {} viable against {} under relevance, at nDCG@10 {} against {}. ",
            best_s.policy.label(),
            pct(&best_s.figures.tail_viable_share),
            pct(&rel.figures.tail_viable_share),
            ci(&best_s.figures.ndcg10, 3),
            ci(&rel.figures.ndcg10, 3)
        );
    }
}

/// Which moves viability more: the policy, or traffic (the grid)?
fn answer_traffic(s: &mut String, r: &StudyResult) {
    let spread = |xs: Vec<f64>| -> f64 {
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        if xs.is_empty() {
            0.0
        } else {
            max - min
        }
    };
    let by_policy = spread(
        r.cells
            .iter()
            .filter(|c| c.regime == Regime::Dedicated && c.equal_relevance)
            .map(|c| c.figures.tail_viable_share.mean)
            .collect(),
    );
    let by_traffic = spread(
        r.grid
            .iter()
            .filter(|p| {
                p.policy.kind() == PolicyKind::Relevance
                    && p.concentration == r.options.concentration
            })
            .map(|p| p.tail_viable_share.mean)
            .collect(),
    );
    let traffic = &r.options.grid_traffic;
    let lo_t = traffic.iter().copied().fold(f64::INFINITY, f64::min);
    let hi_t = traffic.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let _ = write!(
        s,
        "Under dedicated hosting, traffic from {lo_t} to {hi_t} visits a day moves the viable tail share under relevance by {:.1} points and the choice of policy at equal relevance by {:.1} points: {}. ",
        100.0 * by_traffic,
        100.0 * by_policy,
        if by_traffic > by_policy {
            "whether the tail covers a fixed hosting cost is set first by traffic per model, then by the policy"
        } else {
            "the ranking policy matters more than traffic in this range"
        }
    );
}

/// REPORT.md: the answer, the world, tuning, the headline tables, the grid,
/// the plots and every parameter. `rev`, `index` and `command` say how it
/// was made.
pub fn report(r: &StudyResult, rev: &str, index: &Path, command: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# The pay-per-call study\n");
    let _ = writeln!(
        s,
        "Generated by `{command}` (git {rev}, index `{}`) in {:.0} s: {} simulated visits, {:.0} visits/s on {} threads. The model, every parameter and its source: [docs/study.md](../../../docs/study.md).\n",
        index.display(),
        r.seconds,
        r.visits,
        r.visits_per_second,
        r.threads
    );
    let _ = writeln!(s, "## The answer\n\n{}\n", answer(r));
    world_section(&mut s, r);
    tuning_section(&mut s, r);
    headline_section(&mut s, r);
    grid_section(&mut s, r);
    plots_section(&mut s);
    let _ = writeln!(
        s,
        "\n## Parameters\n\n```json\n{}\n```",
        serde_json::to_string_pretty(&r.options).unwrap_or_default()
    );
    s
}

/// The world: hub, coverage, entrants, design.
fn world_section(s: &mut String, r: &StudyResult) {
    let o = &r.options;
    let c = &r.coverage;
    let _ = writeln!(s, "## The world\n");
    let _ = writeln!(
        s,
        "- Hub: {} models, {} with a task; {} builders ({} in the tail: outside the top 10% by 2022 downloads).",
        c.models, c.models_with_task, c.builders, r.initial_tail_builders
    );
    let share = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let _ = writeln!(
        s,
        "- Coverage: {} query types ({} needs, {} model names taking {:.0}% of visits); **{:.1}%** of models with a task ({:.1}% of all models) and **{:.1}%** of builders can ever be a candidate; by needs alone (not only when named) {:.1}% of models with a task and {:.1}% of builders.",
        c.query_types,
        c.query_types - c.name_types,
        c.name_types,
        100.0 * o.navigational_share,
        share(c.models_covered, c.models_with_task),
        share(c.models_covered, c.models),
        share(c.builders_covered, c.builders),
        share(c.models_covered_by_needs, c.models_with_task),
        share(c.builders_covered_by_needs, c.builders)
    );
    let _ = writeln!(
        s,
        "- Entrants: {:.0} new models over the year in world 0 ({}% a day of the initial models, {}% from new builders).",
        r.entrants_per_world,
        100.0 * o.entry_rate,
        100.0 * o.new_builder_share
    );
    let _ = writeln!(
        s,
        "- Design: {} days, {} simulated visits a day standing for {} real ones; {} replications per cell (world seed and behaviour seed apart, the same seeds for every policy); 95% percentile-bootstrap intervals over replications.\n",
        o.days, o.visits_per_day, o.traffic, o.seeds
    );
}

/// The knob sweeps and what was kept, per regime.
fn tuning_section(s: &mut String, r: &StudyResult) {
    let o = &r.options;
    let _ = writeln!(s, "## Tuning to equal relevance\n");
    let _ = writeln!(
        s,
        "Each family's knob swept in both hosting regimes ({} replications per value, the full year); in each regime the value kept is the strongest whose nDCG@10 is within {:.0}% of relevance's, either side (plots: `frontier-serverless.svg`, `frontier-dedicated.svg`).",
        o.sweep_seeds,
        100.0 * (1.0 - o.target_ratio)
    );
    for regime in [Regime::Serverless, Regime::Dedicated] {
        let _ = writeln!(s, "\n### {} hosting\n", regime.name());
        s.push_str("| policy | nDCG@10 | / relevance | adoptions per visit | tail viable at the end | tail share of exposure | kept |\n|---|---|---|---|---|---|---|\n");
        let points: Vec<_> = r.sweep.iter().filter(|p| p.regime == regime).collect();
        let reference = points
            .iter()
            .find(|p| p.policy.kind() == PolicyKind::Relevance)
            .map_or(1.0, |p| p.ndcg10.max(f64::MIN_POSITIVE));
        for p in &points {
            let kept = r
                .tuned
                .iter()
                .any(|t| t.regime == regime && t.policy == p.policy);
            let _ = writeln!(
                s,
                "| {} | {:.4} | {:.3} | {:.3} | {:.1}% | {:.1}% | {} |",
                p.policy.label(),
                p.ndcg10,
                p.ndcg10 / reference,
                p.adoptions_per_visit,
                100.0 * p.tail_viable_share,
                100.0 * p.tail_exposure_share,
                if kept { "yes" } else { "" }
            );
        }
        for t in r.tuned.iter().filter(|t| t.regime == regime && !t.within) {
            let _ = writeln!(
                s,
                "\n{}: no knob value stays within the target; the mildest is kept and its rows are not at equal relevance.",
                t.policy.name()
            );
        }
    }
}

/// The headline cells, a table per regime.
fn headline_section(s: &mut String, r: &StudyResult) {
    for regime in [Regime::Serverless, Regime::Dedicated] {
        let _ = writeln!(s, "\n## Headline: {} hosting\n", regime.name());
        s.push_str("| policy | equal relevance | nDCG@10 | adoptions per visit | tail builders viable at the end | median tail profit per month (USD) | income Gini (active) | income Gini (all) | top-1% share of income | median HHI per task | entrant 90-day survival | median days to first paid call |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for c in r.cells.iter().filter(|c| c.regime == regime) {
            let f = &c.figures;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.policy.label(),
                if c.equal_relevance { "yes" } else { "no" },
                ci(&f.ndcg10, 4),
                ci(&f.adoptions_per_visit, 3),
                pct(&f.tail_viable_share),
                ci(&f.median_tail_profit_month, 2),
                ci(&f.income_gini_active, 3),
                ci(&f.income_gini_all, 3),
                pct(&f.top1pct_income_share),
                ci(&f.median_task_hhi, 3),
                pct(&f.entrant_survival_90),
                ci(&f.median_days_to_first_call, 1),
            );
        }
    }
}

/// Viability over the traffic x concentration grid.
fn grid_section(s: &mut String, r: &StudyResult) {
    let o = &r.options;
    let _ = writeln!(
        s,
        "\n## Viability over traffic and demand concentration ({} hosting)\n",
        r.grid_regime.name()
    );
    let _ = writeln!(
        s,
        "Tail builders viable at the end ({} replications each; {} simulated visits a day at most, each standing for traffic / that many). Concentration: demand per query type ~ (1 + downloads)^c (0 = uniform, 1 = calibrated to 2022 downloads).\n",
        o.grid_seeds, o.grid_visits_per_day
    );
    s.push_str("| policy | concentration | traffic (visits/day) | tail viable | active builders viable |\n|---|---|---|---|---|\n");
    for p in &r.grid {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            p.policy.label(),
            p.concentration,
            p.traffic,
            pct(&p.tail_viable_share),
            pct(&p.viable_active_share)
        );
    }
}

/// The list of plots.
fn plots_section(s: &mut String) {
    s.push_str("\n## Plots\n\n");
    for (f, what) in [
        (
            "viable-tail-dedicated.svg",
            "viable tail share over time, dedicated",
        ),
        (
            "viable-tail-serverless.svg",
            "viable tail share over time, serverless",
        ),
        ("entrant-survival.svg", "entrant survival by age, dedicated"),
        (
            "frontier-serverless.svg",
            "utility (nDCG@10) against tail viability, every knob value, serverless",
        ),
        (
            "frontier-dedicated.svg",
            "utility (nDCG@10) against tail viability, every knob value, dedicated",
        ),
        (
            "lorenz-income.svg",
            "Lorenz curves of builders' income, dedicated",
        ),
        (
            "grid.svg",
            "tail viability over traffic, per demand concentration",
        ),
    ] {
        let _ = writeln!(s, "- {what}: ![{what}]({f})");
    }
}

/// The SVG plots of REPORT.md, into `out`.
pub fn write_plots(r: &StudyResult, out: &Path) -> std::io::Result<()> {
    let write = |file: &str, svg: String| std::fs::write(out.join(file), svg);
    for regime in [Regime::Serverless, Regime::Dedicated] {
        write(
            &format!("viable-tail-{}.svg", regime.name()),
            viable_tail_plot(r, regime),
        )?;
    }
    let dedicated: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.regime == Regime::Dedicated)
        .collect();
    write("entrant-survival.svg", survival_plot(&dedicated))?;
    for regime in [Regime::Serverless, Regime::Dedicated] {
        write(
            &format!("frontier-{}.svg", regime.name()),
            frontier_plot(r, regime),
        )?;
    }
    write("lorenz-income.svg", lorenz_plot(&dedicated))?;
    write("grid.svg", grid_plot(r))?;
    Ok(())
}

/// The viable tail share by day, per cell of `regime`.
fn viable_tail_plot(r: &StudyResult, regime: Regime) -> String {
    let series: Vec<Series> = r
        .cells
        .iter()
        .filter(|c| c.regime == regime)
        .map(|c| Series {
            name: c.policy.label(),
            points: c
                .viable_tail_by_day
                .iter()
                .enumerate()
                .map(|(d, v)| ((d + 1) as f64, *v))
                .collect(),
        })
        .collect();
    line_chart(
        &format!("Tail builders viable ({} hosting)", regime.name()),
        "day",
        "share of tail builders",
        &series,
        false,
    )
}

/// Entrants' survival by age, per cell.
fn survival_plot(cells: &[&Cell]) -> String {
    let survival: Vec<Series> = cells
        .iter()
        .map(|c| Series {
            name: c.policy.label(),
            points: c
                .entrant_survival
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(a, v)| (a as f64, *v))
                .collect(),
        })
        .collect();
    line_chart(
        "Entrants still listed (dedicated hosting)",
        "age (days)",
        "share surviving",
        &survival,
        false,
    )
}

/// nDCG@10 against the viable tail, every knob value of each family.
fn frontier_plot(r: &StudyResult, regime: Regime) -> String {
    let mut fams: Vec<PolicyKind> = r
        .sweep
        .iter()
        .filter(|p| p.regime == regime)
        .map(|p| p.policy.kind())
        .collect();
    fams.dedup();
    let frontier: Vec<Series> = fams
        .iter()
        .map(|f| Series {
            name: f.to_string(),
            points: r
                .sweep
                .iter()
                .filter(|p| p.regime == regime && p.policy.kind() == *f)
                .map(|p| (p.tail_viable_share, p.ndcg10))
                .collect(),
        })
        .collect();
    line_chart(
        &format!("Utility against tail viability ({} hosting)", regime.name()),
        "tail builders viable at the end",
        "nDCG@10",
        &frontier,
        true,
    )
}

/// Lorenz curves of builders' income, per cell.
fn lorenz_plot(cells: &[&Cell]) -> String {
    let lorenz: Vec<Series> = cells
        .iter()
        .map(|c| Series {
            name: c.policy.label(),
            points: c.lorenz_income.clone(),
        })
        .collect();
    line_chart(
        "Builders' income, Lorenz (dedicated hosting)",
        "share of builders",
        "share of income",
        &lorenz,
        false,
    )
}

/// The viable tail over traffic, per policy and concentration.
fn grid_plot(r: &StudyResult) -> String {
    let mut keys: Vec<(String, f64)> = Vec::new();
    for p in &r.grid {
        let k = (p.policy.label(), p.concentration);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let grid: Vec<Series> = keys
        .iter()
        .map(|(label, c)| Series {
            name: format!("{label}, c={c}"),
            points: r
                .grid
                .iter()
                .filter(|p| &p.policy.label() == label && p.concentration == *c)
                .map(|p| (p.traffic.log10(), p.tail_viable_share.mean))
                .collect(),
        })
        .collect();
    line_chart(
        &format!("Tail viability over traffic ({})", r.grid_regime.name()),
        "log10 visits per day",
        "share of tail builders viable",
        &grid,
        true,
    )
}
