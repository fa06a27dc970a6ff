//! # hubsearch-sim
//!
//! The simulations hubsearch is studied with, and the synthetic hubs it is
//! tested and benchmarked on:
//!
//! - [`synth`]: a deterministic generator of hubs shaped like the real 2022
//!   Hugging Face snapshot (`hubsearch generate`, the default index, the
//!   tests and the scale benchmarks).
//! - [`market`]: the pay-per-call study (`hubsearch study`, docs/study.md):
//!   simulated years of a priced hub under each ranking policy and hosting regime.
//! - [`fairco`]: FairCo's synthetic news experiment (`hubsearch fairco`,
//!   docs/ranking.md, Convergence).
//! - [`svg`]: the plain SVG line charts their reports draw.
//!
//! Key design decision: simulations rank through `hubsearch-rank`'s
//! functions, the same ones the engine serves with, so a simulated page is
//! a page the hub would serve.

pub mod fairco;
pub mod longrun;
pub mod market;
pub mod svg;
pub mod synth;

pub use synth::HubGenerator;
