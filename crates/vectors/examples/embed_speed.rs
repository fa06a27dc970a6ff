//! Card-embedding throughput of MiniLM on this machine:
//! `cargo run --release -p hubsearch-vectors --features candle --example embed_speed -- [N] [BATCH]`
//! (reads card short texts from ../shared/data/hf_models_2022.jsonl.gz).

use std::io::BufRead;
use std::time::Instant;

use hubsearch_vectors::embedder::{Embedder, MiniLm};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let f = std::fs::File::open("../shared/data/hf_models_2022.jsonl.gz").expect("../shared/data");
    let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(f));
    let mut texts: Vec<String> = r
        .lines()
        .take(n)
        .map(|l| {
            hubsearch_core::record::parse_json(&l.unwrap())
                .unwrap()
                .short_text()
        })
        .collect();
    texts.sort_by_key(|t| t.len());
    let m = MiniLm::load(std::path::Path::new("models/all-MiniLM-L6-v2")).unwrap();
    let workers: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let t = Instant::now();
    let chunks: Vec<&[String]> = texts.chunks(batch).collect();
    std::thread::scope(|sc| {
        for w in 0..workers {
            let chunks = &chunks;
            let m = &m;
            sc.spawn(move || {
                for chunk in chunks.iter().skip(w).step_by(workers) {
                    let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    m.embed(&refs).unwrap();
                }
            });
        }
    });
    let s = t.elapsed().as_secs_f64();
    println!(
        "{n} cards, batch {batch}: {s:.1}s = {:.0} cards/s",
        n as f64 / s
    );
}
