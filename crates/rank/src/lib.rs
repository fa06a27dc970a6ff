//! # hubsearch-rank
//!
//! The ranking math of hubsearch as pure functions: no I/O, no clocks, no
//! global state, so every property can be tested with proptest.
//!
//! - [`fusion`]: text and vector evidence fused into relevance (cosine,
//!   min-max weighted, reciprocal rank fusion).
//! - [`attention`]: position-bias models (log, trec, rbp, cascade).
//! - [`policy`]: relevance, popularity, tail_boost, fair and fair_impact
//!   (FairCo, Fair-E and Fair-I), fair_bounded (a fixed-gain controller),
//!   stochastic (Plackett-Luce), each returning every hit's score parts.
//! - [`book`]: cumulative exposure, merit, impact and rounds per group, and
//!   what a served page adds to it.
//! - [`merit`]: the calibrated probability that a candidate satisfies the
//!   query, blended with the model's logged call rate.
//! - [`concentration`]: Gini, top-k shares, Lorenz curves.
//!
//! Key design decision: a policy sees only the candidates and a read-only
//! [`ExposureBook`]; the caller records what was served with
//! [`book::page_delta`]. So the same code ranks live traffic, replays and
//! simulations, and the engine decides when state is persisted.

pub mod attention;
pub mod book;
pub mod concentration;
pub mod fusion;
pub mod merit;
pub mod plackett_luce;
pub mod policy;

pub use attention::Attention;
pub use book::{page_delta, Account, ExposureBook, PageDelta};
pub use concentration::{
    gini, lorenz, share_of, tail_share_of, top_fraction_share, top_k_share, Concentration,
};
pub use fusion::{Evidence, FusionParams};
pub use merit::{blended_merit, calibrated_probability, MeritFeatures};
pub use policy::{rank, Candidate, Policy, Ranked, Target};

#[cfg(test)]
mod properties;
