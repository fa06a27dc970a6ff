//! `hubsearch backup`: a consistent point-in-time backup of a cluster's
//! state (docs/cluster.md, Backup and restore).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where to start from: a replica's snapshot, or the seed index every
    /// replica was started from (it is copied, never changed)
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Directory to write the backup into (as `snapshot-<log position>`)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Join the cluster as a replica of its own on a copy of `--from`, catch up
/// with the log's end, and write a snapshot there into `--out`.
pub fn run(g: &Global, a: BackupArgs) -> Result<ExitCode, AnyError> {
    let mut config = load_config(g)?;
    if !config.cluster.enabled {
        return Err("hubsearch backup backs up a cluster: give the cluster's config ([cluster] enabled = true, nats_urls)".into());
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = (&mut config, &a);
        Err(crate::cli::NO_CLUSTER.into())
    }
    #[cfg(feature = "cluster")]
    {
        use std::sync::Arc;
        if !a.from.is_dir() {
            return Err(format!("--from {}: not a directory", a.from.display()).into());
        }
        std::fs::create_dir_all(&a.out).map_err(|e| format!("--out {}: {e}", a.out.display()))?;
        let work = a.out.join(format!(".backup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        hubsearch_cluster::copy_dir(&a.from, &work)
            .map_err(|e| format!("copying {}: {e}", a.from.display()))?;
        // A replica of its own: its own name, no periodic snapshots.
        config.index.dir = work.clone();
        config.cluster.replica = format!("{}-backup", config.cluster.replica);
        config.cluster.snapshot_dir = String::new();
        let result = (|| -> Result<(PathBuf, u64), AnyError> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            // A `--from` the log cannot bring up to date (older than the
            // log's first position) is replaced by the latest snapshot in
            // the log's object store bucket.
            hubsearch_cluster::restore_if_needed(&config, rt.handle(), &|m| eprintln!("{m}"))?;
            let engine = Arc::new(hubsearch_engine::Engine::open(config)?);
            let r = hubsearch_cluster::Cluster::backup(
                engine.clone(),
                rt.handle().clone(),
                &a.out,
                &|m| eprintln!("{m}"),
            )?;
            engine.flush()?;
            Ok(r)
        })();
        let _ = std::fs::remove_dir_all(&work);
        let (dir, position) = result?;
        eprintln!("backup at log position {position}:");
        println!("{}", dir.display());
        Ok(ExitCode::SUCCESS)
    }
}
