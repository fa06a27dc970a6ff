//! all-MiniLM-L6-v2 in ONNX Runtime (feature `onnx`, on by default).

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use super::{load_tokenizer, model_err, need, EmbedError, Embedder, MINILM, MINILM_INT8};

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
