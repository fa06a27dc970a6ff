//! Progress bars on stderr for the engine's long work (drawn only on a
//! terminal). The engine reports [`Progress`]; this draws it.

use std::sync::Mutex;
use std::time::Duration;

use hubsearch_engine::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// Draws an import's records and its embedding as two bars in turn.
pub struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars that draw nothing when `quiet`.
    pub fn new(quiet: bool) -> Bars {
        Bars {
            quiet,
            bar: Mutex::new(None),
        }
    }

    /// Show one step of progress.
    pub fn show(&self, p: Progress<'_>) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::Rejected { location, reason } => {
                let line = format!("rejected {location}: {reason}");
                match slot.as_ref() {
                    Some(b) => b.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
            _ if self.quiet => {}
            Progress::Records { read } => {
                slot.get_or_insert_with(|| {
                    bar(
                        ProgressBar::new_spinner(),
                        "{spinner} {elapsed_precise} {pos} records ({per_sec}) {msg}",
                    )
                })
                .set_position(read as u64);
            }
            Progress::Committed { commits } => {
                if let Some(b) = slot.as_ref() {
                    b.set_message(format!("{commits} commits"));
                }
            }
            Progress::Embedded { done, total } => {
                slot.get_or_insert_with(|| {
                    bar(
                        ProgressBar::new(total as u64),
                        "embedding {bar:30} {pos}/{len} cards ({per_sec}, eta {eta})",
                    )
                })
                .set_position(done as u64);
            }
            Progress::Done => {
                if let Some(b) = slot.take() {
                    b.finish_and_clear();
                }
            }
        }
    }
}

fn bar(b: ProgressBar, template: &str) -> ProgressBar {
    b.set_style(ProgressStyle::with_template(template).expect("valid template"));
    b.enable_steady_tick(Duration::from_millis(250));
    b
}
