//! A replica's start from the object store bucket, before the engine opens
//! its directory (docs/cluster.md, Snapshots and truncation).

use std::time::{Duration, Instant};

use async_nats::jetstream;

use crate::connection::{client, stream_state};
use crate::error::ClusterError;
use crate::store;

/// A replica's start from the object store ([`restore_if_needed`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    /// The snapshot's name in the bucket (`snapshot-<position>-<replica>`).
    pub snapshot: String,
    pub bucket: String,
    /// The log position the snapshot has applied up to.
    pub position: u64,
    /// The replica that wrote it.
    pub replica: String,
    /// The log's first position when restoring.
    pub log_first: u64,
    pub files: usize,
    pub bytes: u64,
}

/// A directory beside `dir` named after it with `suffix`.
fn beside(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let name = dir
        .file_name()
        .map_or("index".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The log position an index directory's state has applied (the smaller
/// of its index's and its ledger's, as
/// [`Engine::applied_position`](hubsearch_engine::Engine::applied_position)).
/// The ledger is opened (and closed) only when the index's position alone
/// does not settle whether `first` is past it.
fn local_position(config: &hubsearch_core::Config, first: u64) -> Result<u64, ClusterError> {
    let dir = &config.index.dir;
    let index = std::fs::read_to_string(dir.join("cluster-position"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let path = dir.join("ledger.redb");
    if index + 1 < first || !path.is_file() {
        return Ok(if path.is_file() { index } else { 0 });
    }
    let key = &config.index.transparency_key;
    let key = (!key.is_empty()).then(|| std::path::Path::new(key.as_str()));
    let ledger = hubsearch_ledger::Ledger::open_with_key(&path, key)
        .map_err(|e| ClusterError::Log(format!("{}: {e}", path.display())))?;
    let position = ledger.position();
    let _ = ledger.close();
    Ok(index.min(position))
}

/// Cluster mode, before the engine opens `config.index.dir`: when the log
/// cannot bring the state there up to date (there is no index there, or
/// what it has applied is older than the log's first position: the log was
/// truncated after a snapshot, or trimmed by its limits), replace the
/// directory by the latest snapshot in the log's object store bucket, and
/// say which. `None` (the directory untouched) when the log does not exist
/// yet, can bring the state up to date, or the bucket holds no snapshot
/// recent enough (the engine or [`Cluster::join`](crate::Cluster::join) then refuses to start
/// and says why).
pub fn restore_if_needed(
    config: &hubsearch_core::Config,
    rt: &tokio::runtime::Handle,
    progress: &dyn Fn(&str),
) -> Result<Option<Restored>, ClusterError> {
    let cfg = &config.cluster;
    let dir = config.index.dir.clone();
    let bucket_name = store::bucket(cfg);
    rt.block_on(async {
        let js = jetstream::new(client(cfg).await?);
        let Some(state) = stream_state(&js, &cfg.stream, Duration::from_secs(120)).await? else {
            return Ok(None);
        };
        let first = state.first_sequence;
        let why = if !dir.join("text").join("meta.json").is_file() {
            format!("no index at {}", dir.display())
        } else if first <= 1 {
            return Ok(None);
        } else {
            let at = local_position(config, first)?;
            if at + 1 >= first {
                return Ok(None);
            }
            format!(
                "the state at {} has applied the log up to position {at} but the log starts at {first}",
                dir.display()
            )
        };
        let Some(bucket) = store::open(&js, cfg, false).await? else {
            progress(&format!(
                "cluster: {why}, and there is no object store bucket {bucket_name} to start from"
            ));
            return Ok(None);
        };
        let Some(latest) = store::list(&bucket).await?.pop() else {
            progress(&format!(
                "cluster: {why}, and the object store bucket {bucket_name} holds no snapshot"
            ));
            return Ok(None);
        };
        if latest.position + 1 < first {
            progress(&format!(
                "cluster: {why}, and the latest snapshot in the object store bucket {bucket_name} ({}) is older than the log's start",
                latest.name
            ));
            return Ok(None);
        }
        progress(&format!(
            "cluster: {why}; restoring it from snapshot {} (log position {}) in the object store bucket {bucket_name}",
            latest.name, latest.position
        ));
        let t0 = Instant::now();
        let tmp = beside(&dir, "restoring");
        let _ = std::fs::remove_dir_all(&tmp);
        let (m, bytes) = match store::download(&bucket, &latest.name, &tmp).await {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let io = |e: std::io::Error| ClusterError::Log(format!("restoring {}: {e}", dir.display()));
        let old = beside(&dir, "replaced");
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(io)?;
        }
        std::fs::rename(&tmp, &dir).map_err(io)?;
        let _ = std::fs::remove_dir_all(&old);
        let restored = Restored {
            snapshot: latest.name.clone(),
            bucket: bucket_name.clone(),
            position: m.position,
            replica: m.replica.clone(),
            log_first: first,
            files: m.files.len(),
            bytes,
        };
        progress(&format!(
            "cluster: restored {} from snapshot {} (log position {}, written by replica {}; {} files, {bytes} bytes, {:.1} s); the log starts at {first}",
            dir.display(),
            restored.snapshot,
            restored.position,
            restored.replica,
            restored.files,
            t0.elapsed().as_secs_f64()
        ));
        Ok(Some(restored))
    })
}
