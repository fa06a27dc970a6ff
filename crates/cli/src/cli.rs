//! Commands and their flags.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hubsearch_core::{Config, FacetFilter, Filter, Mode, SearchRequest};
use hubsearch_engine::{Engine, ImportReport, LedgerMode};
use hubsearch_sim::HubGenerator;

use crate::progress::Bars;

/// The error of a cluster-mode command in a build without the cluster client.
#[cfg(not(feature = "cluster"))]
pub(crate) const NO_CLUSTER: &str = "cluster.enabled is set, but this hubsearch was built without the cluster client: build it with `cargo build --release -p hubsearch --features cluster` (scripts/cluster does)";

/// Any error, shown as one line.
pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// The checkout's short git revision, for reports ("unknown" outside git).
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// hubsearch: search and ranking for AI model hubs, with exposure fairness.
#[derive(Parser, Debug)]
#[command(name = "hubsearch", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Index directory [default: index/default, or index.dir from the config]
    #[arg(long, global = true, env = "HUBSEARCH_INDEX", value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// TOML config file (see config/hubsearch.toml for every key)
    #[arg(long, global = true, env = "HUBSEARCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a synthetic hub of N cards (JSONL), deterministic for a seed
    Generate {
        /// Number of model cards
        #[arg(long, default_value_t = 10_000)]
        models: usize,
        /// Random seed: the same seed gives the same hub
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output file [default: standard output]
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Add or update cards from JSONL (.gz too), JSON, or directories of Markdown cards
    Import(ImportArgs),
    /// Build a fresh index from files, replacing the existing one atomically
    Index(ImportArgs),
    /// Search the index
    Search(SearchArgs),
    /// Counts, facet values and popularity concentration of the indexed hub
    Stats {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Measure indexing throughput and query latency (build with --release)
    Bench(crate::bench::BenchArgs),
    /// Serve the HTTP API and the search page
    Serve(crate::serve::ServeArgs),
    /// Cluster mode: a consistent point-in-time backup of the cluster's
    /// state (a snapshot at the log's end), to seed a new cluster from
    Backup(crate::backup::BackupArgs),
    /// The exposure ledger: export its page log and paid calls
    #[command(subcommand)]
    Ledger(crate::ledger::LedgerCommand),
    /// Off-policy estimates (IPS, SNIPS, doubly robust) of a target policy's
    /// calls per page from a ledger export, or their coverage on simulated logs
    Ope(crate::ope::OpeArgs),
    /// Group reports from a ledger export: exposure and paid calls against
    /// merit per builder, popularity tier or model age, amortized over time
    /// and per query, FairCo's disparities, group expected exposure; writes
    /// report.md, groups.json and SVG plots
    Groups(crate::groups::GroupsArgs),
    /// Manage API keys
    #[command(subcommand)]
    Keys(crate::serve::KeysCommand),
    /// Score judged queries (nDCG@10, nDCG@100, MRR@10, Recall@100), or an external run
    Eval(crate::eval::EvalArgs),
    /// Fit merit's calibrated model (the probability a card satisfies the
    /// query) on judged sets, cross-fitted, and print the config constants
    Calibrate(crate::calibrate::CalibrateArgs),
    /// The long run: a million pages or more of mixed real-corpus traffic
    /// under each policy, nDCG@10, EE-L and tail share over time
    Longrun(crate::longrun::LongRunArgs),
    /// Reproduce FairCo's synthetic news experiment: unfairness and utility
    /// over rounds for FairCo and the bounded controller, with a lambda sweep
    Fairco(crate::fairco::FaircoArgs),
    /// The pay-per-call study: does per-call income sustain the long tail,
    /// under which policy, hosting, traffic? Writes REPORT.md with CIs
    Study(crate::study::StudyArgs),
    /// Write the indexed cards, their vectors and embedded queries as plain files
    Export(crate::export::ExportArgs),
    /// Check a hub's call log: signed head, receipts' inclusion, consistency
    /// with saved heads, a builder's income audit; --monitor keeps watching
    Verify(crate::verify::VerifyArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Files or directories to read
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Cards per commit (a crash loses at most one batch)
    #[arg(long)]
    pub commit_every: Option<usize>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Do not draw a progress bar
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query; empty lists the hub
    #[arg(default_value = "")]
    pub query: String,
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long)]
    pub library: Option<String>,
    /// Language code, e.g. de
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub license: Option<String>,
    /// Builder (author)
    #[arg(long)]
    pub builder: Option<String>,
    /// Lowest price per call, USD
    #[arg(long)]
    pub min_price: Option<f64>,
    /// Highest price per call, USD
    #[arg(long)]
    pub max_price: Option<f64>,
    /// Retrieval mode: text, vector or hybrid [default: search.default_mode]
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Results to show
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
    /// Skip this many results
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Print JSON (with every score part)
    #[arg(long)]
    pub json: bool,
}

/// The config after file, environment and the global flags.
pub fn load_config(g: &Global) -> Result<Config, AnyError> {
    let mut config = Config::load(g.config.as_deref())?;
    if let Some(dir) = &g.index {
        config.index.dir = dir.clone();
    }
    Ok(config)
}

pub fn run(cli: Cli) -> Result<ExitCode, AnyError> {
    let g = cli.global;
    match cli.command {
        Command::Generate { models, seed, out } => {
            let sink: Box<dyn Write> = match &out {
                Some(p) => {
                    Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut w = BufWriter::new(sink);
            for card in HubGenerator::new(models, seed) {
                serde_json::to_writer(&mut w, &card)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            if let Some(p) = out {
                eprintln!("wrote {models} cards (seed {seed}) to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => {
            let mut config = load_config(&g)?;
            if let Some(n) = args.commit_every {
                config.index.commit_every = n.max(1);
            }
            #[cfg(not(feature = "cluster"))]
            if config.cluster.enabled {
                return Err(NO_CLUSTER.into());
            }
            #[cfg(feature = "cluster")]
            if config.cluster.enabled {
                // Cluster mode: the cards go to the log; every replica
                // applies them (docs/cluster.md).
                let bars = Bars::new(args.quiet);
                let report =
                    hubsearch_cluster::import_to_log(&config.cluster, &args.files, &|n| {
                        bars.show(hubsearch_engine::Progress::Records { read: n })
                    })?;
                for (place, reason) in &report.rejected {
                    eprintln!("rejected {place}: {reason}");
                }
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!(
                        "appended {} cards to the cluster log ({} already there, {} records rejected)",
                        report.appended,
                        report.duplicates,
                        report.rejected.len()
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let engine = Engine::open_or_create(config)?;
            let bars = Bars::new(args.quiet);
            let report = engine.import(&args.files, &|p| bars.show(p))?;
            print_report(&report, args.json, engine.dir())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Index(args) => {
            let mut config = load_config(&g)?;
            if let Some(n) = args.commit_every {
                config.index.commit_every = n.max(1);
            }
            let dir = config.index.dir.clone();
            let bars = Bars::new(args.quiet);
            let report = Engine::rebuild(config, &args.files, &|p| bars.show(p))?;
            print_report(&report, args.json, &dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search(args) => search(&g, args),
        Command::Stats { json } => stats(&g, json),
        Command::Bench(args) => crate::bench::run(&g, args),
        Command::Eval(args) => crate::eval::run(&g, args),
        Command::Export(args) => crate::export::run(&g, args),
        Command::Serve(args) => crate::serve::serve(&g, args),
        Command::Backup(args) => crate::backup::run(&g, args),
        Command::Calibrate(args) => crate::calibrate::run(&g, args),
        Command::Longrun(args) => crate::longrun::run(&g, args),
        Command::Fairco(args) => crate::fairco::run(args),
        Command::Study(args) => crate::study::run(&g, args),
        Command::Keys(cmd) => crate::serve::keys(&g, cmd),
        Command::Ledger(cmd) => crate::ledger::run(&g, cmd),
        Command::Ope(args) => crate::ope::run(args),
        Command::Groups(args) => crate::groups::run(&g, args),
        Command::Verify(args) => crate::verify::run(args),
    }
}

fn print_report(r: &ImportReport, json: bool, dir: &std::path::Path) -> Result<(), AnyError> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    for d in &r.replaced_in_run {
        eprintln!("duplicate id {}: {} replaces {}", d.id, d.later, d.earlier);
    }
    let rate = (r.cards.imported + r.cards.updated) as f64 / r.seconds.max(1e-9);
    println!(
        "imported {} new, updated {}, unchanged {}, rejected {} of {} records in {:.2}s ({:.0} cards/s, {} commits); {} cards in {}",
        r.cards.imported,
        r.cards.updated,
        r.cards.unchanged,
        r.rejected.len(),
        r.cards.records,
        r.seconds,
        rate,
        r.commits,
        r.total_cards,
        dir.display()
    );
    if let Some(v) = &r.vectors {
        println!(
            "vectors: embedded {} cards in {:.1}s ({:.0} cards/s), {} unchanged; of the time: reading cards {:.1}s, embedding {:.1}s, HNSW graph + save {:.1}s",
            v.embedded, v.seconds, v.cards_per_second, v.reused, v.read_seconds, v.embed_seconds, v.graph_seconds
        );
    }
    Ok(())
}

fn search(g: &Global, a: SearchArgs) -> Result<ExitCode, AnyError> {
    let config = load_config(g)?;
    let limit = a.limit.unwrap_or(config.search.default_limit);
    // A one-off CLI search is not a page served to a hub's users: it reads
    // the index only, and works while a server holds the ledger.
    let engine = Engine::open_with(config, LedgerMode::Ephemeral, false)?;
    let req = SearchRequest {
        query: a.query,
        filter: Filter {
            task: a.task.map(FacetFilter::is).unwrap_or_default(),
            library: a.library.map(FacetFilter::is).unwrap_or_default(),
            language: a.language.map(FacetFilter::is).unwrap_or_default(),
            license: a.license.map(FacetFilter::is).unwrap_or_default(),
            builder: a.builder.map(FacetFilter::is).unwrap_or_default(),
            price: hubsearch_core::Range {
                min: a.min_price,
                max: a.max_price,
            },
            ..Default::default()
        },
        mode: a.mode.unwrap_or_else(|| engine.default_mode()),
        policy: None,
        seed: None,
        semantic_ratio: None,
        offset: a.offset,
        limit,
        facets: a.json,
        record: false,
        exposed: None,
        abandoned: None,
    };
    let depth = engine.depth(&req);
    let resp = engine.search(&req)?;
    if a.json {
        // The HTTP API's page (`GET /v1/search`), with every score part.
        let end = depth.map_or(resp.total, |d| resp.total.min(d));
        let page = hubsearch_server::SearchPage::new(
            resp,
            a.offset / limit + 1,
            limit,
            a.offset,
            end,
            true,
        );
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for h in &resp.hits {
        let c = &h.card;
        writeln!(
            out,
            "{:>3}. {}  [{}] {} downloads, {}  score {:.3}",
            h.rank,
            c.id,
            c.task.as_deref().unwrap_or("-"),
            c.downloads,
            c.price_label(),
            h.score
        )?;
        if !c.description.is_empty() {
            let d: String = c.description.chars().take(110).collect();
            writeln!(out, "     {d}")?;
        }
    }
    writeln!(
        out,
        "{} of {} matches, {:.2} ms",
        resp.hits.len(),
        resp.total,
        resp.took_ms
    )?;
    Ok(ExitCode::SUCCESS)
}

fn stats(g: &Global, json: bool) -> Result<ExitCode, AnyError> {
    let engine = Engine::open_with(load_config(g)?, LedgerMode::Ephemeral, false)?;
    let s = engine.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("models        {}", s.models);
    println!("builders      {}", s.builders);
    println!("priced        {}", s.priced_models);
    println!(
        "index size    {:.1} MiB",
        s.index_bytes as f64 / (1 << 20) as f64
    );
    let d = &s.downloads;
    println!(
        "downloads     total {:.0}, Gini {:.3}, top 1% of models hold {:.1}%, {:.1}% have none",
        d.total,
        d.gini,
        100.0 * d.top_1pct_share,
        100.0 * d.zero_share
    );
    let b = &s.downloads_by_builder;
    println!(
        "by builder    Gini {:.3}, top 1% of builders hold {:.1}%",
        b.gini,
        100.0 * b.top_1pct_share
    );
    for (facet, values) in &s.facets {
        let v: Vec<String> = values
            .iter()
            .take(8)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!("{facet:<13} {}", v.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
