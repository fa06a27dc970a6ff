//! `hubsearch serve` and `hubsearch keys`.

use crate::progress::Bars;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use hubsearch_engine::Engine;
use hubsearch_server::keys::{KeyStore, Principal};
use hubsearch_server::{AppState, RestoredFrom};

use crate::cli::{load_config, AnyError, Global};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: server.addr, 127.0.0.1:8080]
    #[arg(long)]
    pub addr: Option<String>,
    /// Import these card files into the index before serving (creates the index if missing)
    #[arg(long, value_name = "FILE")]
    pub import: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key (printed once; only its hash is stored in <index>/keys.json)
    Create {
        /// The builder (author) whose models the key may change
        #[arg(long, conflicts_with = "admin", required_unless_present = "admin")]
        builder: Option<String>,
        /// A key that may change any model and record paid calls
        #[arg(long)]
        admin: bool,
    },
    /// List the keys: prefix, holder, created, revoked (never a key itself)
    List {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key, named by its prefix (as `keys list` shows it) or whole;
    /// a running server refuses it from the next request on
    Revoke {
        /// The key's first characters (at least 4), or the whole key
        prefix: String,
    },
    /// Replace a key by a new one for the same holder (the old one is
    /// revoked in the same write); the new key is printed once
    Rotate {
        /// The key's first characters (at least 4), or the whole key
        prefix: String,
    },
}

pub fn serve(g: &Global, a: ServeArgs) -> Result<ExitCode, AnyError> {
    let mut config = load_config(g)?;
    if let Some(addr) = a.addr {
        config.server.addr = addr;
    }
    config.validate()?;
    let addr = config.server.addr.clone();
    if !a.import.is_empty() && config.cluster.enabled {
        return Err("serve --import in cluster mode would change one replica only (docs/cluster.md); seed every replica from the same index, or publish through the API".into());
    }
    if !a.import.is_empty() {
        let engine = Engine::open_or_create(config.clone())?;
        let bars = Bars::new(false);
        let report = engine.import(&a.import, &|p| bars.show(p))?;
        eprintln!(
            "imported {} new, {} updated, {} rejected",
            report.cards.imported,
            report.cards.updated,
            report.rejected.len()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let restored = restore(&config, &rt)?;
    let engine = Engine::open(config)?;
    let bars = Bars::new(false);
    if let Some(v) = engine.sync_vectors(&|p| bars.show(p))? {
        if v.embedded > 0 {
            eprintln!(
                "embedded {} cards that had no current vector ({:.0} cards/s)",
                v.embedded, v.cards_per_second
            );
        }
    }
    let engine = Arc::new(engine);
    // Cluster mode: join the log and catch up before taking traffic.
    #[cfg(feature = "cluster")]
    let cluster = if engine.config().cluster.enabled {
        Some(hubsearch_cluster::Cluster::join(
            engine.clone(),
            rt.handle().clone(),
            &|m| eprintln!("{m}"),
        )?)
    } else {
        None
    };
    #[cfg(not(feature = "cluster"))]
    if engine.config().cluster.enabled {
        return Err(crate::cli::NO_CLUSTER.into());
    }
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr()?;
        eprintln!(
            "hubsearch serving {} models on http://{local} (search page at /, API under /v1, Hugging Face compatible under /api)",
            engine.num_models()
        );
        hubsearch_server::run(listener, AppState::new(engine).with_restored(restored), hubsearch_server::shutdown_signal()).await?;
        eprintln!("shut down cleanly; ledger flushed");
        Ok::<_, AnyError>(())
    });
    // Served pages still on their way to the log get a few seconds.
    #[cfg(feature = "cluster")]
    if let Some(c) = cluster {
        c.shutdown(std::time::Duration::from_secs(5));
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Cluster mode: a state the log cannot bring up to date (none, or older
/// than the log's first position) is replaced by the latest snapshot in the
/// log's object store bucket (docs/cluster.md, Snapshots and truncation);
/// which one, for `/readyz`.
#[cfg(feature = "cluster")]
fn restore(
    config: &hubsearch_core::Config,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<RestoredFrom>, AnyError> {
    if !config.cluster.enabled {
        return Ok(None);
    }
    let r = hubsearch_cluster::restore_if_needed(config, rt.handle(), &|m| eprintln!("{m}"))?;
    Ok(r.map(|r| RestoredFrom {
        snapshot: r.snapshot,
        bucket: r.bucket,
        position: r.position,
        replica: r.replica,
        log_first: r.log_first,
    }))
}

/// Without the cluster client nothing is restored (cluster mode is refused).
#[cfg(not(feature = "cluster"))]
fn restore(
    _config: &hubsearch_core::Config,
    _rt: &tokio::runtime::Runtime,
) -> Result<Option<RestoredFrom>, AnyError> {
    Ok(None)
}

pub fn keys(g: &Global, cmd: KeysCommand) -> Result<ExitCode, AnyError> {
    let config = load_config(g)?;
    match cmd {
        KeysCommand::Create { builder, admin } => {
            let store = KeyStore::new(&config.index.dir);
            let key = store.create(Principal {
                builder: builder.clone(),
                admin,
            })?;
            let who = if admin {
                "admin".to_string()
            } else {
                format!("builder {}", builder.unwrap_or_default())
            };
            eprintln!(
                "created a key for {who} (stored hashed in {}); it is shown only now:",
                config.index.dir.join("keys.json").display()
            );
            println!("{key}");
        }
        KeysCommand::List { json } => {
            let keys = KeyStore::new(&config.index.dir).list();
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                for k in &keys {
                    let holder = match (&k.builder, k.admin) {
                        (_, true) => "admin".to_string(),
                        (Some(b), false) => format!("builder {b}"),
                        (None, false) => "-".to_string(),
                    };
                    let prefix = if k.prefix.is_empty() {
                        "(unnamed)"
                    } else {
                        &k.prefix
                    };
                    let state = match k.revoked_unix {
                        Some(t) => format!("revoked {}", hubsearch_core::card::rfc3339(t as i64)),
                        None => "active".to_string(),
                    };
                    let used = k.last_used_unix.map_or("never".to_string(), |t| {
                        hubsearch_core::card::rfc3339(t as i64)
                    });
                    println!(
                        "{prefix:<12} {holder:<24} created {}  last used {used}  {state}",
                        hubsearch_core::card::rfc3339(k.created_unix as i64)
                    );
                }
                eprintln!("{} keys", keys.len());
            }
        }
        KeysCommand::Revoke { prefix } => {
            let k = KeyStore::new(&config.index.dir).revoke(&prefix)?;
            eprintln!(
                "revoked {} ({}); a running server refuses it from the next request on",
                if k.prefix.is_empty() {
                    "the key"
                } else {
                    &k.prefix
                },
                if k.admin {
                    "admin".to_string()
                } else {
                    format!("builder {}", k.builder.unwrap_or_default())
                }
            );
        }
        KeysCommand::Rotate { prefix } => {
            let key = KeyStore::new(&config.index.dir).rotate(&prefix)?;
            eprintln!("revoked the old key; the new one is shown only now:");
            println!("{key}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
