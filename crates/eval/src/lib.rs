//! # hubsearch-eval
//!
//! How researchers measure hubsearch: relevance metrics (nDCG, MRR, Recall)
//! over judged queries, TREC run and qrels files so other systems' runs are
//! comparable, a harness that runs query sets through the engine, exposure
//! metrics (expected exposure, AWRF) over replayed policies, off-policy
//! estimation from logged pages, and group reports (exposure and impact
//! against merit per builder, popularity tier or model age) from ledger
//! exports. Simulations live in `hubsearch-sim`.
//!
//! Key design decision: the harness calls the same `Engine::search` the
//! server and the CLI call, so what is measured is what is served.

pub mod calibrate;
pub mod calls;
pub mod exposure;
pub mod groups;
pub mod harness;
pub mod metrics;
pub mod offpolicy;
pub mod ope;
pub mod ope_sim;
pub mod replay;
pub mod trec;

pub use calls::CallModel;
pub use harness::{evaluate, EvalOptions, EvalReport};
pub use replay::{replay, PolicyReport, ReplayOptions};
