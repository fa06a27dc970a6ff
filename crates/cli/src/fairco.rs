//! `hubsearch fairco`: FairCo's synthetic news experiment (docs/ranking.md,
//! Convergence), written as a Markdown report with SVG plots.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::Rounds;
use hubsearch_rank::Policy;
use hubsearch_sim::fairco::{news_experiment, Checkpoint, Curve, NewsOptions};
use hubsearch_sim::svg::{line_chart, Series};

use crate::cli::AnyError;

#[derive(Args, Debug)]
pub struct FaircoArgs {
    /// Directory for fairco.md, fairco-unfairness.svg and fairco-utility.svg
    #[arg(long, default_value = "eval/reports")]
    pub out: PathBuf,
    /// Users (rounds) per trial
    #[arg(long, default_value_t = 10_000)]
    pub rounds: usize,
    /// Independent trials, averaged
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Random seed
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// lambda of FairCo in the curves (the reference code's default)
    #[arg(long, default_value_t = 0.01)]
    pub lambda: f64,
    /// lambda of the bounded controller in the curves
    #[arg(long, default_value_t = 1.0)]
    pub bounded_lambda: f64,
    /// lambdas of the sweep, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.0001,0.001,0.01,0.1,1,10"
    )]
    pub lambdas: Vec<f64>,
    /// 1,000 rounds, 2 trials (CI)
    #[arg(long)]
    pub quick: bool,
}

/// A chart: file, title, y label, curves, the figure plotted, log scale.
type Chart<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [Curve],
    fn(&Checkpoint) -> f64,
    bool,
);

pub fn run(a: FaircoArgs) -> Result<ExitCode, AnyError> {
    let (rounds, trials) = if a.quick {
        (1_000, 2)
    } else {
        (a.rounds.max(10), a.trials.max(1))
    };
    let mut checkpoints: Vec<usize> = [1usize, 2, 5]
        .iter()
        .flat_map(|m| (1..=6).map(move |e| m * 10usize.pow(e)))
        .filter(|t| *t <= rounds)
        .collect();
    checkpoints.push(rounds);
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let known = NewsOptions {
        rounds,
        trials,
        seed: a.seed,
        checkpoints,
        known_relevance: true,
    };
    let learnt = NewsOptions {
        known_relevance: false,
        ..known.clone()
    };
    let start = std::time::Instant::now();
    let controllers = vec![
        ("relevance (lambda 0)".into(), Policy::Relevance),
        (
            format!("FairCo Fair-E, lambda {}", a.lambda),
            Policy::Fair {
                lambda: a.lambda,
                rounds: Rounds::Group,
            },
        ),
        (
            format!("FairCo Fair-I, lambda {}", a.lambda),
            Policy::FairImpact {
                lambda: a.lambda,
                rounds: Rounds::Group,
            },
        ),
        (
            format!("bounded, lambda {}", a.bounded_lambda),
            Policy::FairBounded {
                lambda: a.bounded_lambda,
            },
        ),
    ];
    let main = news_experiment(&controllers, &known);
    let main_ips = news_experiment(&controllers, &learnt);
    eprintln!(
        "[{:>6.1}s] curves done ({rounds} rounds x {trials} trials)",
        start.elapsed().as_secs_f64()
    );
    let mut sweep_policies = Vec::new();
    for &l in &a.lambdas {
        sweep_policies.push((
            format!("fair {l}"),
            Policy::Fair {
                lambda: l,
                rounds: Rounds::Group,
            },
        ));
        sweep_policies.push((
            format!("fair_impact {l}"),
            Policy::FairImpact {
                lambda: l,
                rounds: Rounds::Group,
            },
        ));
        sweep_policies.push((
            format!("fair_bounded {l}"),
            Policy::FairBounded { lambda: l },
        ));
    }
    let sweep = news_experiment(&sweep_policies, &known);
    let sweep_ips = news_experiment(&sweep_policies, &learnt);
    eprintln!("[{:>6.1}s] sweep done", start.elapsed().as_secs_f64());

    std::fs::create_dir_all(&a.out)?;
    let log_series =
        |curves: &[Curve], pick: fn(&hubsearch_sim::fairco::Checkpoint) -> f64, log_y: bool| {
            curves
                .iter()
                .map(|c| Series {
                    name: c.label.clone(),
                    points: c
                        .points
                        .iter()
                        .map(|p| {
                            let y = pick(p);
                            let y = if log_y { y.max(1e-6).log10() } else { y };
                            ((p.tau as f64).log10(), y)
                        })
                        .collect(),
                })
                .collect::<Vec<_>>()
        };
    let unfairness = |p: &Checkpoint| p.unfairness_exposure;
    let charts: [Chart; 3] = [
        (
            "fairco-unfairness.svg",
            "News experiment, known relevance: exposure unfairness",
            "log10(unfairness D_tau)",
            &main,
            unfairness,
            true,
        ),
        (
            "fairco-utility.svg",
            "News experiment, known relevance: mean NDCG",
            "NDCG (mean over rounds 1..tau)",
            &main,
            |p| p.ndcg,
            false,
        ),
        (
            "fairco-unfairness-ips.svg",
            "News experiment, relevance learnt by IPS: exposure unfairness",
            "log10(unfairness D_tau)",
            &main_ips,
            unfairness,
            true,
        ),
    ];
    for (file, title, y_label, curves, pick, log_y) in charts {
        let svg = line_chart(
            title,
            "log10(tau)",
            y_label,
            &log_series(curves, pick, log_y),
            true,
        );
        std::fs::write(a.out.join(file), svg)?;
    }
    let mut md = report(&a, &known, &main, &sweep, "known relevance");
    md.push_str(&report(
        &a,
        &learnt,
        &main_ips,
        &sweep_ips,
        "relevance learnt from clicks (IPS), as the reference code runs it",
    ));
    std::fs::write(a.out.join("fairco.md"), &md)?;
    print!("{md}");
    Ok(ExitCode::SUCCESS)
}

fn report(a: &FaircoArgs, o: &NewsOptions, main: &[Curve], sweep: &[Curve], what: &str) -> String {
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
        if a.quick { " --quick" } else { "" },
        o.rounds,
        o.trials,
        o.seed
    );
    s + &tables(o, main, sweep)
}

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
