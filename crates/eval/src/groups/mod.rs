//! Group reports from a ledger export (docs/metrics.md, Group reports):
//! who, as a group (a builder, a popularity tier, an age band), got how much
//! of the exposure and of the paid calls against how much of the merit, over
//! time and per query.
//!
//! The measures are FairCo's (Morik, Singh, Hong & Joachims, "Controlling
//! Fairness and Bias in Dynamic Learning-to-Rank", SIGIR 2020; reference
//! code `MarcoMorik/Dynamic-Fairness`, `Simulation.py`): per group `G`, the
//! cumulative exposure `E(G)` (the attention weight of every shown rank its
//! models held), the cumulative merit `M(G)` (every candidate's logged
//! merit, shown or not, on every page it was a candidate of) and the
//! cumulative impact `I(G)` (paid calls); the amortized disparity of two
//! groups is `E(G)/M(G) - E(G')/M(G')` (the paper's `D_tau`, whose `tau`s
//! cancel), and over many groups it is summarised as the largest gap
//! (`max_G - min_G`, what FairCo's error term reads) and as the mean
//! absolute gap over pairs (the reference code's `overall_fairness`).
//! Impact likewise with `I(G)`.
//!
//! The module computes; `hubsearch groups` (crates/cli/src/groups.rs) reads
//! the export and writes what [`report`] renders.
//!
//! [`analyse`] runs in phases, a module each: `cards` and `grouping` say
//! what a model's group is; `prepare` reads the used pages into what each
//! group got and places the paid calls; `accumulate` sums them page by page
//! into FairCo's totals and disparities at each window's end; `summary`
//! makes the tables and `ee` the group expected exposure; `figures` holds
//! what comes out.

mod accumulate;
mod cards;
mod ee;
mod figures;
mod grouping;
mod prepare;
pub mod report;
mod summary;
pub mod svg;
#[cfg(test)]
mod tests;

pub use accumulate::{disparity, window_ends, Acc};
pub use cards::{Call, CardFacts, Cards};
pub use figures::{
    Disparity, EeGroup, EeQuery, Extreme, GroupEe, GroupRow, InputCounts, PageFigures, PolicyRow,
    QueryDisparity, Report, Shares, Window, WithoutMerit,
};
pub use grouping::{Grouping, TierSource, Unplaced, UNKNOWN};

use hubsearch_engine::ledger::PageLog;

use crate::exposure::{ExpevalOptions, UserModel};
use crate::trec::{Qrels, Query};
use accumulate::accumulate;
use grouping::Assigner;
use prepare::{builder_names, Prepared, Reading};
use summary::{by_policy, windows, Final};

/// How a group report is computed.
#[derive(Debug, Clone)]
pub struct Options {
    pub grouping: Grouping,
    /// Points in time: the page sequence cut into this many windows of
    /// (nearly) equal page counts, figures cumulative to each window's end.
    pub windows: usize,
    /// Only pages of these policies (empty: every policy).
    pub policies: Vec<String>,
    /// Count fair listings' pages too (their own book, every card merit 1).
    pub listings: bool,
    /// Groups listed one by one in the tables (the rest summed in one
    /// row); the plots draw at most 8.
    pub top: usize,
    /// Group-level expected exposure against judgments.
    pub judged: Option<Judged>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            grouping: Grouping::Builder,
            windows: 10,
            policies: Vec::new(),
            listings: false,
            top: 15,
            judged: None,
        }
    }
}

/// Judged queries for group-level expected exposure.
#[derive(Debug, Clone)]
pub struct Judged {
    pub queries: Vec<Query>,
    pub qrels: Qrels,
    pub options: ExpevalOptions,
}

/// The group report of a ledger export's pages and calls.
pub fn analyse(
    pages: &[PageLog],
    calls: &[Call],
    cards: Option<&Cards>,
    o: &Options,
) -> Result<Report, String> {
    check(o, cards)?;
    let mut reading = Reading {
        assigner: Assigner::new(&o.grouping, cards, builder_names(pages, calls, cards)),
        input: InputCounts {
            pages_read: pages.len(),
            calls_read: calls.len(),
            cards: cards.map_or(0, Cards::len),
            ..Default::default()
        },
    };
    let selection = reading.select(pages, o);
    let mut prepared = reading.prepare(&selection.used);
    let ends = window_ends(prepared.pages.len(), o.windows);
    let timed = reading.place_calls(calls, &mut prepared.pages, &selection, &ends);
    let groups = reading.assigner.labels.len();
    prepared.counts.resize(groups);

    let refs: Vec<&Prepared> = prepared.pages.iter().collect();
    let acc = accumulate(&refs, &timed, &ends, groups);
    let top = o.top.max(1);
    let tables = Final::new(&reading.assigner.labels, &prepared.counts, &acc.totals)
        .tables(&o.grouping, top);
    let windows = windows(&acc.windows, &tables.plotted);
    let by_policy = by_policy(&prepared.pages, groups);
    let expected_exposure = o
        .judged
        .as_ref()
        .map(|j| ee::group_ee(&prepared.pages, j, &mut reading.assigner, top));

    let labels = &reading.assigner.labels;
    Ok(Report {
        grouping: o.grouping.name().into(),
        definition: o.grouping.describe(),
        input: InputCounts {
            unplaced: reading.assigner.unplaced,
            ..reading.input
        },
        totals: tables.totals,
        groups: tables.rows.into_iter().take(top).collect(),
        others: tables.others,
        group_count: tables.order.len(),
        without_merit: tables.without_merit,
        extremes: tables.extremes,
        plotted: tables.plotted.iter().map(|&g| labels[g].clone()).collect(),
        windows,
        by_policy,
        expected_exposure,
    })
}

/// The grouping's cut points are valid, and it has the cards it reads.
fn check(o: &Options, cards: Option<&Cards>) -> Result<(), String> {
    o.grouping.check()?;
    if o.grouping.needs_cards() && cards.is_none_or(Cards::is_empty) {
        return Err(format!(
            "grouping by {} needs cards (their {})",
            o.grouping.name(),
            if matches!(o.grouping, Grouping::Age { .. }) {
                "dates"
            } else {
                "downloads"
            }
        ));
    }
    Ok(())
}

/// expeval's rbp browsing model with patience `p`, `-C` off: the replay's
/// default (docs/metrics.md, Exposure).
pub fn rbp(p: f64) -> ExpevalOptions {
    ExpevalOptions {
        model: UserModel::Rbp { patience: p },
        complete: false,
        binarize: false,
    }
}
