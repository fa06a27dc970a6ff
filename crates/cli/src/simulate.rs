//! `hubsearch simulate`: the marketplace simulator, with a JSON file, a
//! Markdown report and SVG plots.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hubsearch_core::{Mode, PolicyKind};
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_eval::simulate::{simulate, SimOptions, Simulation};
use hubsearch_eval::svg::{line_chart, Series};
use hubsearch_eval::trec;

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// User visits per policy
    #[arg(long, default_value_t = 100_000)]
    pub visits: usize,
    /// Random seed (queries, users, prices): the same seed, the same run
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Policies to compare, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relevance,popularity,tail_boost,fair,stochastic"
    )]
    pub policies: Vec<PolicyKind>,
    /// Rounds the figures are reported over
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Judged queries to mix in (qid<TAB>text) [default: none]
    #[arg(long, value_name = "FILE", requires = "qrels")]
    pub queries: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub qrels: Option<PathBuf>,
    /// Builder income over the run that counts as sustainable, USD
    #[arg(long, default_value_t = 0.10)]
    pub sustainable_usd: f64,
    /// lambdas of the fair (FairCo) sweep, comma-separated ("" = no sweep)
    #[arg(long, default_value = "0,0.001,0.003,0.01,0.03,0.1")]
    pub lambdas: String,
    /// Retrieval mode
    #[arg(long, default_value = "text")]
    pub mode: Mode,
    /// Output directory
    #[arg(long, default_value = "eval/simulations/latest")]
    pub out: PathBuf,
}

pub fn run(g: &Global, a: SimulateArgs) -> Result<ExitCode, AnyError> {
    let config = load_config(g)?;
    let engine = Engine::open_with(config.clone(), LedgerMode::Ephemeral, false)?;
    let (queries, qrels) = match (&a.queries, &a.qrels) {
        (Some(q), Some(r)) => (trec::read_queries(q)?, trec::read_qrels(r)?),
        _ => (Vec::new(), Default::default()),
    };
    let lambdas: Vec<f64> = a
        .lambdas
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("bad lambda {s:?}"))
        })
        .collect::<Result<_, _>>()?;
    let o = SimOptions {
        visits: a.visits,
        rounds: a.rounds.max(1),
        seed: a.seed,
        policies: a.policies.clone(),
        sustainable_usd: a.sustainable_usd,
        lambdas,
        alpha: config.ranking.alpha,
        beta: config.ranking.beta,
        temperature: config.ranking.temperature,
        impact: config.ranking.impact,
        judged_share: if queries.is_empty() { 0.0 } else { 0.2 },
        mode: a.mode,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let sim = simulate(&engine, &queries, &qrels, &o, &|m| {
        eprintln!("[{:>6.1}s] {m}", start.elapsed().as_secs_f64())
    })?;
    std::fs::create_dir_all(&a.out)?;
    let rev = crate::cli::git_revision();
    let doc = serde_json::json!({
        "git_revision": rev,
        "index": config.index.dir,
        "seconds": start.elapsed().as_secs_f64(),
        "simulation": sim,
        "lorenz_income": sim.runs.iter().map(|r| (r.policy.to_string(), r.lorenz_income.clone())).collect::<Vec<_>>(),
        "lorenz_exposure": sim.runs.iter().map(|r| (r.policy.to_string(), r.lorenz_exposure.clone())).collect::<Vec<_>>(),
    });
    std::fs::write(
        a.out.join("simulation.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    write_plots(&sim, &a.out)?;
    std::fs::write(
        a.out.join("report.md"),
        report(&sim, &rev, &config.index.dir),
    )?;
    print!("{}", table(&sim));
    eprintln!(
        "wrote {}/{{simulation.json,report.md,*.svg}}",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn table(sim: &Simulation) -> String {
    let mut s = String::from("| policy | nDCG@10 | exposure Gini (models) | income Gini (builders) | top-1% share of calls | builders above threshold | calls to relevant per visit |\n|---|---|---|---|---|---|---|\n");
    for r in &sim.runs {
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} |\n",
            r.policy,
            r.ndcg10,
            r.exposure_gini_models,
            r.income_gini_builders,
            r.top1pct_call_share,
            r.sustainable_builder_share,
            r.utility
        ));
    }
    s
}

fn report(sim: &Simulation, rev: &str, index: &std::path::Path) -> String {
    let o = &sim.options;
    let mut s = format!(
        "# Marketplace simulation\n\nIndex `{}` ({} models, {} builders), {} distinct queries; {} visits per policy in {} rounds; seed {}; git {}.\n\
Users look at rank j with the attention model's weight, call a looked-at model with probability {:?} by grade 0/1/2, and pay its price \
({:.0}% free, else log-normal around ${} per call, sigma {}). Calls feed popularity (downloads + calls) for the next visit. \
A builder is sustainable with at least ${:.2} income over the run.\n\n",
        index.display(),
        sim.models,
        sim.builders,
        sim.distinct_queries,
        o.visits,
        o.rounds,
        o.seed,
        rev,
        o.call_probability,
        o.free_share * 100.0,
        o.median_price_usd,
        o.price_sigma,
        o.sustainable_usd
    );
    s.push_str(&table(sim));
    s.push_str("\n## The fair lambda sweep\n\n| lambda | nDCG@10 | exposure Gini (models) | income Gini (builders) | builders above threshold |\n|---|---|---|---|---|\n");
    for r in &sim.sweep {
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            r.lambda.unwrap_or(0.0),
            r.ndcg10,
            r.exposure_gini_models,
            r.income_gini_builders,
            r.sustainable_builder_share
        ));
    }
    s.push_str("\nPlots: `lorenz_income.svg`, `lorenz_exposure.svg`, `rounds_income_gini.svg`, `rounds_sustainable.svg`, `frontier.svg`.\n");
    s
}

fn write_plots(sim: &Simulation, out: &std::path::Path) -> Result<(), AnyError> {
    let series =
        |f: &dyn Fn(&hubsearch_eval::simulate::PolicyRun) -> Vec<(f64, f64)>| -> Vec<Series> {
            sim.runs
                .iter()
                .map(|r| Series {
                    name: r.policy.to_string(),
                    points: f(r),
                })
                .collect()
        };
    let equality = Series {
        name: "equality".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
    };
    for (file, of, lorenz) in [
        (
            "lorenz_income.svg",
            "income",
            series(&|r| r.lorenz_income.clone()),
        ),
        (
            "lorenz_exposure.svg",
            "exposure",
            series(&|r| r.lorenz_exposure.clone()),
        ),
    ] {
        let mut lorenz = lorenz;
        lorenz.push(equality.clone());
        let title = format!("Lorenz curve of builder {of}");
        let chart = line_chart(
            &title,
            "share of builders",
            &format!("share of {of}"),
            &lorenz,
            false,
        );
        std::fs::write(out.join(file), chart)?;
    }
    type Figure = fn(&hubsearch_eval::simulate::RoundFigures) -> f64;
    let by_round: [(&str, &str, &str, Figure); 2] = [
        (
            "rounds_income_gini.svg",
            "Income Gini over builders, by round",
            "income Gini",
            |x| x.income_gini_builders,
        ),
        (
            "rounds_sustainable.svg",
            "Share of builders above the income threshold",
            "share of builders",
            |x| x.sustainable_builder_share,
        ),
    ];
    for (file, title, y, figure) in by_round {
        let s = series(&|r| {
            r.rounds
                .iter()
                .map(|x| (x.visits as f64, figure(x)))
                .collect()
        });
        std::fs::write(out.join(file), line_chart(title, "visits", y, &s, true))?;
    }
    if !sim.sweep.is_empty() {
        let pts: Vec<(f64, f64)> = sim
            .sweep
            .iter()
            .map(|r| (r.exposure_gini_models, r.ndcg10))
            .collect();
        std::fs::write(
            out.join("frontier.svg"),
            line_chart(
                "fair: nDCG@10 against exposure Gini (lambda sweep)",
                "exposure Gini over models",
                "nDCG@10",
                &[Series {
                    name: "fair, lambda 0 -> max".into(),
                    points: pts,
                }],
                true,
            ),
        )?;
    }
    Ok(())
}
