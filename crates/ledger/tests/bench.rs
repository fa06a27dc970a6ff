//! Figures for the call log (docs/transparency.md, Figures), ignored by
//! default; they print, and assert only what the issue asks for:
//!
//! ```sh
//! cargo test --release --all-features -p hubsearch-ledger --test bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `paid_call_throughput`: paid calls a second into a ledger on disk from
//!   2 and 16 threads for `BENCH_SECONDS` (default 5), each call followed by
//!   its receipt (as `POST /v1/calls` answers it). The same file without the
//!   receipt line runs against the ledger before the call log
//!   (docs/transparency.md says how the two were interleaved).
//! - `proofs_and_heads_at_a_million`: a ledger of 10^6 calls as an older
//!   hubsearch wrote it, opened (every call entered into the log), opened
//!   again (the tree rebuilt from the stored entries), then p50/p99 of a
//!   signed head (cached, and freshly signed after a new call), an
//!   inclusion proof, a consistency proof and a page of 1,000 entries.
//!   `BENCH_KEEP=DIR` leaves that ledger in DIR (to serve it over HTTP).
//! - `page_log_retention_bounds_the_file`: `BENCH_PAGES` (default 100,000)
//!   pages of 200 candidates (10 shown) recorded into a ledger on disk
//!   keeping every page log and into one keeping the newest 10,000
//!   (`index.page_log_keep`); the size of `ledger.redb` printed every tenth
//!   of the way (docs/ledger.md, Retention).

use std::time::{Duration, Instant};

use hubsearch_ledger::{test_call, Ledger};

mod support;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// p50 and p99 of `samples`, in microseconds.
fn pct(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50).as_secs_f64() * 1e6, at(0.99).as_secs_f64() * 1e6)
}

#[test]
#[ignore]
fn paid_call_throughput() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // BENCH_NO_RECEIPT=1: record only, no receipt asked for (the entries
    // are written either way). Lines marked RECEIPT are deleted to run
    // this file against the ledger before the call log.
    let receipts = std::env::var_os("BENCH_NO_RECEIPT").is_none(); // RECEIPT
    println!("cores: {}", cores());
    for threads in [2usize, 16] {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.redb")).unwrap();
        let stop = Instant::now() + Duration::from_secs(secs);
        let calls: u64 = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let l = &l;
                    sc.spawn(move || {
                        let mut n = 0u64;
                        while Instant::now() < stop {
                            let call = test_call(&format!("{t}-{n}"), 1, 2);
                            n += 1;
                            if receipts {
                                // RECEIPT
                                let (_, r) = l.record_call_receipt(call).unwrap(); // RECEIPT
                                assert!(r.is_some()); // RECEIPT
                                continue; // RECEIPT
                            } // RECEIPT
                            l.record_call(call).unwrap();
                        }
                        n
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        println!(
            "paid calls, {threads} threads, {secs} s: {calls} calls, {:.0} calls/s",
            calls as f64 / secs as f64
        );
    }
}

/// A ledger of `n` calls as hubsearch wrote it before the call log: 5,000
/// models of 700 builders, keyed as the hub keys them.
fn old_ledger(path: &std::path::Path, n: u64) {
    use hubsearch_core::card::key_of;
    use redb::TableDefinition;
    const CALLS: TableDefinition<u64, (u64, u64, f64, u64)> = TableDefinition::new("calls");
    const NAMES: TableDefinition<u64, &str> = TableDefinition::new("names");
    let model = |m: u64| format!("builder{}/model-{m}", m % 700);
    let builder = |m: u64| format!("builder{}", m % 700);
    let keys: Vec<(u64, u64)> = (0..5000)
        .map(|m| (key_of(&model(m)), key_of(&builder(m))))
        .collect();
    let db = redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut c = w.open_table(CALLS).unwrap();
        for seq in 0..n {
            let (m, b) = keys[(seq % 5000) as usize];
            let amount = 0.01 * (seq % 97) as f64;
            c.insert(seq, (m, b, amount, 1_700_000_000 + seq)).unwrap();
        }
        let mut names = w.open_table(NAMES).unwrap();
        for (i, (m, b)) in keys.iter().enumerate() {
            names.insert(*m, model(i as u64).as_str()).unwrap();
            names.insert(*b, builder(i as u64).as_str()).unwrap();
        }
    }
    w.commit().unwrap();
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A small deterministic generator (xorshift).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
#[ignore]
fn proofs_and_heads_at_a_million() {
    const N: u64 = 1_000_000;
    println!("cores: {}", cores());
    let dir = tempfile::tempdir().unwrap();
    // BENCH_KEEP=DIR: the ledger is written (and left) in DIR, to serve it.
    let keep = std::env::var_os("BENCH_KEEP").map(std::path::PathBuf::from);
    let path = keep
        .unwrap_or_else(|| dir.path().to_path_buf())
        .join("ledger.redb");
    let t = Instant::now();
    old_ledger(&path, N);
    println!(
        "wrote an older ledger of {N} calls: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let l = Ledger::open(&path).unwrap();
    println!(
        "first open, {N} calls entered into the log: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    l.close().unwrap();
    drop(l);
    let t = Instant::now();
    let l = Ledger::open(&path).unwrap();
    println!(
        "open, tree rebuilt from {N} stored entries: {:.2} s (RSS {:.0} MB)",
        t.elapsed().as_secs_f64(),
        rss_mb()
    );
    let log = l.call_log();
    assert_eq!(log.size(), N);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let reps = 20_000;
    let mut time = |f: &mut dyn FnMut(u64)| {
        let mut s: Vec<Duration> = (0..reps)
            .map(|_| {
                let r = next(&mut x);
                let t = Instant::now();
                f(r);
                t.elapsed()
            })
            .collect();
        pct(&mut s)
    };
    let size = log.size();
    let figures = [
        (
            "signed head (cached)",
            time(&mut |_| drop(log.signed_head())),
        ),
        (
            "inclusion proof",
            time(&mut |r| drop(log.inclusion(r % size, size).unwrap())),
        ),
        (
            "consistency proof",
            time(&mut |r| drop(log.consistency(1 + r % size, size).unwrap())),
        ),
        (
            "1,000 entries",
            time(&mut |r| {
                let s = r % (size - 1000);
                drop(l.log_entries(s, s + 1000).unwrap())
            }),
        ),
    ];
    // A fresh head: the tree grew since the last one.
    let mut fresh: Vec<Duration> = (0..500)
        .map(|i| {
            l.record_call(test_call(&format!("fresh{i}"), 1, 2))
                .unwrap();
            let t = Instant::now();
            drop(log.signed_head());
            t.elapsed()
        })
        .collect();
    let fresh = pct(&mut fresh);
    for (name, (p50, p99)) in figures.iter().chain([("signed head (new)", fresh)].iter()) {
        println!("{name} at {N} entries: p50 {p50:.1} us, p99 {p99:.1} us");
    }
    for (name, (_, p99)) in &figures[..3] {
        assert!(*p99 < 2000.0, "{name}: p99 {p99} us");
    }
    assert!(fresh.1 < 2000.0, "a new head: p99 {} us", fresh.1);
}

/// A served page of 200 candidates from a hub of 30,000 models, 10 shown,
/// its floats on the grid the engine ranks on (`PageLog::quantize`).
fn big_page(i: u64) -> hubsearch_ledger::PageLog {
    use hubsearch_ledger::{LoggedCandidate, PageLog};
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let ranked: Vec<LoggedCandidate> = (0..200u64)
        .map(|j| {
            let m = next(&mut x) % 30_000;
            LoggedCandidate {
                model: hubsearch_core::ModelKey::of(&format!("b{}/m{m}", m % 3000)),
                builder: hubsearch_core::BuilderKey::of(&format!("b{}", m % 3000)),
                relevance: f64::from(1.0f32 / (1.0 + j as f32)),
                merit: f64::from(0.5f32 / (1.0 + j as f32)),
                calls: (next(&mut x) % 1000) as f64,
                quantile: f64::from((next(&mut x) % 1000) as f32 / 1000.0),
            }
        })
        .collect();
    let mut p = PageLog {
        query: format!("query number {}", i % 5000),
        mode: "hybrid".into(),
        policy: "fair".into(),
        params: [("lambda".to_string(), 0.3)].into_iter().collect(),
        ..support::page_log(i, ranked, 10, |r, _| (format!("b/m{r}"), "b".into()))
    };
    p.quantize();
    p
}

#[test]
#[ignore]
fn page_log_retention_bounds_the_file() {
    let pages: u64 = std::env::var("BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    println!("{pages} pages of 200 candidates, {} cores", cores());
    println!("| pages | ledger.redb, every log kept | newest 10,000 kept |");
    println!("|---:|---:|---:|");
    let paths = [dir.path().join("all.redb"), dir.path().join("kept.redb")];
    let ledgers: Vec<Ledger> = paths.iter().map(|p| Ledger::open(p).unwrap()).collect();
    ledgers[1].keep_page_logs(10_000);
    let t0 = Instant::now();
    for i in 0..pages {
        let page = big_page(i);
        ledgers[0].record_log(page.clone()).unwrap();
        ledgers[1].record_log(page).unwrap();
        if (i + 1) % (pages / 10).max(1) == 0 {
            for l in &ledgers {
                l.flush().unwrap();
            }
            let mb = |p: &std::path::Path| std::fs::metadata(p).unwrap().len() as f64 / 1e6;
            println!(
                "| {} | {:.1} MB | {:.1} MB |",
                i + 1,
                mb(&paths[0]),
                mb(&paths[1])
            );
        }
    }
    let (kept, removed) = ledgers[1].page_log_counts().unwrap();
    let (rows, bytes) = ledgers[0].page_log_bytes().unwrap();
    println!(
        "kept {kept}, removed {removed}; rows {} bytes on average; {:.1} s for both ledgers",
        bytes / rows.max(1),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(kept, 10_000.min(pages));
}
