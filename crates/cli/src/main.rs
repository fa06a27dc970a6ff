//! # hubsearch (the binary)
//!
//! A thin clap front over the engine: every command parses its flags, loads
//! the layered config, calls one engine function and prints the result (for
//! people, or as JSON with `--json`). Errors are one line on stderr and exit
//! code 1, or 3 when the index was built by another version of hubsearch
//! (scripts/run rebuilds it then).

mod backup;
mod bench;
mod calibrate;
mod cli;
mod eval;
mod export;
mod fairco;
mod groups;
mod ledger;
mod longrun;
mod ope;
mod progress;
mod serve;
mod study;
mod verify;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The embedder runs whole batches on one thread per worker (and each
    // search on one thread): candle's inner parallelism over rayon only adds
    // contention on small matrices. Set before any thread exists.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUBSEARCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(e.as_ref()))
        }
    }
}

/// 3 for an index built by another version of hubsearch, 1 for any other
/// error.
fn exit_code(e: &(dyn std::error::Error + 'static)) -> u8 {
    use hubsearch_engine::{Error, IndexError};
    let old = matches!(
        e.downcast_ref::<Error>(),
        Some(Error::Index(IndexError::OldSchema { .. }))
    ) || matches!(
        e.downcast_ref::<IndexError>(),
        Some(IndexError::OldSchema { .. })
    );
    if old {
        3
    } else {
        1
    }
}
