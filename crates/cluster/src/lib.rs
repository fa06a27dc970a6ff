//! # hubsearch-cluster
//!
//! Cluster mode (docs/cluster.md): identical replicas behind a load
//! balancer share one log, a NATS JetStream stream replicated on the NATS
//! servers (R3: Raft). Every write a replica takes is appended to the log
//! and acknowledged to the client once JetStream has acknowledged it; every
//! replica applies the log in order to its own index and ledger
//! (`Engine::apply_logged`), so the fairness controller of each replica
//! reads the global books (its own pages and everyone else's, as far as it
//! has applied), and a model published on one replica is searchable on all.
//!
//! Exactly-once effects: messages carry ids (JetStream drops a duplicate id
//! within its window: a retried publish is stored once), paid calls are
//! counted once per idempotency key when applied (whatever replica took
//! them, whatever the window), and each replica stores the position it has
//! applied with the effects, so a restart resumes where it stopped.
//!
//! The engine is synchronous: [`Cluster`] implements the engine's
//! `Replicator` by blocking on its own Tokio runtime handle (never from an
//! async worker thread: the server runs engine work on blocking threads),
//! and applies the log on a dedicated thread.
//!
//! A bounded log (docs/cluster.md, Snapshots and truncation): a replica
//! that writes snapshots publishes each to the log's object store bucket
//! ([`store`]; `cluster.snapshot_bucket`), keeps the newest
//! `snapshots_kept` there, and (unless `cluster.truncate_log` is off)
//! purges the log up to the oldest kept one (never past a live replica's
//! position); a replica the log cannot bring up to date starts from the
//! latest snapshot in the bucket ([`restore_if_needed`]). Served pages are
//! appended in the background and retried until the log takes them or the
//! retry time (`cluster.page_retry_s`, by default half the deduplication
//! window) is spent; then they are counted as lost.
//!
//! # Layout
//!
//! [`Cluster`] (`cluster/`) is a replica's link to the log: joining and
//! catching up, the applier thread, appends and the engine's
//! `Replicator`, served pages on their way, snapshots and truncation, and
//! the replica's status. Around it: the NATS client and the log's stream
//! (`connection.rs`), the events' wire format (`event.rs`), errors
//! (`error.rs`), the object store bucket of snapshots ([`store`]), a
//! replica's start from it (`restore.rs`), the log's figures
//! (`figures.rs`) and imports through the log (`import.rs`).

mod cluster;
mod connection;
mod error;
mod event;
mod figures;
mod import;
mod restore;
pub mod store;

pub use cluster::{copy_dir, Cluster, PAGES_PENDING_MAX};
pub use error::ClusterError;
pub use event::{EVENT_VERSION, EVENT_VERSION_HEADER};
pub use figures::{log_figures, LogFigures};
pub use import::{import_to_log, LogImport};
pub use restore::{restore_if_needed, Restored};
