//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

use hubsearch_core::Config;
use hubsearch_engine::Engine;

/// `../shared` beside the project checkout.
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// A file under `../shared`; panics (never skips) when it is missing, so an
/// ignored real-corpus test run without the data fails loudly.
pub fn shared_file(rel: &str) -> PathBuf {
    let p = shared().join(rel);
    assert!(
        p.exists(),
        "{} is missing: the real-corpus tests need ../shared beside the checkout",
        p.display()
    );
    p
}

/// The project's own fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A fresh engine over a new index in `dir`, with vectors from `model`
/// (`minilm`, `hash` or `none`).
pub fn engine_with(dir: &Path, model: &str) -> Engine {
    let mut config = Config::default();
    config.index.dir = dir.join("index");
    config.embedding.model = model.parse().expect("an embedding model name");
    use_project_models(&mut config);
    Engine::open_or_create(config).expect("create engine")
}

/// Point the config at the project's `models/` (tests run in their crate's
/// directory, where the default relative paths do not reach).
pub fn use_project_models(config: &mut Config) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    config.embedding.model_dir = models.join("all-MiniLM-L6-v2");
    config.embedding.onnxruntime_lib = models.join("onnxruntime/libonnxruntime.so.1.32.0");
}

/// A fresh text-only engine over a new index in `dir`.
pub fn engine_in(dir: &Path) -> Engine {
    engine_with(dir, "none")
}

/// A generated hub of `models` cards (`HubGenerator` with `seed`) written
/// as JSON lines to `dir/hub.jsonl`; its path.
pub fn generated_hub(dir: &Path, models: usize, seed: u64) -> PathBuf {
    let hub = dir.join("hub.jsonl");
    let text: String = hubsearch_sim::HubGenerator::new(models, seed)
        .map(|c| serde_json::to_string(&c).expect("a card as JSON") + "\n")
        .collect();
    std::fs::write(&hub, text).expect("write the generated hub");
    hub
}
