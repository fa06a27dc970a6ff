//! Progress of long work (imports, embedding), reported through a callback:
//! the engine says what happened, the caller decides how to show it (the
//! CLI draws progress bars; tests and the server ignore it).

use crate::source::Location;

/// One step of progress.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// Records read so far by an import.
    Records { read: usize },
    /// The import committed its `commits`-th batch.
    Committed { commits: usize },
    /// A record was not imported, and why (also in the import report).
    Rejected {
        location: &'a Location,
        reason: &'a str,
    },
    /// Cards embedded so far, of `total` to embed.
    Embedded { done: usize, total: usize },
    /// The current stage (reading records, embedding) is finished.
    Done,
}

/// Where progress goes.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress<'_>) + Sync);

/// A callback that shows nothing.
pub fn silent(_: Progress<'_>) {}
