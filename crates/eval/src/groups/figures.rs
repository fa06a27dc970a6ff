//! The figures a group report holds: what [`analyse`](super::analyse)
//! returns, `groups.json` serialises and [`report`](super::report) renders.

use serde::Serialize;

use super::grouping::Unplaced;
use crate::exposure::{ExpectedExposure, ExpevalOptions};

/// The disparity of a set of groups' ratios.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Disparity {
    /// `max_G ratio(G) - min_G ratio(G)` (None below two groups).
    pub max_min: Option<f64>,
    /// Mean over pairs of `|ratio(G) - ratio(G')|` (None below two groups).
    pub mean_pairwise: Option<f64>,
    /// Groups with merit, the pairs' members.
    pub groups: usize,
}

/// Per-query disparities averaged over the distinct queries with at least
/// two groups with merit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QueryDisparity {
    pub max_min: Option<f64>,
    pub mean_pairwise: Option<f64>,
    pub queries: usize,
}

/// Counts of what was read and used.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputCounts {
    pub pages_read: usize,
    pub pages_used: usize,
    pub skipped_listing: usize,
    pub skipped_policy: usize,
    /// Pages logged before candidate lists were: merit from the shown
    /// items' relevance.
    pub pages_without_candidates: usize,
    /// Used pages that start below rank 1 (second pages and later).
    pub later_pages: usize,
    /// The used pages' first and last times (unix seconds; 0 without pages).
    pub first_time: u64,
    pub last_time: u64,
    pub distinct_queries: usize,
    pub candidate_slots: usize,
    /// Candidate slots whose logged merit is 0.
    pub zero_merit_slots: usize,
    pub impressions: usize,
    /// Shown items whose model key differs from the candidate list's at
    /// their rank (should be 0).
    pub key_mismatches: usize,
    pub calls_read: usize,
    /// Calls joined to a used page's shown item by (page, rank).
    pub calls_on_pages: usize,
    /// Calls that named a used page but a rank it did not show, or another
    /// model: placed on the page, grouped by their own model.
    pub calls_rank_mismatch: usize,
    /// Calls naming no page (or a page not in the export), placed in time
    /// by their timestamp; only when every page is used.
    pub calls_by_time: usize,
    /// Calls left out: they named a page filtered out, or named none while
    /// a filter was set.
    pub calls_excluded: usize,
    pub cards: usize,
    pub unplaced: Unplaced,
}

/// One group's final figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub group: String,
    /// Distinct models seen as candidates.
    pub models: usize,
    pub candidate_slots: usize,
    pub impressions: usize,
    pub exposure: f64,
    pub merit: f64,
    pub calls: f64,
    pub income_usd: f64,
    pub exposure_share: f64,
    pub merit_share: f64,
    /// None without calls.
    pub impact_share: Option<f64>,
    pub income_share: Option<f64>,
    /// `E(G) / M(G)` (None without merit).
    pub exposure_per_merit: Option<f64>,
    /// `I(G) / M(G)` (None without merit).
    pub impact_per_merit: Option<f64>,
    /// Exposure share over merit share: 1 = exposure in proportion.
    pub exposure_vs_merit: Option<f64>,
    pub impact_vs_merit: Option<f64>,
}

/// One group's shares at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Shares {
    pub exposure: f64,
    pub merit: f64,
    pub impact: Option<f64>,
}

/// The disparities of pages in sequence: up to a window's end, or one
/// policy's pages alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageFigures {
    /// Pages so far.
    pub pages: usize,
    pub calls: f64,
    /// Amortized over every page so far.
    pub exposure: Disparity,
    pub impact: Disparity,
    /// Per distinct query (its pages so far), averaged over queries.
    pub per_query_exposure: QueryDisparity,
    pub per_query_impact: QueryDisparity,
}

/// The figures cumulative to a window's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    #[serde(flatten)]
    pub figures: PageFigures,
    /// The plotted groups' shares, in `Report::plotted`'s order.
    pub shares: Vec<Shares>,
}

/// Final figures of one policy's pages alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRow {
    pub policy: String,
    #[serde(flatten)]
    pub figures: PageFigures,
}

/// Group-level expected exposure of one judged query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EeQuery {
    pub qid: String,
    pub query: String,
    /// First pages of the query used as ranking samples.
    pub rankings: usize,
    pub raw: ExpectedExposure,
}

/// One group's mean expected exposure and target over the scored queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EeGroup {
    pub group: String,
    pub exposure: f64,
    pub target: f64,
}

/// Group-level expected exposure (expeval's `-G`) from the logged rankings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupEe {
    pub options: ExpevalOptions,
    pub queries_judged: usize,
    /// Judged queries with at least one used first page.
    pub queries_matched: usize,
    /// Those expeval scores (a relevant document with a group).
    pub queries_scored: usize,
    pub rankings: usize,
    /// Later pages (first rank > 1) of matched queries, not used.
    pub later_pages_skipped: usize,
    /// Means over the scored queries.
    pub mean: ExpectedExposure,
    /// The groups with the largest targets (as many as the tables list),
    /// then the rest summed in one row.
    pub groups: Vec<EeGroup>,
    pub per_query: Vec<EeQuery>,
}

/// Groups whose candidates all had merit 0: their ratios are undefined, so
/// the disparities leave them out (FairCo does too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WithoutMerit {
    pub groups: usize,
    /// Of them, those shown at all.
    pub shown: usize,
    pub exposure_share: f64,
    pub impact_share: Option<f64>,
}

/// A group at one end of the final ratios.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extreme {
    /// `exposure` (E/M) or `impact` (I/M).
    pub measure: &'static str,
    /// `highest` or `lowest`.
    pub which: &'static str,
    pub group: String,
    pub ratio: f64,
    /// Its exposure or calls.
    pub value: f64,
    pub merit: f64,
    pub candidate_slots: usize,
}

/// A group report: every figure report.md and the plots show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub grouping: String,
    pub definition: String,
    pub input: InputCounts,
    pub totals: GroupRow,
    /// Groups in report order (buckets in order; builders by exposure,
    /// descending), at most `top` of them.
    pub groups: Vec<GroupRow>,
    /// The groups beyond `top`, summed (None when every group is listed).
    pub others: Option<GroupRow>,
    /// Groups in all (every group with a candidate or a call, and every
    /// tier or age band).
    pub group_count: usize,
    pub without_merit: WithoutMerit,
    /// The groups with the highest and lowest final ratios.
    pub extremes: Vec<Extreme>,
    pub plotted: Vec<String>,
    pub windows: Vec<Window>,
    pub by_policy: Vec<PolicyRow>,
    pub expected_exposure: Option<GroupEe>,
}
