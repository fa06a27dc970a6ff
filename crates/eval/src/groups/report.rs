//! A group report as Markdown tables and SVG plots over time.

use std::fmt::Write;

use super::svg::{line_chart, Series};
use super::{
    Disparity, GroupRow, InputCounts, PageFigures, QueryDisparity, Report, Shares, Window,
};
use crate::exposure::UserModel;
use hubsearch_core::card::rfc3339;

/// A number for a table: four significant figures or so; `-` for none.
pub fn num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if !v.is_finite() => "-".into(),
        Some(v) => {
            let a = v.abs();
            if a == 0.0 {
                "0".into()
            } else if a >= 1000.0 {
                format!("{v:.0}")
            } else if a >= 100.0 {
                format!("{v:.1}")
            } else if a >= 1.0 {
                format!("{v:.3}")
            } else if a >= 0.001 {
                format!("{v:.4}")
            } else {
                format!("{v:.2e}")
            }
        }
    }
}

fn pct(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{:.2}%", 100.0 * v),
        _ => "-".into(),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn group_line(out: &mut String, r: &GroupRow, bold: bool) {
    let name = if bold {
        format!("**{}**", cell(&r.group))
    } else {
        format!("`{}`", cell(&r.group))
    };
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        r.models,
        r.candidate_slots,
        r.impressions,
        pct(Some(r.exposure_share)),
        pct(Some(r.merit_share)),
        pct(r.impact_share),
        num(r.exposure_vs_merit),
        num(r.impact_vs_merit),
        num(r.exposure_per_merit),
        num(r.impact_per_merit),
    );
}

fn disp(d: &Disparity) -> (String, String) {
    (num(d.max_min), num(d.mean_pairwise))
}

fn qdisp(d: &QueryDisparity) -> (String, String) {
    (num(d.max_min), num(d.mean_pairwise))
}

/// A row's disparity cells: max-min and pairwise of exposure, impact,
/// per-query exposure and per-query impact.
fn disparity_cells(x: &PageFigures) -> [String; 8] {
    let (a, b) = disp(&x.exposure);
    let (c, d) = disp(&x.impact);
    let (e, f) = qdisp(&x.per_query_exposure);
    let (g, h) = qdisp(&x.per_query_impact);
    [a, b, c, d, e, f, g, h]
}

/// The file names of the plots, in the order [`plots`] returns them.
pub const PLOTS: [&str; 6] = [
    "exposure-pairwise.svg",
    "exposure-max-min.svg",
    "impact-pairwise.svg",
    "impact-max-min.svg",
    "groups-exposure.svg",
    "groups-impact.svg",
];

/// report.md: `command` is how it was made, `source` the export read.
pub fn markdown(r: &Report, command: &str, source: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Group report: by {}\n", r.grouping);
    let _ = writeln!(
        o,
        "Made by `{command}` from the ledger export `{source}` (definitions: docs/metrics.md, Group reports). Every figure is also in `groups.json`.\n"
    );
    let _ = writeln!(o, "Groups: {}.\n", r.definition);
    let _ = writeln!(o, "## Input\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    for (k, v) in input_rows(&r.input) {
        let _ = writeln!(o, "| {k} | {v} |");
    }
    groups_section(&mut o, r);
    disparity_section(&mut o, r);
    policy_section(&mut o, r);
    ee_section(&mut o, r);
    o
}

/// The input table's rows: what was read, used and left out.
fn input_rows(i: &InputCounts) -> [(&'static str, String); 19] {
    [
        ("pages read", i.pages_read.to_string()),
        ("pages used", i.pages_used.to_string()),
        ("skipped: fair listings", i.skipped_listing.to_string()),
        ("skipped: other policies", i.skipped_policy.to_string()),
        (
            "pages without candidate lists (merit = shown relevance)",
            i.pages_without_candidates.to_string(),
        ),
        ("later pages (first rank > 1)", i.later_pages.to_string()),
        (
            "page times (UTC)",
            format!(
                "{} to {}",
                rfc3339(i.first_time as i64),
                rfc3339(i.last_time as i64)
            ),
        ),
        ("distinct queries", i.distinct_queries.to_string()),
        ("candidate slots (merit)", i.candidate_slots.to_string()),
        (
            "candidate slots with merit 0",
            i.zero_merit_slots.to_string(),
        ),
        ("impressions (exposure)", i.impressions.to_string()),
        (
            "shown items not matching the candidate list",
            i.key_mismatches.to_string(),
        ),
        ("paid calls read", i.calls_read.to_string()),
        (
            "calls joined to a shown item (page, rank)",
            i.calls_on_pages.to_string(),
        ),
        (
            "calls on a used page, rank or model not matching",
            i.calls_rank_mismatch.to_string(),
        ),
        (
            "calls placed by time (no page named)",
            i.calls_by_time.to_string(),
        ),
        (
            "calls left out (page filtered out)",
            i.calls_excluded.to_string(),
        ),
        ("cards read", i.cards.to_string()),
        (
            "candidate slots in `unknown` (no quantile / no card / no date / dated after the page)",
            format!(
                "{} / {} / {} / {}",
                i.unplaced.no_quantile,
                i.unplaced.no_card,
                i.unplaced.no_date,
                i.unplaced.dated_after_page
            ),
        ),
    ]
}

/// The groups' shares and ratios over all pages.
fn groups_section(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Groups over all pages (amortized)\n");
    let _ = writeln!(
        o,
        "Shares of the total over all used pages: exposure (attention of the shown ranks), merit (every candidate's logged merit), impact (paid calls). `E/M share` is exposure share over merit share (1 = exposure in proportion to merit), `I/M share` the same for impact; `E/M` and `I/M` are FairCo's ratios `E(G)/M(G)` and `I(G)/M(G)` whose gaps are the disparities below. {} groups in all.\n",
        r.group_count
    );
    let _ = writeln!(
        o,
        "| group | models | candidate slots | impressions | exposure share | merit share | impact share | E/M share | I/M share | E/M | I/M |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for g in &r.groups {
        group_line(o, g, false);
    }
    if let Some(x) = &r.others {
        group_line(o, x, false);
    }
    group_line(o, &r.totals, true);
    let _ = writeln!(
        o,
        "\n(total exposure {}, merit {}, paid calls {}, income ${})",
        num(Some(r.totals.exposure)),
        num(Some(r.totals.merit)),
        num(Some(r.totals.calls)),
        num(Some(r.totals.income_usd))
    );
    let w = &r.without_merit;
    if w.groups > 0 {
        let _ = writeln!(
        o,
        "\n{} groups had merit 0 on every page they were candidates of: their ratios are undefined and the disparities leave them out; {} of them were shown, with {} of the exposure and {} of the paid calls.",
        w.groups,
        w.shown,
        pct(Some(w.exposure_share)),
        pct(w.impact_share)
    );
    }
}

/// The disparities at each window's end, who sets the final gaps, and the
/// plots.
fn disparity_section(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Disparity over time\n");
    let _ = writeln!(
        o,
        "Cumulative to the end of each window of the page sequence. Amortized: over every page so far, among the groups with merit (`n`); per query: the same over each distinct query's own pages so far, averaged over the queries with two or more groups with merit (`q`). `max-min` is `max_G ratio(G) - min_G ratio(G)`, `pairwise` the mean of `|ratio(G) - ratio(G')|` over pairs (the reference code's unfairness); ratio = `E/M` for exposure, `I/M` for impact.\n"
    );
    let _ = writeln!(
        o,
        "| pages | calls | n | exposure max-min | exposure pairwise | impact max-min | impact pairwise | q | per-query exposure max-min | per-query exposure pairwise | per-query impact max-min | per-query impact pairwise |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for w in r.windows.iter().map(|w| &w.figures) {
        let [a, b, c, d, e, f, g, h] = disparity_cells(w);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {a} | {b} | {c} | {d} | {} | {e} | {f} | {g} | {h} |",
            w.pages, w.calls, w.exposure.groups, w.per_query_exposure.queries
        );
    }
    if !r.extremes.is_empty() {
        let _ = writeln!(
            o,
            "\nThe final largest gaps are set by (ratio; exposure or calls; merit over candidate slots):\n"
        );
        let _ = writeln!(o, "| ratio | end | group | ratio value | E or I | M | candidate slots |\n|---|---|---|---|---|---|---|");
        for x in &r.extremes {
            let _ = writeln!(
                o,
                "| {} | {} | `{}` | {} | {} | {} | {} |",
                if x.measure == "exposure" {
                    "E/M"
                } else {
                    "I/M"
                },
                x.which,
                cell(&x.group),
                num(Some(x.ratio)),
                num(Some(x.value)),
                num(Some(x.merit)),
                x.candidate_slots
            );
        }
    }
    let _ = writeln!(
        o,
        "\n![exposure, pairwise]({})\n![exposure, max-min]({})\n![impact, pairwise]({})\n![impact, max-min]({})\n",
        PLOTS[0], PLOTS[1], PLOTS[2], PLOTS[3]
    );
    let _ = writeln!(
        o,
        "Shares over merit share over time, for the {} groups plotted (1 = in proportion to merit):\n",
        r.plotted.len()
    );
    let _ = writeln!(
        o,
        "![exposure vs merit]({})\n![impact vs merit]({})",
        PLOTS[4], PLOTS[5]
    );
}

/// Each policy's pages alone.
fn policy_section(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## By policy (all pages of the policy, final)\n");
    let _ = writeln!(
        o,
        "| policy | pages | calls | exposure max-min | exposure pairwise | impact max-min | impact pairwise | per-query exposure max-min | per-query exposure pairwise | per-query impact max-min | per-query impact pairwise |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for p in &r.by_policy {
        let [a, b, c, d, e, f, g, h] = disparity_cells(&p.figures);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {a} | {b} | {c} | {d} | {e} | {f} | {g} | {h} |",
            cell(&p.policy),
            p.figures.pages,
            p.figures.calls
        );
    }
}

/// Group expected exposure, when judgments were given.
fn ee_section(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Group expected exposure (expeval -G)\n");
    match &r.expected_exposure {
        None => {
            let _ = writeln!(
                o,
                "Not computed: no judgments given (`--queries` and `--qrels`)."
            );
        }
        Some(ee) => {
            let model = match ee.options.model {
                UserModel::Rbp { patience } => format!("rbp, patience {patience}"),
                UserModel::Gerr { patience, utility } => {
                    format!("gerr, patience {patience}, utility {utility}")
                }
            };
            let _ = writeln!(
                o,
                "Browsing model {model}; each judged query's used first pages are its ranking samples (later pages skipped: {}). {} judged queries, {} with pages, {} scored, {} rankings. Raw figures, as expeval's `-G` (its normalised group figures are not reproduced, docs/metrics.md).\n",
                ee.later_pages_skipped,
                ee.queries_judged,
                ee.queries_matched,
                ee.queries_scored,
                ee.rankings
            );
            let _ = writeln!(
                o,
                "| mean EE-D | mean EE-R | mean EE-L |\n|---|---|---|\n| {} | {} | {} |\n",
                num(Some(ee.mean.disparity)),
                num(Some(ee.mean.relevance)),
                num(Some(ee.mean.difference))
            );
            let _ = writeln!(
                o,
                "Mean over the scored queries of each group's expected exposure (its relevant documents' `eps`) and target (`eps*`), largest targets first:\n"
            );
            let _ = writeln!(
                o,
                "| group | expected exposure | target | exposure - target |\n|---|---|---|---|"
            );
            for g in &ee.groups {
                let _ = writeln!(
                    o,
                    "| `{}` | {} | {} | {} |",
                    cell(&g.group),
                    num(Some(g.exposure)),
                    num(Some(g.target)),
                    num(Some(g.exposure - g.target))
                );
            }
        }
    }
}

/// The plots, in [`PLOTS`]' order: (file name, SVG).
pub fn plots(r: &Report) -> Vec<(String, String)> {
    type Pick<'a> = &'a dyn Fn(&Window) -> Option<f64>;
    let series = |name: &str, f: Pick| Series {
        name: name.into(),
        points: r
            .windows
            .iter()
            .filter_map(|w| f(w).map(|y| (w.figures.pages as f64, y)))
            .collect(),
    };
    let disparity_plot = |file: &str, title: &str, y: &str, amortized: Pick, pq: Pick| {
        (
            file.to_string(),
            line_chart(
                &format!("{title} between {} groups", r.grouping),
                "pages",
                y,
                &[
                    series("amortized", amortized),
                    series("per query (mean)", pq),
                ],
                None,
            ),
        )
    };
    let share_plot = |file: &str, what: &str, f: &dyn Fn(&Shares) -> Option<f64>| {
        let s: Vec<Series> = r
            .plotted
            .iter()
            .enumerate()
            .map(|(g, name)| {
                series(name, &|w| {
                    let sh = &w.shares[g];
                    f(sh).filter(|_| sh.merit > 0.0).map(|v| v / sh.merit)
                })
            })
            .collect();
        (
            file.to_string(),
            line_chart(
                &format!("{what} share / merit share by {} (cumulative)", r.grouping),
                "pages",
                &format!("{what} share / merit share"),
                &s,
                Some(1.0),
            ),
        )
    };
    // Exposure and impact (E, I), each by its mean pairwise gap and its
    // largest gap: PLOTS[0..4].
    let mut plots = Vec::new();
    for (kind, x, impact) in [("Exposure", "E", false), ("Impact", "I", true)] {
        for (measure, y, largest) in [
            (
                "mean pairwise gap",
                format!("mean |{x}/M(G) - {x}/M(G')|"),
                false,
            ),
            ("largest gap", format!("max {x}/M - min {x}/M"), true),
        ] {
            let gap = |max_min, mean_pairwise| if largest { max_min } else { mean_pairwise };
            let amortized = |w: &Window| {
                let w = &w.figures;
                let d = if impact { w.impact } else { w.exposure };
                gap(d.max_min, d.mean_pairwise)
            };
            let per_query = |w: &Window| {
                let w = &w.figures;
                let q = if impact {
                    w.per_query_impact
                } else {
                    w.per_query_exposure
                };
                gap(q.max_min, q.mean_pairwise)
            };
            plots.push(disparity_plot(
                PLOTS[plots.len()],
                &format!("{kind}/merit: {measure}"),
                &y,
                &amortized,
                &per_query,
            ));
        }
    }
    plots.extend([
        share_plot(PLOTS[4], "exposure", &|s| Some(s.exposure)),
        share_plot(PLOTS[5], "impact", &|s| s.impact),
    ]);
    plots
}
