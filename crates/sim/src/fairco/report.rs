//! `hubsearch fairco`'s report (docs/ranking.md, Convergence): each
//! controller's curve and a lambda sweep, with known relevance and with
//! relevance learnt from clicks, as fairco.md and three SVG plots.

use std::fmt::Write as _;

use hubsearch_core::Rounds;
use hubsearch_rank::Policy;

use super::{news_experiment, Checkpoint, Curve, NewsOptions};
use crate::svg::{line_chart, Series};

/// What to run: the command's flags.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Users (rounds) per trial (at least 10).
    pub rounds: usize,
    /// Independent trials, averaged (at least 1).
    pub trials: usize,
    pub seed: u64,
    /// lambda of FairCo in the curves.
    pub lambda: f64,
    /// lambda of the bounded controller in the curves.
    pub bounded_lambda: f64,
    /// lambdas of the sweep.
    pub lambdas: Vec<f64>,
    /// The CI preset: 1,000 rounds, 2 trials (`rounds` and `trials` ignored).
    pub quick: bool,
}

/// One SVG plot of the report.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Its file name, which fairco.md links to.
    pub file: &'static str,
    pub svg: String,
}

/// The report: fairco.md and its plots.
#[derive(Debug, Clone)]
pub struct NewsReport {
    pub markdown: String,
    pub plots: Vec<Plot>,
}

/// A chart of the report: the figure plotted of each checkpoint, against
/// log10 of the round.
struct Chart<'a> {
    file: &'static str,
    title: &'a str,
    y_label: &'a str,
    curves: &'a [Curve],
    pick: fn(&Checkpoint) -> f64,
    /// Plot log10 of the figure.
    log_y: bool,
}

/// Run the curves and the sweep, with known and with learnt relevance, and
/// write the report; `progress` hears when each is done.
pub fn news_report(o: &ReportOptions, progress: &dyn Fn(&str)) -> NewsReport {
    let known = news_options(o);
    let learnt = NewsOptions {
        known_relevance: false,
        ..known.clone()
    };
    let controllers = controllers(o);
    let main = news_experiment(&controllers, &known);
    let main_ips = news_experiment(&controllers, &learnt);
    progress(&format!(
        "curves done ({} rounds x {} trials)",
        known.rounds, known.trials
    ));
    let sweep_policies = sweep_policies(&o.lambdas);
    let sweep = news_experiment(&sweep_policies, &known);
    let sweep_ips = news_experiment(&sweep_policies, &learnt);
    progress("sweep done");
    let unfairness = |p: &Checkpoint| p.unfairness_exposure;
    let charts = [
        Chart {
            file: "fairco-unfairness.svg",
            title: "News experiment, known relevance: exposure unfairness",
            y_label: "log10(unfairness D_tau)",
            curves: &main,
            pick: unfairness,
            log_y: true,
        },
        Chart {
            file: "fairco-utility.svg",
            title: "News experiment, known relevance: mean NDCG",
            y_label: "NDCG (mean over rounds 1..tau)",
            curves: &main,
            pick: |p| p.ndcg,
            log_y: false,
        },
        Chart {
            file: "fairco-unfairness-ips.svg",
            title: "News experiment, relevance learnt by IPS: exposure unfairness",
            y_label: "log10(unfairness D_tau)",
            curves: &main_ips,
            pick: unfairness,
            log_y: true,
        },
    ];
    let plots = charts.iter().map(plot).collect();
    let mut markdown = section(o.quick, &known, &main, &sweep, "known relevance");
    markdown.push_str(&section(
        o.quick,
        &learnt,
        &main_ips,
        &sweep_ips,
        "relevance learnt from clicks (IPS), as the reference code runs it",
    ));
    NewsReport { markdown, plots }
}

/// The experiment's options, known relevance: rounds, trials and seed,
/// with checkpoints at 1, 2 and 5 times each power of ten up to the last
/// round, and the last round.
pub fn news_options(o: &ReportOptions) -> NewsOptions {
    let (rounds, trials) = if o.quick {
        (1_000, 2)
    } else {
        (o.rounds.max(10), o.trials.max(1))
    };
    let mut checkpoints: Vec<usize> = [1usize, 2, 5]
        .iter()
        .flat_map(|m| (1..=6).map(move |e| m * 10usize.pow(e)))
        .filter(|t| *t <= rounds)
        .collect();
    checkpoints.push(rounds);
    checkpoints.sort_unstable();
    checkpoints.dedup();
    NewsOptions {
        rounds,
        trials,
        seed: o.seed,
        checkpoints,
        known_relevance: true,
    }
}

/// The controllers of the curves: relevance, FairCo's two forms at
/// `o.lambda` and the bounded controller at `o.bounded_lambda`.
fn controllers(o: &ReportOptions) -> Vec<(String, Policy)> {
    vec![
        ("relevance (lambda 0)".into(), Policy::Relevance),
        (
            format!("FairCo Fair-E, lambda {}", o.lambda),
            Policy::Fair {
                lambda: o.lambda,
                rounds: Rounds::Group,
            },
        ),
        (
            format!("FairCo Fair-I, lambda {}", o.lambda),
            Policy::FairImpact {
                lambda: o.lambda,
                rounds: Rounds::Group,
            },
        ),
        (
            format!("bounded, lambda {}", o.bounded_lambda),
            Policy::FairBounded {
                lambda: o.bounded_lambda,
            },
        ),
    ]
}

/// The sweep: each controller at each of `lambdas`.
fn sweep_policies(lambdas: &[f64]) -> Vec<(String, Policy)> {
    let mut policies = Vec::new();
    for &l in lambdas {
        policies.push((
            format!("fair {l}"),
            Policy::Fair {
                lambda: l,
                rounds: Rounds::Group,
            },
        ));
        policies.push((
            format!("fair_impact {l}"),
            Policy::FairImpact {
                lambda: l,
                rounds: Rounds::Group,
            },
        ));
        policies.push((
            format!("fair_bounded {l}"),
            Policy::FairBounded { lambda: l },
        ));
    }
    policies
}

/// A chart's SVG.
fn plot(c: &Chart) -> Plot {
    let series: Vec<Series> = c
        .curves
        .iter()
        .map(|curve| Series {
            name: curve.label.clone(),
            points: curve
                .points
                .iter()
                .map(|p| {
                    let y = (c.pick)(p);
                    let y = if c.log_y { y.max(1e-6).log10() } else { y };
                    ((p.tau as f64).log10(), y)
                })
                .collect(),
        })
        .collect();
    Plot {
        file: c.file,
        svg: line_chart(c.title, "log10(tau)", c.y_label, &series, true),
    }
}

/// The report's part for `o` (known relevance first, with the title; then
/// learnt); `quick` says whether the command ran with `--quick`.
fn section(quick: bool, o: &NewsOptions, main: &[Curve], sweep: &[Curve], what: &str) -> String {
    let mut s = String::new();
    if !o.known_relevance {
        let _ = writeln!(
            s,
            "\n# The same with {what}\n\n![unfairness](fairco-unfairness-ips.svg)\n"
        );
        return s + &tables(o, main, sweep);
    }
    let _ = writeln!(
        s,
        "# FairCo's news experiment, with hubsearch's policies\n\n\
         Generated by `hubsearch fairco{}` ({} rounds x {} trials, seed {}). \
         The setting and the variants are defined in docs/ranking.md, Convergence: \
         30 items in two groups, position-biased users, relevance learnt from \
         clicks by inverse-propensity weighting. Unfairness `D_tau = |E(G0)/M(G0) - E(G1)/M(G1)|` \
         (exposure per unit of true merit, or clicks for the impact form); \
         NDCG is the mean over rounds 1..tau of each round's NDCG against the user's relevance.\n\n\
         First with {what}, then with relevance learnt from clicks.\n\n\
         ![unfairness](fairco-unfairness.svg) ![utility](fairco-utility.svg)\n",
        if quick { " --quick" } else { "" },
        o.rounds,
        o.trials,
        o.seed
    );
    s + &tables(o, main, sweep)
}

/// The tables: each controller at tau = 10, 100, ... and the sweep at the
/// last round.
fn tables(o: &NewsOptions, main: &[Curve], sweep: &[Curve]) -> String {
    let mut s = String::new();
    let taus: Vec<usize> = [10, 100, 1_000, 10_000]
        .into_iter()
        .filter(|t| o.checkpoints.contains(t))
        .collect();
    let _ = writeln!(s, "## Exposure unfairness and NDCG at tau\n");
    let mut head = "| controller |".to_string();
    let mut rule = "|---|".to_string();
    for t in &taus {
        let _ = write!(head, " D_tau at {t} | NDCG at {t} |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for c in main {
        let mut row = format!("| {} |", c.label);
        for t in &taus {
            if let Some(p) = c.points.iter().find(|p| p.tau == *t) {
                let _ = write!(row, " {:.5} | {:.4} |", p.unfairness_exposure, p.ndcg);
            }
        }
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(
        s,
        "\nImpact unfairness (clicks per unit of merit) at the last round: {}\n",
        main.iter()
            .map(|c| format!(
                "{} {:.5}",
                c.label,
                c.points.last().map_or(f64::NAN, |p| p.unfairness_impact)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        s,
        "## lambda sweep at tau = {}\n\n| policy | lambda | D_tau exposure | D_tau impact | NDCG |\n|---|---:|---:|---:|---:|",
        o.rounds
    );
    for c in sweep {
        let p = c.points.last().copied();
        let lambda = c.policy.params().first().map_or(0.0, |(_, v)| *v);
        if let Some(p) = p {
            let _ = writeln!(
                s,
                "| {} | {} | {:.5} | {:.5} | {:.4} |",
                c.policy.name(),
                lambda,
                p.unfairness_exposure,
                p.unfairness_impact,
                p.ndcg
            );
        }
    }
    s
}
