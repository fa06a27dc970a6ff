//! The Rust MiniLM embedder against vectors computed by the Python
//! sentence-transformers library from the same model files
//! (tests/fixtures/minilm/make_reference.py). Needs the model: `scripts/setup-model`
//! (scripts/test runs it); fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hubsearch_index::embedder::{dot, Embedder, MiniLm};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> MiniLm {
    let dir = std::env::var_os("HUBSEARCH_EMBEDDING__MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/all-MiniLM-L6-v2"));
    MiniLm::load(&dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn matches_sentence_transformers() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/minilm/reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sentences: Vec<&str> = reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let want: Vec<Vec<f32>> = reference["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let m = model();
    // As one padded batch, and one by one: padding must not change a vector.
    let batch = m.embed(&sentences).unwrap();
    for (i, s) in sentences.iter().enumerate() {
        let single = m.embed(&[s]).unwrap().remove(0);
        for got in [&batch[i], &single] {
            assert_eq!(got.len(), 384);
            let cos = dot(got, &want[i]);
            assert!(cos >= 0.999, "sentence {i} {s:?}: cosine {cos}");
        }
    }
    // Unrelated sentences are not all the same vector.
    assert!(dot(&batch[0], &batch[4]) < 0.9);
}

#[test]
fn embeds_a_batch_quickly_enough_to_report() {
    let m = model();
    let texts: Vec<String> = (0..64)
        .map(|i| format!("model number {i} for german speech recognition with wav2vec2"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Instant::now();
    let v = m.embed(&refs).unwrap();
    eprintln!(
        "64 short texts embedded in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(v.len(), 64);
    assert!(v.iter().all(|x| (dot(x, x) - 1.0).abs() < 1e-4));
}
