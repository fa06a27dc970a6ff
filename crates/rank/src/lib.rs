//! # hubsearch-rank
//!
//! The ranking math of hubsearch as pure functions: no I/O, no clocks, no
//! global state, so every property can be tested with proptest.
//!
//! Key design decision: a policy sees only the candidates (relevance,
//! popularity) and a read-only view of the exposure ledger, and returns the
//! page plus every hit's score parts; the caller records what was served.

pub mod concentration;

pub use concentration::{gini, lorenz, top_fraction_share, top_k_share, Concentration};
