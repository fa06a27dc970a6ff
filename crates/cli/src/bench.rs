//! `hubsearch bench`: index build throughput and query latency, measured on
//! this machine (build with `--release`).

use hubsearch_engine::progress::silent;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use hubsearch_core::Mode;
use hubsearch_core::SearchRequest;
use hubsearch_engine::semantic::Semantic;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_sim::HubGenerator;
use serde::Serialize;
use serde_json::json;

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Card files to index [default: a generated hub of --models cards]
    #[arg(long, value_name = "FILE")]
    pub corpus: Vec<PathBuf>,
    /// Size of the generated hub when no --corpus is given
    #[arg(long, default_value_t = 30_000)]
    pub models: usize,
    /// Queries, `qid<TAB>text` per line [default: a built-in set]
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
    /// Times each query is run
    #[arg(long, default_value_t = 50)]
    pub repeat: usize,
    /// Results per query
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Also write the figures as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure the existing index (--index) instead of building one; adds
    /// vector and hybrid search, query embedding and start-up figures
    #[arg(long)]
    pub existing: bool,
    /// Concurrent clients for the throughput figures of --existing
    /// [default: one per core]
    #[arg(long)]
    pub clients: Option<usize>,
    /// Seconds each throughput run lasts (--existing)
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Record every served page's exposure (in an in-memory ledger), as a
    /// serving hub does (--existing)
    #[arg(long)]
    pub record: bool,
}

#[derive(Serialize)]
struct Figures {
    cores: usize,
    cards: u64,
    build_seconds: f64,
    cards_per_second: f64,
    index_bytes: u64,
    queries: usize,
    searches: usize,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    single_thread_qps: f64,
}

const DEFAULT_QUERIES: &[&str] = &[
    "german speech recognition",
    "spanish sentiment analysis",
    "english to french translation",
    "named entity recognition biomedical",
    "question answering squad",
    "news summarization",
    "sentence embeddings for semantic search",
    "image classification imagenet",
    "text to speech english",
    "chinese bert",
];

pub fn run(g: &Global, a: BenchArgs) -> Result<ExitCode, AnyError> {
    if a.existing {
        return existing(g, &a);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use cargo run --release.");
    }
    let tmp = tempfile::tempdir()?;
    let corpus = if a.corpus.is_empty() {
        let p = tmp.path().join("hub.jsonl");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&p)?);
        for c in HubGenerator::new(a.models, 42) {
            serde_json::to_writer(&mut w, &c)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        vec![p]
    } else {
        a.corpus.clone()
    };
    let mut config = load_config(g)?;
    config.index.dir = tmp.path().join("index");
    let engine = Engine::open_or_create(config)?;
    eprintln!("building the index from {} file(s)...", corpus.len());
    let report = engine.import(&corpus, &silent)?;
    let written = report.cards.imported + report.cards.updated;
    let queries = read_queries(&a)?;
    if queries.is_empty() {
        return Err("no queries to run".into());
    }
    // Warm up caches.
    for q in &queries {
        engine.search(&SearchRequest::new(q.clone(), a.limit))?;
    }
    let mut lat = Vec::with_capacity(queries.len() * a.repeat);
    let t0 = Instant::now();
    for _ in 0..a.repeat {
        for q in &queries {
            let t = Instant::now();
            engine.search(&SearchRequest::new(q.clone(), a.limit))?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let f = Figures {
        cores,
        cards: report.total_cards,
        build_seconds: report.seconds,
        cards_per_second: written as f64 / report.seconds.max(1e-9),
        index_bytes: hubsearch_engine::dir_size(&tmp.path().join("index")),
        queries: queries.len(),
        searches: lat.len(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        mean_ms: lat.iter().sum::<f64>() / lat.len() as f64,
        single_thread_qps: lat.len() as f64 / wall,
    };
    println!("machine          {} cores", f.cores);
    println!(
        "index build      {} cards in {:.2}s = {:.0} cards/s; {:.1} MiB on disk",
        f.cards,
        f.build_seconds,
        f.cards_per_second,
        f.index_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "text query       p50 {:.3} ms, p99 {:.3} ms, mean {:.3} ms over {} searches ({} queries x {}); {:.0} queries/s on one thread",
        f.p50_ms, f.p99_ms, f.mean_ms, f.searches, f.queries, a.repeat, f.single_thread_qps
    );
    rank_bench();
    if !report.rejected.is_empty() {
        println!(
            "note             {} records were rejected while building",
            report.rejected.len()
        );
    }
    if let Some(p) = a.json {
        std::fs::write(&p, serde_json::to_string_pretty(&f)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn read_queries(a: &BenchArgs) -> Result<Vec<String>, AnyError> {
    Ok(match &a.queries {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(_, q)| q.trim().to_string()))
            .filter(|q| !q.is_empty())
            .collect(),
        None => DEFAULT_QUERIES.iter().map(|s| s.to_string()).collect(),
    })
}

fn pcts(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

/// Figures of an existing index: start-up, query embedding, HNSW recall,
/// search latency per mode with warm (cached) and cold query vectors,
/// throughput from concurrent clients, and the process's peak memory.
fn existing(g: &Global, a: &BenchArgs) -> Result<ExitCode, AnyError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = load_config(g)?;
    let index_dir = config.index.dir.clone();
    let t = Instant::now();
    let engine = Engine::open_with(config, LedgerMode::Ephemeral, false)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_open = peak_rss_bytes();
    let queries = read_queries(a)?;
    if queries.is_empty() {
        return Err("no queries to run".into());
    }
    let cards = engine.text_index().num_docs();
    let mut out = start_up_figures(a, &index_dir, cores, cards, open_ms, queries.len());
    if let Some(sem) = engine.semantic() {
        vector_figures(
            a,
            sem,
            &queries,
            engine.config().search.candidates,
            &mut out,
        )?;
    }
    let clients = a.clients.unwrap_or(cores).max(1);
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        if mode != Mode::Text && engine.semantic().is_none() {
            continue;
        }
        let name = format!("{mode:?}").to_lowercase();
        out[format!("{name}_search")] = mode_figures(a, &engine, &queries, mode, &name, clients)?;
    }
    out["facets"] = facet_figures(a, &engine, &queries)?;
    out["suggest"] = suggest_figures(a, &engine, &queries)?;
    memory_figures(rss_open, cards, &mut out);
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The machine, start-up time and text index size: printed, and the JSON
/// figures they start.
fn start_up_figures(
    a: &BenchArgs,
    index_dir: &Path,
    cores: usize,
    cards: u64,
    open_ms: f64,
    queries: usize,
) -> serde_json::Value {
    let text_bytes = hubsearch_engine::dir_size(&index_dir.join("text"));
    let out = json!({
        "cores": cores,
        "memory_bytes": total_memory_bytes(),
        "cards": cards,
        "queries": queries,
        "repeat": a.repeat,
        "start_up_ms": open_ms,
        "record_pages": a.record,
        "text_index_bytes": text_bytes,
    });
    println!("machine          {cores} cores");
    println!(
        "start-up         {open_ms:.0} ms to open {cards} cards (text index, vectors, HNSW graph: reloaded when saved, else built)"
    );
    println!(
        "text index       {:.1} MiB on disk = {:.0} bytes per card",
        text_bytes as f64 / (1 << 20) as f64,
        text_bytes as f64 / cards.max(1) as f64
    );
    out
}

/// The vector store's size, query embedding latency and HNSW latency and
/// recall, printed and added to `out`.
fn vector_figures(
    a: &BenchArgs,
    sem: &Semantic,
    queries: &[String],
    depth: usize,
    out: &mut serde_json::Value,
) -> Result<(), AnyError> {
    let v = sem.vectors();
    println!(
        "vectors          {} live, {:.1} MiB on disk = {:.0} bytes per card ({} floats = {} bytes of it)",
        v.live(),
        v.size_bytes() as f64 / (1 << 20) as f64,
        v.size_bytes() as f64 / v.live().max(1) as f64,
        v.dim(),
        v.dim() * 4
    );
    out["vector_bytes"] = json!(v.size_bytes());
    out["vectors"] = json!(v.live());
    out["dim"] = json!(v.dim());
    let embedder = sem.embedder()?;
    let mut lat = Vec::new();
    for rep in 0..a.repeat.min(10) {
        for q in queries {
            let text = format!("{q} {rep}");
            let t = Instant::now();
            embedder.embed(&[&text])?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (p50, p99) = pcts(lat);
    println!(
        "query embedding  p50 {p50:.2} ms, p99 {p99:.2} ms ({})",
        embedder.name()
    );
    out["embedder"] = json!(embedder.name());
    out["query_embedding"] = json!({"p50_ms": p50, "p99_ms": p99});
    out["hnsw_top10"] = hnsw_figures(a, sem, queries, depth)?;
    Ok(())
}

/// HNSW top-10 latency, and its recall against the exact top 10.
fn hnsw_figures(
    a: &BenchArgs,
    sem: &Semantic,
    queries: &[String],
    depth: usize,
) -> Result<serde_json::Value, AnyError> {
    let v = sem.vectors();
    let vectors = queries
        .iter()
        .map(|q| sem.query_vector(q))
        .collect::<Result<Vec<_>, _>>()?;
    // Round-robin over the queries, as the searches below are timed (the
    // same query repeated back to back finds the graph's nodes in cache and
    // would flatter the graph against the search path).
    let timed = |k: usize| {
        let mut lat = Vec::new();
        for _ in 0..a.repeat {
            for qv in &vectors {
                let t = Instant::now();
                std::hint::black_box(v.search(qv, k, None));
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        pcts(lat)
    };
    let (p50, p99) = timed(10);
    // Vector mode asks the graph for the whole candidate depth, not 10.
    let (d50, d99) = timed(depth);
    // Recall@10 against the exact top 10: of a top-10 search, and of the
    // first 10 of a search for the whole depth (what the search modes
    // serve: a deeper search explores more of the graph).
    let (mut found, mut found_deep, mut wanted) = (0usize, 0usize, 0usize);
    // ann-benchmarks' recall as well: a hit counts when it is at least as
    // near as the exact 10th (similarity >= the 10th's - 1e-3, its
    // epsilon), so a card whose vector ties one of the exact top 10 (the
    // corpus holds cards with identical texts) is not a miss.
    let (mut near, mut near_deep) = (0usize, 0usize);
    for qv in &vectors {
        let exact_hits = v.exact(qv, 10, None);
        let tenth = exact_hits
            .last()
            .map_or(f32::NEG_INFINITY, |h| h.similarity);
        let exact: std::collections::HashSet<hubsearch_core::ModelKey> =
            exact_hits.iter().map(|h| h.id_key).collect();
        let hits = |k: usize| {
            let got = v.search(qv, k, None);
            let first = &got[..got.len().min(10)];
            (
                first.iter().filter(|h| exact.contains(&h.id_key)).count(),
                first
                    .iter()
                    .filter(|h| h.similarity >= tenth - 1e-3)
                    .count(),
            )
        };
        wanted += exact.len();
        let (f, n) = hits(10);
        let (fd, nd) = hits(depth);
        found += f;
        near += n;
        found_deep += fd;
        near_deep += nd;
    }
    let recall = found as f64 / wanted.max(1) as f64;
    let recall_deep = found_deep as f64 / wanted.max(1) as f64;
    let by_distance = near as f64 / wanted.max(1) as f64;
    let by_distance_deep = near_deep as f64 / wanted.max(1) as f64;
    println!(
        "HNSW top-10      p50 {p50:.3} ms, p99 {p99:.3} ms, recall@10 {recall:.4} vs exact \
         ({by_distance:.4} by distance, ann-benchmarks)"
    );
    println!(
        "HNSW top-{depth:<7} p50 {d50:.3} ms, p99 {d99:.3} ms (vector mode's candidate depth), \
         recall@10 of its first 10 {recall_deep:.4} vs exact ({by_distance_deep:.4} by distance)"
    );
    Ok(json!({"p50_ms": p50, "p99_ms": p99, "recall_at_10": recall,
        "recall_at_10_by_distance": by_distance, "depth": depth, "depth_p50_ms": d50, "depth_p99_ms": d99,
        "depth_recall_at_10": recall_deep,
        "depth_recall_at_10_by_distance": by_distance_deep}))
}

/// One search mode's latency (warm, and cold for the vector modes) and
/// throughput from `clients` concurrent clients.
fn mode_figures(
    a: &BenchArgs,
    engine: &Engine,
    queries: &[String],
    mode: Mode,
    name: &str,
    clients: usize,
) -> Result<serde_json::Value, AnyError> {
    let request = |q: &str| {
        let mut req = SearchRequest::new(q.to_string(), a.limit);
        req.mode = mode;
        req.record = a.record;
        req
    };
    let mut warm = Vec::new();
    for rep in 0..a.repeat {
        for q in queries {
            let t = Instant::now();
            engine.search(&request(q))?;
            if rep > 0 {
                warm.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let (p50, p99) = pcts(warm);
    let mut fig = json!({"p50_ms": p50, "p99_ms": p99});
    let mut line = format!(
        "{:<16} p50 {p50:.3} ms, p99 {p99:.3} ms (query vector cached)",
        format!("{name} search")
    );
    if mode != Mode::Text {
        let mut cold = Vec::new();
        for rep in 0..a.repeat.min(5) {
            for q in queries {
                // A text no earlier loop embedded, so the query vector is computed.
                let t = Instant::now();
                engine.search(&request(&format!("{q} {name}{rep}")))?;
                cold.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let (c50, c99) = pcts(cold);
        line.push_str(&format!(
            "; p50 {c50:.2} ms, p99 {c99:.2} ms embedding the query"
        ));
        fig["embedding_query"] = json!({"p50_ms": c50, "p99_ms": c99});
    }
    println!("{line}");
    let total = throughput(engine, queries, &request, clients, a.seconds)?;
    let qps = total as f64 / a.seconds;
    println!(
        "{:<16} {qps:.0} searches/s from {clients} concurrent clients",
        ""
    );
    fig["throughput_qps"] = json!(qps);
    fig["clients"] = json!(clients);
    Ok(fig)
}

/// Throughput: `clients` threads searching the queries round-robin for
/// `seconds` (query vectors cached, as in a warm server). Returns the
/// searches done.
fn throughput(
    engine: &Engine,
    queries: &[String],
    request: &(impl Fn(&str) -> SearchRequest + Sync),
    clients: usize,
    seconds: f64,
) -> Result<usize, AnyError> {
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let done: Vec<Result<usize, AnyError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                sc.spawn(move || -> Result<usize, AnyError> {
                    let mut n = 0;
                    let mut i = c;
                    while Instant::now() < deadline {
                        engine.search(&request(&queries[i % queries.len()]))?;
                        i += clients;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a client panicked".into())))
            .collect()
    });
    let mut total = 0;
    for d in done {
        total += d?;
    }
    Ok(total)
}

/// Facet counts (docs/api.md, Disjunctive facets): the text search of
/// every query with and without exact counts and facets, and broad
/// requests (a one-word query, browsing) with a facet value selected.
/// `GET /v1/suggest` as a person types: every query's prefixes (a
/// character at a time, up to 16), 8 suggestions each, timed in the engine.
fn suggest_figures(
    a: &BenchArgs,
    engine: &Engine,
    queries: &[String],
) -> Result<serde_json::Value, AnyError> {
    let mut lat = Vec::new();
    for q in queries {
        let chars: Vec<char> = q.chars().collect();
        for n in 1..=chars.len().min(16) {
            let typed: String = chars[..n].iter().collect();
            for _ in 0..(a.repeat / 10).max(2) {
                let t = Instant::now();
                engine.suggest(&typed, 8)?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let calls = lat.len();
    let (p50, p99) = pcts(lat);
    println!("suggest (typing) p50 {p50:.3} ms, p99 {p99:.3} ms over {calls} calls (every prefix of every query)");
    Ok(json!({"p50_ms": p50, "p99_ms": p99, "calls": calls}))
}

fn facet_figures(
    a: &BenchArgs,
    engine: &Engine,
    queries: &[String],
) -> Result<serde_json::Value, AnyError> {
    let time_of = |req: &SearchRequest| -> Result<(f64, f64), AnyError> {
        let mut lat = Vec::new();
        for rep in 0..a.repeat.max(2) {
            let t = Instant::now();
            engine.search(req)?;
            if rep > 0 {
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(pcts(lat))
    };
    let mut facet_rows = Vec::new();
    let text_req = |q: &str, facets: bool| {
        let mut req = SearchRequest::new(q.to_string(), a.limit);
        req.mode = Mode::Text;
        req.record = a.record;
        req.facets = facets;
        req
    };
    let (mut plain, mut faceted) = (Vec::new(), Vec::new());
    for q in queries {
        plain.push(time_of(&text_req(q, false))?.0);
        faceted.push(time_of(&text_req(q, true))?.0);
    }
    let (p_plain, _) = pcts(plain);
    let (p_faceted, _) = pcts(faceted);
    facet_rows.push(("queries".to_string(), p_plain, p_faceted));
    let mut selected = text_req("model", true);
    selected.filter.task = hubsearch_core::FacetFilter::is("text-classification");
    let mut browse = text_req("", true);
    browse.filter.language = hubsearch_core::FacetFilter::is("en");
    for (name, req) in [
        ("\"model\" + task", selected),
        ("browse + language", browse),
    ] {
        let mut bare = req.clone();
        bare.facets = false;
        facet_rows.push((name.to_string(), time_of(&bare)?.0, time_of(&req)?.0));
    }
    let mut facet_json = Vec::new();
    for (name, bare, with) in facet_rows {
        println!(
            "facets           {name:<18} p50 {bare:.3} ms plain, {with:.3} ms with counts and disjunctive facets ({:.2}x)",
            with / bare.max(1e-9)
        );
        facet_json.push(json!({"requests": name, "plain_p50_ms": bare, "facets_p50_ms": with}));
    }
    Ok(json!(facet_json))
}

/// Peak memory after opening and after searching, and the resident set
/// now: printed and added to `out`.
fn memory_figures(rss_open: Option<u64>, cards: u64, out: &mut serde_json::Value) {
    let rss = peak_rss_bytes();
    if let (Some(open), Some(peak)) = (rss_open, rss) {
        println!(
            "peak memory      {:.0} MiB after opening, {:.0} MiB after searching = {:.0} bytes per card",
            open as f64 / (1 << 20) as f64,
            peak as f64 / (1 << 20) as f64,
            peak as f64 / cards.max(1) as f64
        );
        out["peak_rss_open_bytes"] = json!(open);
        out["peak_rss_bytes"] = json!(peak);
    }
    if let Some(now) = proc_field("/proc/self/status", "VmRSS:") {
        println!(
            "resident now     {:.0} MiB = {:.0} bytes per card (steady state, after the transients of opening)",
            now as f64 / (1 << 20) as f64,
            now as f64 / cards.max(1) as f64
        );
        out["rss_bytes"] = json!(now);
    }
}

/// The process's peak resident set (VmHWM), where /proc tells it.
fn peak_rss_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmHWM:")
}

/// The machine's memory (MemTotal), where /proc tells it.
pub fn total_memory_bytes() -> Option<u64> {
    proc_field("/proc/meminfo", "MemTotal:")
}

fn proc_field(path: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Time each policy ordering 100 candidates (the ranking step alone).
fn rank_bench() {
    use hubsearch_core::Group;
    use hubsearch_engine::hub::HubPopularity;
    use hubsearch_engine::CandidateFacts;
    use hubsearch_rank::{rank, Account, ExposureBook, Policy};
    let facts: Vec<CandidateFacts> = (0..100u64)
        .map(|i| CandidateFacts {
            id_key: hubsearch_core::ModelKey(i),
            builder_key: hubsearch_core::BuilderKey(i % 40),
            downloads: i * 7919 % 1000,
            paid_calls: 0,
        })
        .collect();
    let hub = HubPopularity::from_facts(&facts);
    let cands: Vec<_> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| hub.candidate(f, 1.0 / (1.0 + i as f64 * 0.1), 0, Group::Builder))
        .collect();
    let mut book = ExposureBook::new();
    for g in 0..40 {
        let a = Account {
            exposure: g as f64,
            merit: 2.0 * g as f64 + 1.0,
            rounds: g + 1,
            impact: (g % 7) as f64,
        };
        book.set(g, a);
    }
    let r = hubsearch_core::config::RankingConfig::default();
    for p in hubsearch_core::PolicyKind::ALL
        .iter()
        .map(|k| Policy::new(*k, &r))
    {
        let mut lat = Vec::with_capacity(5000);
        for seed in 0..5000u64 {
            let t = Instant::now();
            std::hint::black_box(rank(&p, &cands, &book, seed));
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "rank 100 cands  {:<11} p50 {:.4} ms, p99 {:.4} ms",
            p.name(),
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100]
        );
    }
}
