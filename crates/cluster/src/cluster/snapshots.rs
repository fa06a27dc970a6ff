//! Snapshots: written to a directory, published to the object store bucket,
//! and the log truncated up to the oldest one kept there.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hubsearch_engine::Engine;

use super::Cluster;
use crate::error::{nats, ClusterError};
use crate::store;

impl Cluster {
    /// Write a snapshot of this replica (index, vectors, ledger, positions)
    /// into `cluster.snapshot_dir/snapshot-<position>`: applying pauses, the
    /// ledger and vectors are flushed, the index directory is copied, and
    /// the oldest snapshots beyond `cluster.snapshots_kept` are removed.
    /// Serving goes on meanwhile (in cluster mode only the applier writes).
    /// Returns its directory and log position.
    pub fn snapshot(&self, engine: &Engine) -> Result<(std::path::PathBuf, u64), ClusterError> {
        let root = std::path::PathBuf::from(&self.cfg.snapshot_dir);
        let (target, position) = self.snapshot_to(engine, &root)?;
        let log = |e: std::io::Error| ClusterError::Log(format!("snapshot: {e}"));
        let mut all: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
            .map_err(log)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot-") && !n.ends_with(".tmp"))
            })
            .collect();
        all.sort();
        let keep = self.cfg.snapshots_kept.max(1);
        if all.len() > keep {
            for old in &all[..all.len() - keep] {
                let _ = std::fs::remove_dir_all(old);
            }
        }
        Ok((target, position))
    }

    /// One round of the snapshot thread: a snapshot (unless nothing was
    /// applied since the last one, which is in the bucket), published to
    /// the object store bucket, the bucket pruned to `snapshots_kept`, and,
    /// with `cluster.truncate_log` (the default), the log truncated up to
    /// the oldest snapshot kept there (docs/cluster.md, Snapshots and
    /// truncation).
    pub(super) fn snapshot_round(&self, engine: &Engine) -> Result<(), ClusterError> {
        let applied = self.applied.get();
        let done = self.last_snapshot.load(Ordering::Relaxed);
        if applied != done || self.published.load(Ordering::Relaxed) != done {
            let (dir, position) = self.snapshot(engine)?;
            tracing::info!(
                "cluster snapshot written: {} (log position {position})",
                dir.display()
            );
            self.publish(&dir, position)?;
        }
        if self.cfg.truncate_log {
            self.truncate()?;
        }
        Ok(())
    }

    /// Publish the snapshot in `dir` (at `position`) to the object store
    /// bucket and keep the newest `snapshots_kept` there.
    fn publish(&self, dir: &std::path::Path, position: u64) -> Result<(), ClusterError> {
        let t0 = Instant::now();
        let bucket = store::bucket(&self.cfg);
        self.rt.block_on(async {
            let b = store::open(&self.js, &self.cfg, true)
                .await?
                .ok_or_else(|| ClusterError::Log(format!("no object store bucket {bucket}")))?;
            let chunk = store::chunk_size(self.client.server_info().max_payload);
            let (name, m, bytes) =
                store::upload(&b, dir, position, &self.cfg.replica, chunk).await?;
            tracing::info!(
                "cluster snapshot {name} published to the object store bucket {bucket}: {} files, {bytes} bytes, {:.1} s",
                m.files.len(),
                t0.elapsed().as_secs_f64()
            );
            let kept = store::prune(&b, self.cfg.snapshots_kept).await?;
            if let Some(oldest) = kept.first() {
                self.covered.fetch_max(oldest.position, Ordering::Relaxed);
            }
            self.published.store(position, Ordering::Relaxed);
            Ok(())
        })
    }

    /// Purge the log up to the oldest snapshot kept in the bucket, but
    /// never past what a live replica has applied: the smallest of the
    /// positions replicas wrote to the positions bucket in the last 30 s
    /// (`positions.rs`) and of the delivered positions of the stream's
    /// consumers (every replica applies the log through one; replicas of
    /// version 1 write no position). A replica gone for longer than 30 s is
    /// no longer waited for and, when it comes back behind the log, starts
    /// from the bucket's latest snapshot.
    /// Everything purged is in every kept snapshot: cards, pages, calls and
    /// keys alike.
    fn truncate(&self) -> Result<(), ClusterError> {
        let covered = self.covered.load(Ordering::Relaxed);
        if covered == 0 {
            return Ok(());
        }
        // Bounded: a server that stops answering must not hold the
        // snapshot thread (the next round tries again).
        let round = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), self.truncate_round(covered)).await
        });
        round.unwrap_or_else(|_| {
            Err(ClusterError::Log(
                "truncating the log: no answer within 30 s".into(),
            ))
        })
    }

    /// One truncation round (see [`Cluster::truncate`]).
    async fn truncate_round(&self, covered: u64) -> Result<(), ClusterError> {
        let mut stream = self.js.get_stream(&self.cfg.stream).await.map_err(nats)?;
        let mut upto = covered;
        let mut consumers = stream.consumers();
        while let Some(c) = consumers.next().await {
            upto = upto.min(c.map_err(nats)?.delivered.stream_sequence);
        }
        // A replica whose consumer's server is gone is not in that
        // list; its position in the bucket is (an error: no purge).
        for (_, applied) in self.live_positions().await? {
            upto = upto.min(applied);
        }
        let first = stream.info().await.map_err(nats)?.state.first_sequence;
        if upto < first {
            return Ok(());
        }
        let purged = stream
            .purge()
            .sequence(upto + 1)
            .await
            .map_err(nats)?
            .purged;
        self.truncated.fetch_max(upto, Ordering::Relaxed);
        tracing::info!(
            "cluster log truncated: positions {first}..={upto} purged ({purged} events; the oldest snapshot kept is at {covered}); the log starts at {}",
            upto + 1
        );
        Ok(())
    }

    /// Write a snapshot of this replica into `root/snapshot-<position>`
    /// (see [`Cluster::snapshot`]), keeping every other snapshot there:
    /// its directory and position.
    pub fn snapshot_to(
        &self,
        engine: &Engine,
        root: &std::path::Path,
    ) -> Result<(std::path::PathBuf, u64), ClusterError> {
        let log = |e: std::io::Error| ClusterError::Log(format!("snapshot: {e}"));
        let _paused = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        engine
            .flush()
            .map_err(|e| ClusterError::Log(format!("snapshot: {e}")))?;
        // Everything up to the applier's position is applied and flushed:
        // the copy resumes after it (the index's and ledger's own positions
        // move only with their own events).
        engine
            .mark_applied(self.applied.get())
            .map_err(|e| ClusterError::Log(format!("snapshot: {e}")))?;
        let position = engine.applied_position();
        std::fs::create_dir_all(root).map_err(log)?;
        let name = format!("snapshot-{position:012}");
        let tmp = root.join(format!("{name}.tmp"));
        // The text index merges segments in the background (applying is
        // paused, merging is not): a file a merge removes while it is being
        // copied is not found, and the copy is taken again from the start.
        let mut attempt = 0;
        loop {
            let _ = std::fs::remove_dir_all(&tmp);
            match copy_dir(engine.dir(), &tmp) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(log(e)),
            }
        }
        let target = root.join(&name);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&tmp, &target).map_err(log)?;
        drop(_paused);
        self.last_snapshot.store(position, Ordering::Relaxed);
        Ok((target, position))
    }
}

/// Copy a directory tree (files and directories; lock files included,
/// which are harmless copies): a snapshot, or `hubsearch backup`'s start.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}
