//! Snapshots in the log's object store (docs/cluster.md, Snapshots in the
//! object store): a replica that writes snapshots publishes each one to a
//! JetStream object store bucket beside the log (`cluster.snapshot_bucket`,
//! by default `<stream>-snapshots`; replicated like the log), where every
//! replica can fetch it; a replica whose state the log cannot bring up to
//! date (none, or older than the log's first position) starts from the
//! latest one there.
//!
//! Layout: one object per file of the snapshot's directory, named
//! `snapshot-<position, 12 digits>-<replica>/<path>`, then, last, the
//! manifest `snapshot-<position>-<replica>` (JSON: position, replica, every
//! file's path and size). A snapshot without its manifest is incomplete
//! (an upload that stopped half-way) and is never read. The object store
//! checks each object's SHA-256 when it is read; the manifest's sizes are
//! checked too.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use async_nats::jetstream::{self, object_store};
use futures_util::StreamExt;
use hubsearch_core::config::ClusterConfig;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{nats, ClusterError};

/// Chunks of 512 KiB (NATS' default largest message is 1 MiB): fewer
/// round trips than the object store's default of 128 KiB; smaller when
/// the servers take smaller messages.
const CHUNK: usize = 512 * 1024;

/// The chunk size for servers whose largest message is `max_payload`
/// bytes (0: not known yet).
pub fn chunk_size(max_payload: usize) -> usize {
    if max_payload == 0 {
        return 128 * 1024;
    }
    CHUNK.min(max_payload.saturating_sub(16 * 1024).max(4 * 1024))
}

/// The bucket holding a stream's snapshots: `<stream, lower-cased>-snapshots`
/// (characters a bucket name cannot hold become `_`).
pub fn bucket_name(stream: &str) -> String {
    let s: String = stream
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{s}-snapshots")
}

/// The bucket this configuration's snapshots go to: `cluster.snapshot_bucket`,
/// or, when that is empty, the stream's ([`bucket_name`]).
pub fn bucket(cfg: &ClusterConfig) -> String {
    if cfg.snapshot_bucket.is_empty() {
        bucket_name(&cfg.stream)
    } else {
        cfg.snapshot_bucket.clone()
    }
}

/// A snapshot's name in the bucket.
pub fn snapshot_name(position: u64, replica: &str) -> String {
    format!("snapshot-{position:012}-{replica}")
}

/// The log position in a manifest's name (`None`: not a manifest).
fn position_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("snapshot-")?;
    if name.contains('/') {
        return None;
    }
    let digits = rest.get(..12)?;
    if !rest[12..].starts_with('-') {
        return None;
    }
    digits.parse().ok()
}

/// What a snapshot holds: its position, who wrote it, its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// 1: this layout.
    pub format: u32,
    /// The log position the snapshot's state has applied up to.
    pub position: u64,
    pub replica: String,
    pub created_unix: u64,
    /// Directories (relative, `/`-separated), empty ones included.
    pub dirs: Vec<String>,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Unix permission bits, restored with the file (`keys.json` and the
    /// call log's `transparency.key` are readable by their owner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A file's Unix permission bits.
fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// A complete snapshot in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Published {
    pub position: u64,
    pub name: String,
}

/// The configuration's bucket ([`bucket`]), if it exists; made
/// (replicated like the log) when `create`.
pub async fn open(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    create: bool,
) -> Result<Option<object_store::ObjectStore>, ClusterError> {
    let bucket = bucket(cfg);
    let (stream, replicas) = (&cfg.stream, cfg.stream_replicas);
    if crate::connection::stream_exists(js, &format!("OBJ_{bucket}")).await? {
        return js.get_object_store(&bucket).await.map(Some).map_err(nats);
    }
    if !create {
        return Ok(None);
    }
    js.create_object_store(object_store::Config {
        bucket: bucket.clone(),
        description: Some(format!(
            "hubsearch snapshots of the log {stream} (docs/cluster.md)"
        )),
        num_replicas: replicas,
        storage: jetstream::stream::StorageType::File,
        // S2 at rest: a snapshot is mostly the ledger, which compresses
        // about 2:1 (measured with zlib -1 on a 27,000-page ledger.redb).
        compression: true,
        ..Default::default()
    })
    .await
    .map(Some)
    .map_err(|e| ClusterError::Nats(format!("making the object store bucket {bucket}: {e}")))
}

/// Every file and directory under `dir`, relative, `/`-separated.
fn walk(
    root: &Path,
    dir: &Path,
    dirs: &mut Vec<String>,
    files: &mut Vec<(String, PathBuf)>,
) -> std::io::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .map_err(std::io::Error::other)?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if e.file_type()?.is_dir() {
            dirs.push(rel);
            walk(root, &path, dirs, files)?;
        } else {
            files.push((rel, path));
        }
    }
    Ok(())
}

/// Upload the snapshot directory `dir` (at log `position`, written by
/// `replica`): its files, then its manifest. Returns the manifest and the
/// bytes uploaded.
pub async fn upload(
    store: &object_store::ObjectStore,
    dir: &Path,
    position: u64,
    replica: &str,
    chunk: usize,
) -> Result<(String, Manifest, u64), ClusterError> {
    let io = |e: std::io::Error| ClusterError::Log(format!("snapshot {}: {e}", dir.display()));
    let name = snapshot_name(position, replica);
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    walk(dir, dir, &mut dirs, &mut files).map_err(io)?;
    let mut manifest = Manifest {
        format: 1,
        position,
        replica: replica.to_string(),
        created_unix: hubsearch_core::now_unix(),
        dirs,
        files: Vec::with_capacity(files.len()),
    };
    let mut bytes = 0u64;
    for (rel, path) in files {
        let mut f = tokio::fs::File::open(&path).await.map_err(io)?;
        let meta = f.metadata().await.map_err(io)?;
        let (size, mode) = (meta.len(), mode_of(&meta));
        let info = store
            .put(
                object_store::ObjectMetadata {
                    name: format!("{name}/{rel}"),
                    chunk_size: Some(chunk),
                    ..Default::default()
                },
                &mut f,
            )
            .await
            .map_err(|e| ClusterError::Nats(format!("uploading {rel} of {name}: {e}")))?;
        if info.size as u64 != size {
            return Err(ClusterError::Log(format!(
                "{rel} of {name} changed while it was uploaded ({size} bytes, {} sent)",
                info.size
            )));
        }
        bytes += size;
        manifest.files.push(ManifestFile {
            path: rel,
            size,
            mode,
        });
    }
    let json = serde_json::to_vec(&manifest).map_err(|e| ClusterError::Log(e.to_string()))?;
    // Last: a snapshot is complete, and readable, once its manifest is in.
    store
        .put(
            object_store::ObjectMetadata {
                name: name.clone(),
                description: Some(format!(
                    "hubsearch snapshot at log position {position}, written by replica {replica}"
                )),
                metadata: HashMap::from([
                    ("position".to_string(), position.to_string()),
                    ("replica".to_string(), replica.to_string()),
                ]),
                ..Default::default()
            },
            &mut json.as_slice(),
        )
        .await
        .map_err(|e| ClusterError::Nats(format!("uploading the manifest of {name}: {e}")))?;
    Ok((name, manifest, bytes))
}

/// The complete snapshots in the bucket (oldest first) and every object's
/// name.
async fn contents(
    store: &object_store::ObjectStore,
) -> Result<(Vec<Published>, Vec<String>), ClusterError> {
    let mut list = store.list().await.map_err(nats)?;
    let mut names = Vec::new();
    while let Some(info) = list.next().await {
        names.push(info.map_err(nats)?.name);
    }
    let mut snapshots: Vec<Published> = names
        .iter()
        .filter_map(|n| {
            position_of(n).map(|position| Published {
                position,
                name: n.clone(),
            })
        })
        .collect();
    snapshots.sort();
    Ok((snapshots, names))
}

/// The complete snapshots in the bucket, oldest first.
pub async fn list(store: &object_store::ObjectStore) -> Result<Vec<Published>, ClusterError> {
    Ok(contents(store).await?.0)
}

/// Keep the newest `keep` snapshots (at least one), whoever wrote them;
/// delete the others (manifest first, so a snapshot being deleted is never
/// read as complete), and the files of uploads that never finished below
/// the oldest kept. Returns the kept snapshots, oldest first.
pub async fn prune(
    store: &object_store::ObjectStore,
    keep: usize,
) -> Result<Vec<Published>, ClusterError> {
    let (snapshots, names) = contents(store).await?;
    let keep = keep.max(1);
    let cut = snapshots.len().saturating_sub(keep);
    let (old, kept) = snapshots.split_at(cut);
    let floor = kept.first().map_or(0, |s| s.position);
    let mut doomed: Vec<String> = Vec::new();
    for s in old {
        if let Err(e) = store.delete(&s.name).await {
            tracing::warn!("deleting snapshot {} from the bucket: {e}", s.name);
            continue;
        }
        doomed.push(format!("{}/", s.name));
    }
    // Files of uploads that stopped before their manifest: any prefix with
    // no manifest whose position is below the oldest kept snapshot (an
    // upload still running is at a newer position).
    let manifests: std::collections::BTreeSet<&str> =
        kept.iter().map(|s| s.name.as_str()).collect();
    let mut orphans: BTreeMap<String, ()> = BTreeMap::new();
    for n in &names {
        if let Some((prefix, _)) = n.split_once('/') {
            if !manifests.contains(prefix)
                && !old.iter().any(|s| s.name == prefix)
                && position_of(prefix).is_some_and(|p| p < floor)
            {
                orphans.insert(format!("{prefix}/"), ());
            }
        }
    }
    doomed.extend(orphans.into_keys());
    for n in &names {
        if doomed.iter().any(|p| n.starts_with(p.as_str())) {
            if let Err(e) = store.delete(n).await {
                tracing::warn!("deleting {n} from the snapshot bucket: {e}");
            }
        }
    }
    Ok(kept.to_vec())
}

/// A relative `/`-separated path of a manifest, checked to stay inside.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, ClusterError> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ClusterError::Log(format!(
            "a snapshot names the path {rel:?}, outside its directory"
        )));
    }
    Ok(root.join(p))
}

/// Read snapshot `name`'s manifest.
pub async fn manifest(
    store: &object_store::ObjectStore,
    name: &str,
) -> Result<Manifest, ClusterError> {
    let mut obj = store
        .get(name)
        .await
        .map_err(|e| ClusterError::Nats(format!("reading {name}: {e}")))?;
    let mut json = Vec::new();
    obj.read_to_end(&mut json)
        .await
        .map_err(|e| ClusterError::Nats(format!("reading {name}: {e}")))?;
    serde_json::from_slice(&json)
        .map_err(|e| ClusterError::Log(format!("the manifest of {name} does not parse: {e}")))
}

/// Download snapshot `name` into the directory `to` (made; it must not
/// hold anything else). Returns its manifest and the bytes read.
pub async fn download(
    store: &object_store::ObjectStore,
    name: &str,
    to: &Path,
) -> Result<(Manifest, u64), ClusterError> {
    let io = |e: std::io::Error| ClusterError::Log(format!("restoring into {}: {e}", to.display()));
    let m = manifest(store, name).await?;
    tokio::fs::create_dir_all(to).await.map_err(io)?;
    for d in &m.dirs {
        tokio::fs::create_dir_all(inside(to, d)?)
            .await
            .map_err(io)?;
    }
    let mut bytes = 0;
    for f in &m.files {
        let target = inside(to, &f.path)?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let object = format!("{name}/{}", f.path);
        let mut obj = store
            .get(&object)
            .await
            .map_err(|e| ClusterError::Nats(format!("reading {object}: {e}")))?;
        // Made with its permissions: a private file is never readable by
        // others, not even while it is written.
        let mut open = tokio::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        open.mode(f.mode.unwrap_or(0o644) & 0o777);
        let mut out = open.open(&target).await.map_err(io)?;
        // The object store checks the object's SHA-256 at its end.
        let n = tokio::io::copy(&mut obj, &mut out)
            .await
            .map_err(|e| ClusterError::Nats(format!("reading {object}: {e}")))?;
        out.flush().await.map_err(io)?;
        out.sync_all().await.map_err(io)?;
        if n != f.size {
            return Err(ClusterError::Log(format!(
                "{object}: {n} bytes read, the manifest says {}",
                f.size
            )));
        }
        bytes += n;
    }
    Ok((m, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_by_position_and_files_are_not_manifests() {
        assert_eq!(bucket_name("HUBSEARCH"), "hubsearch-snapshots");
        assert_eq!(chunk_size(1024 * 1024), 512 * 1024);
        assert_eq!(chunk_size(256 * 1024), 240 * 1024);
        assert_eq!(chunk_size(0), 128 * 1024);
        assert_eq!(bucket_name("A.b"), "a_b-snapshots");
        let n = snapshot_name(42, "r1");
        assert_eq!(n, "snapshot-000000000042-r1");
        assert_eq!(position_of(&n), Some(42));
        assert_eq!(position_of(&format!("{n}/text/meta.json")), None);
        assert_eq!(position_of("snapshot-42-r1"), None);
        assert_eq!(position_of("other"), None);
        let mut v = [
            Published {
                position: 100,
                name: snapshot_name(100, "a"),
            },
            Published {
                position: 99,
                name: snapshot_name(99, "b"),
            },
        ];
        v.sort();
        assert_eq!(v[0].position, 99);
        assert!(inside(Path::new("/x"), "../etc").is_err());
        assert!(inside(Path::new("/x"), "/etc").is_err());
        assert_eq!(
            inside(Path::new("/x"), "text/a").unwrap(),
            PathBuf::from("/x/text/a")
        );
    }

    /// `cluster.snapshot_bucket` names the bucket; empty, the stream does.
    #[test]
    fn the_bucket_is_the_configured_one_else_the_streams() {
        let mut cfg = ClusterConfig {
            stream: "LOG-2".into(),
            ..Default::default()
        };
        assert_eq!(bucket(&cfg), "log-2-snapshots");
        cfg.snapshot_bucket = "Team_snaps".into();
        assert_eq!(bucket(&cfg), "Team_snaps");
        assert_eq!(bucket(&ClusterConfig::default()), "hubsearch-snapshots");
    }
}
