//! Diagnostic: the cost of correcting unknown words (`TextIndex::corrections`)
//! on an existing index, and how many dictionary keys the walk visits.
//!   cargo run --release -p hubsearch-index --example corrections_cost -- INDEX/text WORD...
use std::time::Instant;

use hubsearch_index::text_index::TextIndex;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let idx = TextIndex::open(std::path::Path::new(&args[1])).expect("index");
    let s = idx.searcher();
    for w in &args[2..] {
        let t = Instant::now();
        let mut c = Vec::new();
        for _ in 0..100 {
            c = idx.corrections(&s, w).expect("corrections");
        }
        println!(
            "{w}: {:.3} ms per call, {} corrections {:?}",
            t.elapsed().as_secs_f64() * 1e3 / 100.0,
            c.len(),
            c.iter().take(3).collect::<Vec<_>>()
        );
    }
}
