//! Every replica's applied position, in a key-value bucket replicated like
//! the log (`<stream>-positions`), for the log's truncation to wait on.
//!
//! Truncation used to wait only for the smallest position the stream's
//! consumers had been delivered. A replica's ordered consumer is a
//! one-copy (R1) consumer on one NATS server: when that server is killed
//! the consumer is gone from the stream's list, so a snapshot round on
//! another replica purged events that replica had not applied yet; its new
//! consumer then met a gap and the replica stopped ("the log was trimmed
//! past this replica"; seen in `three_replicas_share_one_ledger_through_
//! jetstream_across_kill_9`). The bucket survives a server's loss as the
//! log does. An entry expires 30 s after its replica last wrote it (the
//! bucket's `max_age`, kept by the servers' clocks), so a replica gone
//! that long is no longer waited for, as with its consumer before.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{kv, stream::StorageType};
use futures_util::StreamExt;

use super::Cluster;
use crate::error::{nats, ClusterError};

/// How long a replica's position is waited for after it last wrote it.
const POSITION_TTL: Duration = Duration::from_secs(30);

impl Cluster {
    /// The positions bucket's name.
    fn positions_name(&self) -> String {
        format!("{}-positions", self.cfg.stream)
    }

    /// The positions bucket, made (replicated like the log) on first use.
    async fn positions(&self) -> Result<kv::Store, ClusterError> {
        if let Some(s) = self.positions.get() {
            return Ok(s.clone());
        }
        let name = self.positions_name();
        let store = match self.js.get_key_value(&name).await {
            Ok(s) => s,
            Err(_) => self
                .js
                .create_key_value(kv::Config {
                    bucket: name,
                    description: format!(
                        "hubsearch replicas' applied positions in the log {} (docs/cluster.md)",
                        self.cfg.stream
                    ),
                    history: 1,
                    max_age: POSITION_TTL,
                    storage: StorageType::File,
                    num_replicas: self.cfg.stream_replicas,
                    ..Default::default()
                })
                .await
                .map_err(nats)?,
        };
        let _ = self.positions.set(store.clone());
        Ok(store)
    }

    /// Write this replica's applied position (every second, with the log's
    /// end). A failure is retried at the next second.
    pub(super) async fn report_position(&self) {
        let applied = self.applied.get();
        let result = match self.positions().await {
            Ok(s) => s
                .put(&self.cfg.replica, applied.to_string().into())
                .await
                .map(|_| ())
                .map_err(nats),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.position_reported.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                // Once per outage, not every second.
                if self.position_reported.swap(false, Ordering::Relaxed) {
                    tracing::warn!("cluster: writing this replica's position: {e}");
                }
            }
        }
    }

    /// The applied positions of the replicas that wrote theirs in the last
    /// [`POSITION_TTL`]: (replica, position).
    pub(super) async fn live_positions(&self) -> Result<Vec<(String, u64)>, ClusterError> {
        let store = self.positions().await?;
        let mut keys = store.keys().await.map_err(nats)?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            names.push(k.map_err(nats)?);
        }
        let mut out = Vec::new();
        for name in names {
            // Expired since it was listed, or a server that has not seen
            // the write yet answered: this round purges nothing.
            let Some(v) = store.get(&name).await.map_err(nats)? else {
                return Err(ClusterError::Log(format!(
                    "replica {name}'s position was listed in the bucket {} but not found",
                    self.positions_name()
                )));
            };
            let text = String::from_utf8_lossy(&v);
            let p = text.trim().parse::<u64>().map_err(|_| {
                ClusterError::Log(format!(
                    "replica {name}'s position in the bucket {} is not a number: {text:?}",
                    self.positions_name()
                ))
            })?;
            out.push((name, p));
        }
        Ok(out)
    }
}
