//! # hubsearch-vectors
//!
//! The semantic side's parts: card vectors in an HNSW graph
//! ([`VectorIndex`], hnsw_rs) and the embedders that turn text into vectors
//! ([`embedder`]). Only this crate sees hnsw_rs, ONNX Runtime and candle.
//!
//! Key design decision: the heavy runtimes are Cargo features. `onnx` (on
//! by default) is what `scripts/run` serves; `candle` is the pure-Rust
//! alternative, built only when asked for (`--features candle`). A config
//! that names a runtime this build lacks gets an error saying which feature
//! to build, never a silent fallback.

pub mod embedder;
mod huge;
pub mod journal;
pub mod simd;
pub mod vector_index;

pub use embedder::{EmbedError, Embedder, HashEmbedder};
pub use vector_index::{HnswParams, VectorError, VectorHit, VectorIndex};
