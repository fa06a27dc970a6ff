//! # hubsearch-engine
//!
//! The engine of a hub: [`Engine::open`], [`Engine::import`],
//! [`Engine::search`], [`Engine::stats`]. It wires the indexes
//! (`hubsearch-index`) to the ranking math (`hubsearch-rank`) and owns
//! everything with state: import bookkeeping and the exposure ledger.
//!
//! A search is a short chain of stages, one way: [`Engine::search`] ->
//! [`Engine::retrieve`] (`retrieve.rs`: text and vector candidates, fused
//! relevance) -> [`Engine::candidates`] (what ranking knows of each) ->
//! [`Engine::rank`] (the policy, on a copy of the ledger's book) -> the
//! page's hits -> [`Ledger::record_log`] (what the page adds, from its log).
//!
//! Key design decision: the engine is synchronous and `Send + Sync`; the
//! server calls it from blocking threads, the CLI and the evaluation harness
//! call it directly, so there is one code path for search everywhere.

pub mod calls;
pub mod catalog;
pub mod engine;
pub mod error;
pub mod exposure_stats;
pub mod hub;
pub mod import;
pub mod keys;
pub use hubsearch_ledger as ledger;
pub mod listing;
pub mod names;
pub mod progress;
pub mod replica;
pub mod retrieve;
pub mod row;
pub mod search;
pub mod semantic;
pub mod similar;
pub mod snippet;
pub mod source;
pub mod transparency;

pub use calls::{CallReceipt, PaidCall};
pub use catalog::Publisher;
pub use engine::{Engine, HubStats, LedgerMode, ModelRecord};
pub use error::{Error, Result};
pub use hubsearch_core::dir_size;
pub use hubsearch_index::{CandidateFacts, Error as IndexError};
pub use import::{ImportReport, Rejection};
pub use ledger::{CallOutcome, CallRecord, Earnings, Ledger, Tally};
pub use progress::{Progress, ProgressFn};
pub use replica::{LogEvent, Replicator};
pub use search::SearchResponse;
