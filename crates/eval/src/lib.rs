//! # hubsearch-eval
//!
//! How researchers measure hubsearch: relevance metrics (nDCG, MRR, Recall)
//! over judged queries, TREC run and qrels files so other systems' runs are
//! comparable, and a harness that runs query sets through the engine.
//!
//! Key design decision: the harness calls the same `Engine::search` the
//! server and the CLI call, so what is measured is what is served.

pub mod exposure;
pub mod fairco;
pub mod harness;
pub mod market;
pub mod metrics;
pub mod ope;
pub mod replay;
pub mod simulate;
pub mod svg;
pub mod synth;
pub mod trec;

pub use harness::{evaluate, EvalOptions, EvalReport};
pub use replay::{replay, PolicyReport, ReplayOptions};
pub use synth::HubGenerator;
