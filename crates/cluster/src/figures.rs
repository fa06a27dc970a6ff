//! The log's and its snapshot bucket's figures, read from JetStream.

use std::time::Duration;

use async_nats::jetstream;
use hubsearch_core::config::ClusterConfig;

use crate::connection::{client, stream_state};
use crate::error::ClusterError;
use crate::store;

/// The log's and its snapshot bucket's figures (for operators and tests).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LogFigures {
    /// The log's first and last positions (first = last + 1 when empty).
    pub first: u64,
    pub last: u64,
    /// Events and bytes in the log (one copy).
    pub messages: u64,
    pub bytes: u64,
    /// Consumers reading it (every live replica has one).
    pub consumers: usize,
    pub bucket: String,
    /// Complete snapshots in the bucket: (position, name), oldest first.
    pub snapshots: Vec<(u64, String)>,
    /// Bytes of the bucket's stream (one copy).
    pub bucket_bytes: u64,
}

/// Read [`LogFigures`] (`None` when the log does not exist).
pub fn log_figures(cfg: &ClusterConfig) -> Result<Option<LogFigures>, ClusterError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Log(e.to_string()))?;
    rt.block_on(async {
        let js = jetstream::new(client(cfg).await?);
        let Some(state) = stream_state(&js, &cfg.stream, Duration::from_secs(30)).await? else {
            return Ok(None);
        };
        let bucket = store::bucket(cfg);
        let mut f = LogFigures {
            first: state.first_sequence,
            last: state.last_sequence,
            messages: state.messages,
            bytes: state.bytes,
            consumers: state.consumer_count,
            bucket: bucket.clone(),
            ..Default::default()
        };
        if let Some(b) =
            stream_state(&js, &format!("OBJ_{bucket}"), Duration::from_secs(30)).await?
        {
            f.bucket_bytes = b.bytes;
        }
        if let Some(b) = store::open(&js, cfg, false).await? {
            f.snapshots = store::list(&b)
                .await?
                .into_iter()
                .map(|p| (p.position, p.name))
                .collect();
        }
        Ok(Some(f))
    })
}
