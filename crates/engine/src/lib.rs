//! # hubsearch-engine
//!
//! The engine of a hub: [`Engine::open`], [`Engine::import`],
//! [`Engine::search`], [`Engine::stats`]. It wires the indexes
//! (`hubsearch-index`) to the ranking math (`hubsearch-rank`) and owns
//! everything with state: import bookkeeping and, later, the exposure ledger.
//!
//! Key design decision: the engine is synchronous and `Send + Sync`; the
//! server calls it from blocking threads, the CLI and the evaluation harness
//! call it directly, so there is one code path for search everywhere.

pub mod engine;
pub mod error;
pub mod exposure_stats;
pub mod hub;
pub mod import;
pub mod ledger;
pub mod listing;
pub mod publish;
pub mod retrieve;
pub mod semantic;
pub mod source;
pub mod synth;

pub use engine::{Engine, HubStats, LedgerMode, SearchResponse};
pub use error::{Error, Result};
pub use hubsearch_index::{dir_size, Error as IndexError};
pub use import::{ImportReport, Rejection};
pub use ledger::{CallOutcome, CallRecord, Earnings, Ledger};
pub use synth::HubGenerator;
