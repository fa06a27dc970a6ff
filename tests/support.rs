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

/// A fresh engine over a new index in `dir`.
pub fn engine_in(dir: &Path) -> Engine {
    let mut config = Config::default();
    config.index.dir = dir.join("index");
    Engine::open_or_create(config).expect("create engine")
}
