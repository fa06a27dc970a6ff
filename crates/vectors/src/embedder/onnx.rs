//! all-MiniLM-L6-v2 in ONNX Runtime (feature `onnx`, on by default).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::Tokenizer;

use super::{load_tokenizer, model_err, need, EmbedError, Embedder, MINILM, MINILM_INT8};

/// all-MiniLM-L6-v2 run by ONNX Runtime (loaded at run time from the
/// library `scripts/setup-onnx` takes from the PyPI wheel) on the graph that
/// script builds from the same safetensors: `model.onnx` (fp32, the same
/// vectors as [`MiniLm`]) or `model-int8.onnx` (dynamic int8 quantisation).
/// The graph pools and normalises itself (output `sentence_embedding`).
///
/// Two kinds of session (docs/embeddings.md): one whose matrix products use
/// every core, for single texts (a query, a published card), and, made on
/// the first batch, one single-threaded session per core for batches, so
/// the card-embedding workers run side by side without oversubscribing.
/// Single texts go through a [`Batcher`]: one worker runs the all-cores
/// session on whatever texts are queued when it is free, so concurrent
/// searches with new queries share runs instead of competing for cores.
pub struct OnnxMiniLm {
    graph: PathBuf,
    query: Arc<std::sync::Mutex<ort::session::Session>>,
    batch: std::sync::OnceLock<Result<Vec<std::sync::Mutex<ort::session::Session>>, String>>,
    next: std::sync::atomic::AtomicUsize,
    tokenizer: Arc<Tokenizer>,
    name: &'static str,
    batcher: std::sync::OnceLock<Arc<Batcher>>,
}

/// The most queued texts the worker takes into one run.
const MAX_QUERY_BATCH: usize = 16;

/// A single text waiting for the worker, and where its vector goes.
struct Waiting {
    text: String,
    reply: std::sync::mpsc::SyncSender<Result<Vec<f32>, String>>,
}

/// Queued single texts and the worker that embeds them in batches.
struct Batcher {
    queue: std::sync::Mutex<(std::collections::VecDeque<Waiting>, bool)>,
    ready: std::sync::Condvar,
}

impl Batcher {
    /// Start the worker on `session`: it takes whatever is queued (up to
    /// [`MAX_QUERY_BATCH`]) whenever it is free, so a batch is never waited
    /// for: alone, a text runs by itself; under load batches grow.
    fn start(
        session: &Arc<std::sync::Mutex<ort::session::Session>>,
        tokenizer: &Arc<Tokenizer>,
    ) -> Result<Arc<Batcher>, EmbedError> {
        let b = Arc::new(Batcher {
            queue: std::sync::Mutex::new((std::collections::VecDeque::new(), false)),
            ready: std::sync::Condvar::new(),
        });
        let (w, session, tokenizer) = (Arc::clone(&b), Arc::clone(session), Arc::clone(tokenizer));
        std::thread::Builder::new()
            .name("query-embed".into())
            .spawn(move || w.work(&session, &tokenizer))
            .map_err(|e| {
                EmbedError::Model(format!("cannot start the query-embedding worker: {e}"))
            })?;
        Ok(b)
    }

    fn work(&self, session: &std::sync::Mutex<ort::session::Session>, tokenizer: &Tokenizer) {
        loop {
            let batch: Vec<Waiting> = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.0.is_empty() && !q.1 {
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.0.is_empty() {
                    return;
                }
                let n = q.0.len().min(MAX_QUERY_BATCH);
                q.0.drain(..n).collect()
            };
            let texts: Vec<&str> = batch.iter().map(|w| w.text.as_str()).collect();
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            // A panic in the runtime answers this batch with an error and
            // keeps the worker alive for the next.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(tokenizer, &mut s, &texts)
            }))
            .unwrap_or_else(|_| Err(EmbedError::Model("ONNX Runtime panicked".into())));
            match ran {
                Ok(vectors) => {
                    for (w, v) in batch.iter().zip(vectors) {
                        let _ = w.reply.send(Ok(v));
                    }
                }
                Err(e) => {
                    for w in &batch {
                        let _ = w.reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    /// Queue `text` and wait for its vector.
    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.0.push_back(Waiting {
                text: text.to_string(),
                reply,
            });
        }
        self.ready.notify_one();
        match answer.recv() {
            Ok(r) => r.map_err(EmbedError::Model),
            Err(_) => Err(EmbedError::Model(
                "the query-embedding worker stopped".into(),
            )),
        }
    }

    /// Let the worker finish what is queued and stop.
    fn stop(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.ready.notify_all();
    }
}

impl Drop for OnnxMiniLm {
    /// Stop the worker (it holds the all-cores session and the tokenizer).
    fn drop(&mut self) {
        if let Some(b) = self.batcher.get() {
            b.stop();
        }
    }
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
        // Idle intra-op threads sleep instead of spinning: with concurrent
        // searches the cores are wanted elsewhere (docs/embeddings.md).
        .with_intra_op_spinning(false)
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
            query: Arc::new(onnx_session(env, &graph, cores())?),
            graph,
            batch: std::sync::OnceLock::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
            tokenizer: Arc::new(load_tokenizer(dir)?),
            name: if int8 { MINILM_INT8 } else { MINILM },
            batcher: std::sync::OnceLock::new(),
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

    /// The single-threaded sessions, made on the first batch.
    fn pool(&self) -> Result<&[std::sync::Mutex<ort::session::Session>], EmbedError> {
        self.batch
            .get_or_init(|| {
                let env = ORT_ENV
                    .get()
                    .and_then(|e| e.as_ref().ok())
                    .ok_or("ONNX Runtime is not initialised")?;
                (0..cores())
                    .map(|_| onnx_session(env, &self.graph, 1).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .as_deref()
            .map_err(|e| EmbedError::Model(e.clone()))
    }

    /// A free single-threaded session for a batch (all busy: the next in
    /// turn).
    fn batch_session(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, ort::session::Session>, EmbedError> {
        let pool = self.pool()?;
        for s in pool.iter() {
            if let Ok(g) = s.try_lock() {
                return Ok(g);
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % pool.len();
        Ok(pool[i].lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The batcher of single texts, started on first use.
    fn batcher(&self) -> Result<&Batcher, EmbedError> {
        if let Some(b) = self.batcher.get() {
            return Ok(b);
        }
        let b = Batcher::start(&self.query, &self.tokenizer)?;
        // Two first callers may both start one; the loser's worker stops
        // when its batcher is dropped here.
        if let Err(extra) = self.batcher.set(b) {
            extra.stop();
        }
        Ok(self.batcher.get().expect("set above"))
    }
}

/// Embed `texts` in one run of `session`.
fn run(
    tokenizer: &Tokenizer,
    session: &mut ort::session::Session,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let enc = tokenizer
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
    let out = session.run(inputs).map_err(model_err)?;
    let (_, data) = out["sentence_embedding"]
        .try_extract_tensor::<f32>()
        .map_err(model_err)?;
    Ok(data.chunks_exact(384).map(<[f32]>::to_vec).collect())
}

impl Embedder for OnnxMiniLm {
    /// Start the worker and run one text through it (the path every query
    /// takes). The per-core sessions are left to the first batch: serving
    /// never needs them unless it imports.
    fn warm_up(&self) -> Result<(), EmbedError> {
        self.batcher()?.embed("warm up").map(drop)
    }

    fn dim(&self) -> usize {
        384
    }
    fn name(&self) -> &str {
        self.name
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match texts {
            [] => Ok(Vec::new()),
            [one] => Ok(vec![self.batcher()?.embed(one)?]),
            _ => run(&self.tokenizer, &mut *self.batch_session()?, texts),
        }
    }
}
