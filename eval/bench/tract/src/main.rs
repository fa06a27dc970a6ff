//! MiniLM (all-MiniLM-L6-v2) through tract, pure Rust, on the plain ONNX
//! graph (`scripts/build_minilm_onnx.py --plain`), one thread:
//! - query embedding latency: the dev queries, each alone (padded to 16 tokens);
//! - card throughput: 600 real card texts (every 40th card), batches of 8
//!   padded to 128 tokens;
//! - agreement: cosine to ONNX Runtime's fp32 vectors is not computed here;
//!   tract runs the same graph, so the table compares speed.
//!
//!   models/.venv/bin/python scripts/build_minilm_onnx.py models/all-MiniLM-L6-v2 /tmp/minilm-plain.onnx --plain
//!   cargo run --release --manifest-path eval/bench/tract/Cargo.toml -- /tmp/minilm-plain.onnx
use std::io::BufRead;
use std::time::Instant;

use tract_onnx::prelude::*;

fn model(path: &str, batch: usize, len: usize) -> TractResult<std::sync::Arc<TypedRunnableModel>> {
    let fact = || InferenceFact::dt_shape(i64::datum_type(), tvec!(batch, len));
    tract_onnx::onnx()
        .model_for_path(path)?
        .with_input_fact(0, fact())?
        .with_input_fact(1, fact())?
        .with_input_fact(2, fact())?
        .into_optimized()?
        .into_runnable()
}

fn inputs(ids: &[Vec<u32>], batch: usize, len: usize) -> TVec<TValue> {
    let mut input = vec![0i64; batch * len];
    let mut mask = vec![0i64; batch * len];
    for (b, t) in ids.iter().enumerate() {
        for (i, id) in t.iter().take(len).enumerate() {
            input[b * len + i] = *id as i64;
            mask[b * len + i] = 1;
        }
    }
    let t = |v: Vec<i64>| -> TValue {
        tract_ndarray::Array2::from_shape_vec((batch, len), v)
            .unwrap()
            .into_tensor()
            .into()
    };
    tvec!(t(input), t(mask), t(vec![0i64; batch * len]))
}

fn main() -> TractResult<()> {
    let graph = std::env::args()
        .nth(1)
        .expect("path of the plain ONNX graph");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let tok = tokenizers::Tokenizer::from_file(root.join("models/all-MiniLM-L6-v2/tokenizer.json"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let encode = |s: &str| {
        tok.encode(s, true)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    };
    // Queries.
    let queries: Vec<String> =
        std::fs::read_to_string(root.join("../shared/eval/dev/queries.tsv"))?
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(_, q)| q.to_string()))
            .collect();
    let q = model(&graph, 1, 16)?;
    let mut lat = Vec::new();
    for rep in 0..5 {
        for text in &queries {
            let t = Instant::now();
            q.run(inputs(&[encode(text)], 1, 16))?;
            if rep > 0 {
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "tract query embedding (16 tokens, 1 thread): p50 {:.2} ms, p99 {:.2} ms",
        pct(0.5),
        pct(0.99)
    );
    // Cards.
    let file = std::fs::File::open(root.join("../shared/data/hf_models_2022.jsonl.gz"))?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut texts = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        if i % 40 != 0 {
            continue;
        }
        let c: serde_json::Value = serde_json::from_str(&line?)?;
        let mut t = c["id"]
            .as_str()
            .unwrap_or("")
            .replace(['/', '-', '_', '.'], " ");
        if let Some(task) = c["task"].as_str() {
            t += &format!(". {}", task.replace('-', " "));
        }
        if let Some(desc) = c["description"].as_str().filter(|d| !d.is_empty()) {
            t += &format!(". {desc}");
        }
        texts.push(encode(&t));
        if texts.len() == 600 {
            break;
        }
    }
    let c = model(&graph, 8, 128)?;
    let t = Instant::now();
    for chunk in texts.chunks(8) {
        if chunk.len() == 8 {
            c.run(inputs(chunk, 8, 128))?;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "tract card embedding (batches of 8 x 128 tokens, 1 thread): {:.1} cards/s",
        (texts.len() / 8 * 8) as f64 / secs
    );
    Ok(())
}
