//! The NATS client and the log's stream: connecting, making sure the stream
//! exists with this configuration's limits, reading its state, and reading
//! JetStream's publish errors.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use hubsearch_core::config::ClusterConfig;

use crate::error::{nats, ClusterError};

/// A client of the NATS servers (connecting in the background: requests
/// fail until a server answers).
pub(crate) async fn client(cfg: &ClusterConfig) -> Result<async_nats::Client, ClusterError> {
    async_nats::ConnectOptions::new()
        .name(format!("hubsearch-{}", cfg.replica))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(cfg.nats_urls.clone())
        .await
        .map_err(nats)
}

/// The stream `name`'s state, `None` when JetStream has no such stream;
/// retried until the servers answer or `patience` passes.
pub(crate) async fn stream_state(
    js: &jetstream::Context,
    name: &str,
    patience: Duration,
) -> Result<Option<stream::State>, ClusterError> {
    let deadline = Instant::now() + patience;
    loop {
        let e = match js.get_stream(name).await {
            Ok(s) => return Ok(Some(s.cached_info().state.clone())),
            Err(e) => e,
        };
        if let jetstream::context::GetStreamErrorKind::JetStream(j) = e.kind() {
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND {
                return Ok(None);
            }
        }
        if Instant::now() >= deadline {
            return Err(nats(e));
        }
        tracing::warn!("the cluster log does not answer yet ({e}); retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether JetStream has the stream `name` (an error when it cannot say).
pub(crate) async fn stream_exists(
    js: &jetstream::Context,
    name: &str,
) -> Result<bool, ClusterError> {
    Ok(stream_state(js, name, Duration::from_secs(30))
        .await?
        .is_some())
}

/// Connect to the NATS servers and make sure the stream exists (created
/// with `cfg.stream_replicas` copies on first use, its first position
/// `first`: a cluster restored from a backup at position P numbers its new
/// log from P + 1). Retries until a server answers or `patience` passes.
pub(crate) async fn connect(
    cfg: &ClusterConfig,
    patience: Duration,
    first: u64,
) -> Result<(async_nats::Client, jetstream::Context), ClusterError> {
    let client = client(cfg).await?;
    let js = jetstream::new(client.clone());
    let config = stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.stream.to_ascii_lowercase())],
        num_replicas: cfg.stream_replicas,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(cfg.duplicate_window_s),
        // Retention (docs/cluster.md): without it the log grew without
        // bound (~29 MB per 1,000 searches per copy; issue 27).
        max_age: Duration::from_secs(cfg.log_max_age_s),
        max_bytes: if cfg.log_max_bytes == 0 {
            -1
        } else {
            i64::try_from(cfg.log_max_bytes).unwrap_or(i64::MAX)
        },
        ..Default::default()
    };
    let deadline = Instant::now() + patience;
    loop {
        // Made, or brought to this configuration's limits if it exists.
        let made = if first > 1 && js.get_stream(&config.name).await.is_err() {
            let mut numbered = config.clone();
            numbered.first_sequence = Some(first);
            js.create_stream(numbered).await.map(|_| ()).map_err(nats)
        } else {
            js.create_or_update_stream(config.clone())
                .await
                .map(|_| ())
                .map_err(nats)
        };
        match made {
            Ok(()) => return Ok((client, js)),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!("the cluster log is not ready yet ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(nats(e)),
        }
    }
}

/// Whether a publish was refused because another publish with its message
/// id is still being stored (JetStream's "duplicate message id is in
/// process").
pub(crate) fn in_process(e: &jetstream::context::PublishError) -> bool {
    error_text(e).contains("in process")
}

/// A publish error's message with its sources'.
pub(crate) fn error_text(e: &jetstream::context::PublishError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
