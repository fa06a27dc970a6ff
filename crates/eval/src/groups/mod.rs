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

pub mod report;
pub mod svg;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use hubsearch_core::card::{key_of, unix_seconds};
use hubsearch_core::ModelCard;
use hubsearch_engine::ledger::{Book, PageLog};
use serde::Serialize;

use crate::exposure::{
    expeval_groups, run_exposure, target_exposure, ExpectedExposure, ExpevalOptions, UserModel,
};
use crate::trec::{Qrels, Query};

/// What a card tells the grouping: its builder, downloads and dates.
#[derive(Debug, Clone, PartialEq)]
pub struct CardFacts {
    pub id: String,
    pub builder: String,
    pub downloads: u64,
    /// Creation time (unix seconds), when the card has one.
    pub created: Option<i64>,
    /// Last modification time (unix seconds), when the card has one.
    pub modified: Option<i64>,
}

impl CardFacts {
    pub fn of(card: &ModelCard) -> CardFacts {
        CardFacts {
            id: card.id.clone(),
            builder: card.builder.clone(),
            downloads: card.downloads,
            created: card.created_at.as_deref().and_then(unix_seconds),
            modified: card.last_modified.as_deref().and_then(unix_seconds),
        }
    }

    /// The date a model's age is counted from: its creation, else its last
    /// modification (a lower bound on its age).
    pub fn date(&self) -> Option<i64> {
        self.created.or(self.modified)
    }
}

/// Card metadata by model key, and the hub's downloads for quantiles.
#[derive(Debug, Clone, Default)]
pub struct Cards {
    by_key: HashMap<u64, CardFacts>,
    /// Every card's downloads, ascending.
    sorted: Vec<u64>,
}

impl Cards {
    /// Cards by model key (`key_of(id)`); an id given twice keeps the
    /// later record, as an import does.
    pub fn new(facts: impl IntoIterator<Item = CardFacts>) -> Cards {
        let mut by_key = HashMap::new();
        for f in facts {
            by_key.insert(key_of(&f.id), f);
        }
        let mut sorted: Vec<u64> = by_key.values().map(|f| f.downloads).collect();
        sorted.sort_unstable();
        Cards { by_key, sorted }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn get(&self, model_key: u64) -> Option<&CardFacts> {
        self.by_key.get(&model_key)
    }

    /// Popularity quantile of a download count among these cards, as the
    /// hub computes it (`HubPopularity::quantile`): mid-rank, so ties share
    /// the middle of their run.
    pub fn quantile(&self, downloads: u64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let lo = self.sorted.partition_point(|&d| d < downloads);
        let hi = self.sorted.partition_point(|&d| d <= downloads);
        ((lo + hi) as f64 / 2.0) / n as f64
    }
}

/// One paid call of the export (`calls.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub seq: u64,
    pub time: u64,
    pub model: String,
    pub builder: String,
    pub amount_usd: f64,
    /// The page and 1-based rank the call named, if it named them.
    pub page: Option<u64>,
    pub rank: Option<u64>,
}

/// Where a tier's popularity quantile comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierSource {
    /// The quantile the page logged for the candidate (what the hub knew
    /// when it ranked), falling back to the cards' when a page has no
    /// candidate list.
    Logged,
    /// The quantile of the card's downloads among the cards given.
    Cards,
}

/// How models are grouped.
#[derive(Debug, Clone, PartialEq)]
pub enum Grouping {
    /// One group per builder.
    Builder,
    /// Popularity tiers: quantile cut points, ascending, in (0, 1).
    Tier { cuts: Vec<f64>, source: TierSource },
    /// Age at page time in days: cut points, ascending, > 0.
    Age { cuts_days: Vec<f64> },
}

/// The label of the group of models nothing places.
pub const UNKNOWN: &str = "unknown";

impl Grouping {
    pub fn name(&self) -> &'static str {
        match self {
            Grouping::Builder => "builder",
            Grouping::Tier { .. } => "tier",
            Grouping::Age { .. } => "age",
        }
    }

    /// Cut points must be finite and strictly ascending (tiers in (0, 1),
    /// ages above 0).
    pub fn check(&self) -> Result<(), String> {
        let (cuts, what, lo, hi) = match self {
            Grouping::Builder => return Ok(()),
            Grouping::Tier { cuts, .. } => (cuts, "--tiers", 0.0, 1.0),
            Grouping::Age { cuts_days } => (cuts_days, "--age-days", 0.0, f64::INFINITY),
        };
        for c in cuts {
            if !(c.is_finite() && *c > lo && *c < hi) {
                return Err(format!(
                    "{what} {c}: each cut point must be a number in ({lo}, {hi})"
                ));
            }
        }
        if cuts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("{what}: cut points must be strictly ascending"));
        }
        Ok(())
    }

    /// The fixed groups of tiers and ages, in order (a builder grouping's
    /// groups are found in the data).
    pub fn bucket_labels(&self) -> Vec<String> {
        let (cuts, var, unit) = match self {
            Grouping::Builder => return Vec::new(),
            Grouping::Tier { cuts, .. } => (cuts, "q", ""),
            Grouping::Age { cuts_days } => (cuts_days, "age", "d"),
        };
        if cuts.is_empty() {
            return vec!["all".into()];
        }
        let mut out = vec![format!("{var} < {}{unit}", cuts[0])];
        for w in cuts.windows(2) {
            out.push(format!("{}{unit} <= {var} < {}{unit}", w[0], w[1]));
        }
        out.push(format!("{var} >= {}{unit}", cuts[cuts.len() - 1]));
        out
    }

    /// Whether the grouping reads cards (ages always; tiers by the cards'
    /// downloads).
    pub fn needs_cards(&self) -> bool {
        matches!(
            self,
            Grouping::Age { .. }
                | Grouping::Tier {
                    source: TierSource::Cards,
                    ..
                }
        )
    }

    /// One line saying what the groups are.
    pub fn describe(&self) -> String {
        match self {
            Grouping::Builder => "one group per builder (the model id's namespace, as logged)".into(),
            Grouping::Tier { cuts, source } => format!(
                "popularity tiers by download quantile q (mid-rank, 1 = most downloaded) cut at {}; q from {}",
                join(cuts),
                match source {
                    TierSource::Logged => "the quantile each page logged for the candidate (cards' downloads where a page logged none)",
                    TierSource::Cards => "the cards' downloads",
                }
            ),
            Grouping::Age { cuts_days } => format!(
                "model age at page time in days (page time minus the card's created date, else its last-modified date) cut at {}; `unknown`: no card, no date, or a date after the page",
                join(cuts_days)
            ),
        }
    }
}

fn join(v: &[f64]) -> String {
    v.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")
}

/// Index of the bucket of `x` among ascending cut points.
fn bucket(cuts: &[f64], x: f64) -> usize {
    cuts.iter().take_while(|c| x >= **c).count()
}

/// Candidate slots the grouping could not place, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Unplaced {
    /// Tier: neither a logged quantile nor a card.
    pub no_quantile: usize,
    /// Age: the model has no card.
    pub no_card: usize,
    /// Age: the card has neither a created nor a last-modified date.
    pub no_date: usize,
    /// Age: the card's date is after the page (the card changed since).
    pub dated_after_page: usize,
}

/// What is known of a candidate where it is placed.
struct Ctx<'a> {
    model: u64,
    builder: u64,
    /// The builder's name where the record names it.
    builder_name: Option<&'a str>,
    quantile: Option<f64>,
    time: u64,
}

/// Places candidates in groups, interning the groups' labels.
struct Assigner<'a> {
    grouping: &'a Grouping,
    cards: Option<&'a Cards>,
    names: HashMap<u64, String>,
    labels: Vec<String>,
    index: HashMap<String, usize>,
    unplaced: Unplaced,
}

impl<'a> Assigner<'a> {
    fn new(grouping: &'a Grouping, cards: Option<&'a Cards>, names: HashMap<u64, String>) -> Self {
        let mut a = Assigner {
            grouping,
            cards,
            names,
            labels: Vec::new(),
            index: HashMap::new(),
            unplaced: Unplaced::default(),
        };
        for l in grouping.bucket_labels() {
            a.intern(l);
        }
        a
    }

    fn intern(&mut self, label: String) -> usize {
        if let Some(&i) = self.index.get(&label) {
            return i;
        }
        self.labels.push(label.clone());
        self.index.insert(label, self.labels.len() - 1);
        self.labels.len() - 1
    }

    fn card(&self, model: u64) -> Option<&'a CardFacts> {
        self.cards.and_then(|c| c.get(model))
    }

    fn group(&mut self, c: &Ctx) -> usize {
        match self.grouping {
            Grouping::Builder => {
                let label = match c.builder_name {
                    Some(n) => n.to_string(),
                    None => self
                        .names
                        .get(&c.builder)
                        .cloned()
                        .unwrap_or_else(|| format!("#{:016x}", c.builder)),
                };
                self.intern(label)
            }
            Grouping::Tier { cuts, source } => {
                let from_card = || {
                    self.cards
                        .and_then(|cs| cs.get(c.model).map(|f| cs.quantile(f.downloads)))
                };
                let q = match source {
                    TierSource::Logged => c.quantile.or_else(from_card),
                    TierSource::Cards => from_card(),
                };
                match q {
                    Some(q) => bucket(cuts, q),
                    None => {
                        self.unplaced.no_quantile += 1;
                        self.intern(UNKNOWN.into())
                    }
                }
            }
            Grouping::Age { cuts_days } => {
                let date = match self.card(c.model) {
                    None => Err(0),
                    Some(f) => f.date().ok_or(1),
                };
                match date {
                    Ok(d) if d <= c.time as i64 => {
                        bucket(cuts_days, (c.time as i64 - d) as f64 / 86_400.0)
                    }
                    other => {
                        match other {
                            Err(0) => self.unplaced.no_card += 1,
                            Err(_) => self.unplaced.no_date += 1,
                            Ok(_) => self.unplaced.dated_after_page += 1,
                        }
                        self.intern(UNKNOWN.into())
                    }
                }
            }
        }
    }
}

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

/// The disparity of ratios (order does not matter).
pub fn disparity(mut ratios: Vec<f64>) -> Disparity {
    let n = ratios.len();
    if n < 2 {
        return Disparity {
            groups: n,
            ..Default::default()
        };
    }
    ratios.sort_by(f64::total_cmp);
    // sum_{i<j} |x_i - x_j| = sum_k (2k - n - 1) x_(k), k = 1..n ascending.
    let sum: f64 = ratios
        .iter()
        .enumerate()
        .map(|(k, x)| (2.0 * (k + 1) as f64 - n as f64 - 1.0) * x)
        .sum();
    Disparity {
        max_min: Some(ratios[n - 1] - ratios[0]),
        mean_pairwise: Some(sum / (n * (n - 1) / 2) as f64),
        groups: n,
    }
}

/// A group's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acc {
    pub exposure: f64,
    pub merit: f64,
    pub calls: f64,
    pub income: f64,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.exposure += o.exposure;
        self.merit += o.merit;
        self.calls += o.calls;
        self.income += o.income;
    }
}

/// The exposure and impact disparities of groups' totals (groups with
/// merit > 0 only).
fn disparities(accs: impl Iterator<Item = Acc> + Clone) -> (Disparity, Disparity) {
    let with_merit = accs.filter(|a| a.merit > 0.0);
    (
        disparity(with_merit.clone().map(|a| a.exposure / a.merit).collect()),
        disparity(with_merit.map(|a| a.calls / a.merit).collect()),
    )
}

/// A page as the report uses it.
#[derive(Debug, Clone)]
struct Prepared {
    page: u64,
    time: u64,
    query: String,
    policy: String,
    first_rank: usize,
    /// What each group of the page got: (group, exposure and merit).
    deltas: Vec<(usize, Acc)>,
    /// Shown items: (rank, group, model id).
    shown: Vec<(usize, usize, String)>,
    /// Every candidate's (model key, group).
    candidates: Vec<(u64, usize)>,
    /// Calls on this page: (group, amount).
    calls: Vec<(usize, f64)>,
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

/// The figures cumulative to a window's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Pages so far.
    pub pages: usize,
    pub calls: f64,
    /// Amortized over every page so far.
    pub exposure: Disparity,
    pub impact: Disparity,
    /// Per distinct query (its pages so far), averaged over queries.
    pub per_query_exposure: QueryDisparity,
    pub per_query_impact: QueryDisparity,
    /// The plotted groups' shares, in `Report::plotted`'s order.
    pub shares: Vec<Shares>,
}

/// Final figures of one policy's pages alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRow {
    pub policy: String,
    pub pages: usize,
    pub calls: f64,
    pub exposure: Disparity,
    pub impact: Disparity,
    pub per_query_exposure: QueryDisparity,
    pub per_query_impact: QueryDisparity,
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

/// The final row of totals `a` against the grand totals `all`.
fn row(group: String, models: usize, slots: usize, shown: usize, a: &Acc, all: &Acc) -> GroupRow {
    let share = |x: f64, t: f64| if t > 0.0 { x / t } else { 0.0 };
    let opt_share = |x: f64, t: f64| (t > 0.0).then(|| x / t);
    let per = |x: f64| (a.merit > 0.0).then(|| x / a.merit);
    let es = share(a.exposure, all.exposure);
    let ms = share(a.merit, all.merit);
    let is = opt_share(a.calls, all.calls);
    GroupRow {
        group,
        models,
        candidate_slots: slots,
        impressions: shown,
        exposure: a.exposure,
        merit: a.merit,
        calls: a.calls,
        income_usd: a.income,
        exposure_share: es,
        merit_share: ms,
        impact_share: is,
        income_share: opt_share(a.income, all.income),
        exposure_per_merit: per(a.exposure),
        impact_per_merit: per(a.calls),
        exposure_vs_merit: (ms > 0.0).then(|| es / ms),
        impact_vs_merit: is.and_then(|i| (ms > 0.0).then(|| i / ms)),
    }
}

/// The windows' last page counts: `ceil(k n / w)` for k = 1..w, distinct.
pub fn window_ends(n: usize, w: usize) -> Vec<usize> {
    let w = w.max(1);
    let mut ends: Vec<usize> = (1..=w).map(|k| (k * n).div_ceil(w)).collect();
    ends.dedup();
    ends.retain(|&e| e > 0);
    ends
}

/// Per-query running totals: query -> group -> totals.
type PerQuery = HashMap<String, BTreeMap<usize, Acc>>;

fn per_query(q: &PerQuery) -> (QueryDisparity, QueryDisparity) {
    let (mut e, mut i) = (QueryDisparity::default(), QueryDisparity::default());
    let (mut se, mut pe, mut si, mut pi) = (0.0, 0.0, 0.0, 0.0);
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    for k in keys {
        let (de, di) = disparities(q[k].values().copied());
        if let (Some(a), Some(b)) = (de.max_min, de.mean_pairwise) {
            se += a;
            pe += b;
            e.queries += 1;
        }
        if let (Some(a), Some(b)) = (di.max_min, di.mean_pairwise) {
            si += a;
            pi += b;
            i.queries += 1;
        }
    }
    for (d, s, p) in [(&mut e, se, pe), (&mut i, si, pi)] {
        if d.queries > 0 {
            d.max_min = Some(s / d.queries as f64);
            d.mean_pairwise = Some(p / d.queries as f64);
        }
    }
    (e, i)
}

/// What accumulating pages gives: the totals per group and the figures at
/// each end.
struct Accumulated {
    totals: Vec<Acc>,
    windows: Vec<(
        usize,
        Vec<Acc>,
        Disparity,
        Disparity,
        QueryDisparity,
        QueryDisparity,
    )>,
}

/// Accumulate `pages` in order, with `timed` calls (group, amount) added at
/// the window of the given index, figures at each of `ends`.
fn accumulate(
    pages: &[&Prepared],
    timed: &[Vec<(usize, f64)>],
    ends: &[usize],
    groups: usize,
) -> Accumulated {
    let mut totals = vec![Acc::default(); groups];
    let mut pq: PerQuery = HashMap::new();
    let mut windows = Vec::new();
    let mut next = 0usize;
    for (w, &end) in ends.iter().enumerate() {
        for &(g, amount) in timed.get(w).map_or(&[][..], Vec::as_slice) {
            totals[g].calls += 1.0;
            totals[g].income += amount;
        }
        while next < end {
            let p = pages[next];
            let q = pq.entry(p.query.clone()).or_default();
            for (g, a) in &p.deltas {
                totals[*g].add(a);
                q.entry(*g).or_default().add(a);
            }
            for &(g, amount) in &p.calls {
                let call = Acc {
                    calls: 1.0,
                    income: amount,
                    ..Default::default()
                };
                totals[g].add(&call);
                q.entry(g).or_default().add(&call);
            }
            next += 1;
        }
        let (de, di) = disparities(totals.iter().copied());
        let (qe, qi) = per_query(&pq);
        windows.push((end, totals.clone(), de, di, qe, qi));
    }
    Accumulated { totals, windows }
}

/// The group report of a ledger export's pages and calls.
pub fn analyse(
    pages: &[PageLog],
    calls: &[Call],
    cards: Option<&Cards>,
    o: &Options,
) -> Result<Report, String> {
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
    let mut input = InputCounts {
        pages_read: pages.len(),
        calls_read: calls.len(),
        cards: cards.map_or(0, Cards::len),
        ..Default::default()
    };
    // Builder names by key: cards, then what pages and calls name.
    let mut names: HashMap<u64, String> = HashMap::new();
    if let Some(cs) = cards {
        for f in cs.by_key.values() {
            names.insert(key_of(&f.builder), f.builder.clone());
        }
    }
    for p in pages {
        for s in &p.shown {
            names.insert(key_of(&s.builder), s.builder.clone());
        }
    }
    for c in calls {
        names.insert(key_of(&c.builder), c.builder.clone());
    }
    let mut a = Assigner::new(&o.grouping, cards, names);

    // The used pages, in page order.
    let mut used: Vec<&PageLog> = Vec::new();
    let mut filtered: HashSet<u64> = HashSet::new();
    for p in pages {
        if p.book == Book::Listing && !o.listings {
            input.skipped_listing += 1;
            filtered.insert(p.page);
        } else if !o.policies.is_empty() && !o.policies.contains(&p.policy) {
            input.skipped_policy += 1;
            filtered.insert(p.page);
        } else {
            used.push(p);
        }
    }
    used.sort_by_key(|p| p.page);
    let everything = filtered.is_empty();
    let mut models: Vec<HashSet<u64>> = Vec::new();
    let mut slots: Vec<usize> = Vec::new();
    let mut shown_n: Vec<usize> = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::with_capacity(used.len());
    let mut queries: HashSet<&str> = HashSet::new();
    let mut zero_merit = 0usize;
    for p in &used {
        queries.insert(&p.query);
        let first = p.first_rank.max(1);
        if first > 1 {
            input.later_pages += 1;
        }
        let mut deltas: BTreeMap<usize, Acc> = BTreeMap::new();
        let mut shown = Vec::with_capacity(p.shown.len());
        let mut candidates = Vec::with_capacity(p.ranked.len().max(p.shown.len()));
        let mut place = |g: usize, model: u64, e: f64, m: f64, is_shown: bool| {
            if models.len() <= g {
                models.resize_with(g + 1, HashSet::new);
                slots.resize(g + 1, 0);
                shown_n.resize(g + 1, 0);
            }
            models[g].insert(model);
            slots[g] += 1;
            zero_merit += usize::from(m == 0.0);
            shown_n[g] += usize::from(is_shown);
            let d = deltas.entry(g).or_default();
            d.exposure += e;
            d.merit += m;
        };
        if p.ranked.is_empty() {
            input.pages_without_candidates += 1;
            for s in &p.shown {
                let key = key_of(&s.model);
                let g = a.group(&Ctx {
                    model: key,
                    builder: key_of(&s.builder),
                    builder_name: Some(&s.builder),
                    quantile: None,
                    time: p.time,
                });
                place(g, key, s.exposure, s.relevance, true);
                shown.push((s.rank, g, s.model.clone()));
                candidates.push((key, g));
            }
        } else {
            let lo = first - 1;
            for (j, c) in p.ranked.iter().enumerate() {
                let s = j.checked_sub(lo).and_then(|k| p.shown.get(k));
                if let Some(s) = s {
                    if key_of(&s.model) != c.model {
                        input.key_mismatches += 1;
                    }
                }
                let g = a.group(&Ctx {
                    model: c.model,
                    builder: c.builder,
                    builder_name: s
                        .filter(|s| key_of(&s.builder) == c.builder)
                        .map(|s| s.builder.as_str()),
                    quantile: Some(c.quantile),
                    time: p.time,
                });
                place(
                    g,
                    c.model,
                    s.map_or(0.0, |s| s.exposure),
                    c.merit,
                    s.is_some(),
                );
                if let Some(s) = s {
                    shown.push((s.rank, g, s.model.clone()));
                }
                candidates.push((c.model, g));
            }
            // Shown items past the candidate list (not expected): exposure
            // without merit.
            for s in p.shown.iter().skip(p.ranked.len().saturating_sub(lo)) {
                input.key_mismatches += 1;
                let key = key_of(&s.model);
                let g = a.group(&Ctx {
                    model: key,
                    builder: key_of(&s.builder),
                    builder_name: Some(&s.builder),
                    quantile: None,
                    time: p.time,
                });
                place(g, key, s.exposure, 0.0, true);
                shown.push((s.rank, g, s.model.clone()));
            }
        }
        input.candidate_slots += candidates.len();
        input.impressions += shown.len();
        prepared.push(Prepared {
            page: p.page,
            time: p.time,
            query: p.query.clone(),
            policy: p.policy.clone(),
            first_rank: first,
            deltas: deltas.into_iter().collect(),
            shown,
            candidates,
            calls: Vec::new(),
        });
    }
    input.pages_used = prepared.len();
    input.first_time = prepared.iter().map(|p| p.time).min().unwrap_or(0);
    input.last_time = prepared.iter().map(|p| p.time).max().unwrap_or(0);
    input.zero_merit_slots = zero_merit;
    input.distinct_queries = queries.len();
    let ends = window_ends(prepared.len(), o.windows);

    // Calls: on their page where they name a used one, else by time.
    let at: HashMap<u64, usize> = prepared
        .iter()
        .enumerate()
        .map(|(i, p)| (p.page, i))
        .collect();
    let mut timed: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ends.len()];
    for c in calls {
        let own = |a: &mut Assigner, time: u64| {
            a.group(&Ctx {
                model: key_of(&c.model),
                builder: key_of(&c.builder),
                builder_name: Some(&c.builder),
                quantile: None,
                time,
            })
        };
        match c.page.and_then(|p| at.get(&p).copied()) {
            Some(i) => {
                let hit = prepared[i]
                    .shown
                    .iter()
                    .find(|(r, _, m)| Some(*r as u64) == c.rank && *m == c.model)
                    .map(|s| s.1);
                let g = match hit {
                    Some(g) => {
                        input.calls_on_pages += 1;
                        g
                    }
                    None => {
                        input.calls_rank_mismatch += 1;
                        own(&mut a, prepared[i].time)
                    }
                };
                prepared[i].calls.push((g, c.amount_usd));
            }
            None => {
                let named_filtered = c.page.is_some_and(|p| filtered.contains(&p));
                if named_filtered || !everything || prepared.is_empty() {
                    input.calls_excluded += 1;
                    continue;
                }
                input.calls_by_time += 1;
                let w = ends
                    .iter()
                    .position(|&e| prepared[e - 1].time >= c.time)
                    .unwrap_or(ends.len() - 1);
                let g = own(&mut a, c.time);
                timed[w].push((g, c.amount_usd));
            }
        }
    }
    let groups = a.labels.len();
    models.resize_with(groups, HashSet::new);
    slots.resize(groups, 0);
    shown_n.resize(groups, 0);

    let refs: Vec<&Prepared> = prepared.iter().collect();
    let acc = accumulate(&refs, &timed, &ends, groups);
    let mut all = Acc::default();
    for t in &acc.totals {
        all.add(t);
    }

    // Report order: buckets as cut, `unknown` last; builders by exposure.
    let mut order: Vec<usize> = (0..groups)
        .filter(|&g| {
            let t = &acc.totals[g];
            g < o.grouping.bucket_labels().len()
                || slots[g] > 0
                || t.merit > 0.0
                || t.exposure > 0.0
                || t.calls > 0.0
        })
        .collect();
    if o.grouping == Grouping::Builder {
        order.sort_by(|&x, &y| {
            acc.totals[y]
                .exposure
                .total_cmp(&acc.totals[x].exposure)
                .then_with(|| acc.totals[y].merit.total_cmp(&acc.totals[x].merit))
                .then_with(|| a.labels[x].cmp(&a.labels[y]))
        });
    }
    let rows: Vec<GroupRow> = order
        .iter()
        .map(|&g| {
            row(
                a.labels[g].clone(),
                models[g].len(),
                slots[g],
                shown_n[g],
                &acc.totals[g],
                &all,
            )
        })
        .collect();
    let top = o.top.max(1);
    let others = (rows.len() > top).then(|| {
        let rest = &order[top..];
        let mut sum = Acc::default();
        let (mut m, mut s, mut n) = (0, 0, 0);
        for &g in rest {
            sum.add(&acc.totals[g]);
            m += models[g].len();
            s += slots[g];
            n += shown_n[g];
        }
        row(format!("{} others", rest.len()), m, s, n, &sum, &all)
    });
    let total_models: HashSet<u64> = models.iter().flatten().copied().collect();
    let totals = row(
        "all".into(),
        total_models.len(),
        slots.iter().sum(),
        shown_n.iter().sum(),
        &all,
        &all,
    );
    let plotted: Vec<usize> = order.iter().copied().take(8.min(top)).collect();
    // Groups without merit: outside the ratios, so outside the disparities.
    let without: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&g| acc.totals[g].merit <= 0.0)
        .collect();
    let mut lacking = Acc::default();
    for &g in &without {
        lacking.add(&acc.totals[g]);
    }
    let without_merit = WithoutMerit {
        groups: without.len(),
        shown: without
            .iter()
            .filter(|&&g| acc.totals[g].exposure > 0.0)
            .count(),
        exposure_share: if all.exposure > 0.0 {
            lacking.exposure / all.exposure
        } else {
            0.0
        },
        impact_share: (all.calls > 0.0).then(|| lacking.calls / all.calls),
    };
    // Who sets the final largest gaps.
    let mut extremes = Vec::new();
    for (measure, value) in [
        ("exposure", (|a: &Acc| a.exposure) as fn(&Acc) -> f64),
        ("impact", |a: &Acc| a.calls),
    ] {
        let mut with: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&g| acc.totals[g].merit > 0.0)
            .collect();
        let ratio = |g: usize| value(&acc.totals[g]) / acc.totals[g].merit;
        with.sort_by(|&x, &y| ratio(x).total_cmp(&ratio(y)));
        if with.len() < 2 {
            continue;
        }
        for (which, g) in [("highest", with[with.len() - 1]), ("lowest", with[0])] {
            extremes.push(Extreme {
                measure,
                which,
                group: a.labels[g].clone(),
                ratio: ratio(g),
                value: value(&acc.totals[g]),
                merit: acc.totals[g].merit,
                candidate_slots: slots[g],
            });
        }
    }
    let windows = acc
        .windows
        .iter()
        .map(|(end, t, de, di, qe, qi)| {
            let mut sum = Acc::default();
            for x in t {
                sum.add(x);
            }
            Window {
                pages: *end,
                calls: sum.calls,
                exposure: *de,
                impact: *di,
                per_query_exposure: *qe,
                per_query_impact: *qi,
                shares: plotted
                    .iter()
                    .map(|&g| Shares {
                        exposure: if sum.exposure > 0.0 {
                            t[g].exposure / sum.exposure
                        } else {
                            0.0
                        },
                        merit: if sum.merit > 0.0 {
                            t[g].merit / sum.merit
                        } else {
                            0.0
                        },
                        impact: (sum.calls > 0.0).then(|| t[g].calls / sum.calls),
                    })
                    .collect(),
            }
        })
        .collect();

    // Each policy's pages alone.
    let mut policies: Vec<&str> = prepared.iter().map(|p| p.policy.as_str()).collect();
    policies.sort_unstable();
    policies.dedup();
    let by_policy = policies
        .iter()
        .map(|pol| {
            let sub: Vec<&Prepared> = prepared.iter().filter(|p| p.policy == *pol).collect();
            let r = accumulate(&sub, &[], &[sub.len()], groups);
            let (_, t, de, di, qe, qi) = r.windows.into_iter().next().expect("one end");
            PolicyRow {
                policy: pol.to_string(),
                pages: sub.len(),
                calls: t.iter().map(|x| x.calls).sum(),
                exposure: de,
                impact: di,
                per_query_exposure: qe,
                per_query_impact: qi,
            }
        })
        .collect();

    let expected_exposure = o
        .judged
        .as_ref()
        .map(|j| group_ee(&prepared, j, &mut a, cards, top));

    Ok(Report {
        grouping: o.grouping.name().into(),
        definition: o.grouping.describe(),
        input: InputCounts {
            unplaced: a.unplaced,
            ..input
        },
        totals,
        groups: rows.into_iter().take(top).collect(),
        others,
        group_count: order.len(),
        without_merit,
        extremes,
        plotted: plotted.iter().map(|&g| a.labels[g].clone()).collect(),
        windows,
        by_policy,
        expected_exposure,
    })
}

/// Group-level expected exposure of the judged queries, from their used
/// first pages (every rank from 1, as expeval reads a ranking).
fn group_ee(
    prepared: &[Prepared],
    j: &Judged,
    a: &mut Assigner,
    cards: Option<&Cards>,
    top: usize,
) -> GroupEe {
    let mut by_query: HashMap<&str, Vec<&Prepared>> = HashMap::new();
    for p in prepared {
        by_query.entry(p.query.as_str()).or_default().push(p);
    }
    let mut out = GroupEe {
        options: j.options,
        queries_judged: j.queries.len(),
        queries_matched: 0,
        queries_scored: 0,
        rankings: 0,
        later_pages_skipped: 0,
        mean: ExpectedExposure::default(),
        groups: Vec::new(),
        per_query: Vec::new(),
    };
    let mut eps_sum: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    let empty = HashMap::new();
    for q in &j.queries {
        let Some(pages) = by_query.get(q.text.as_str()) else {
            continue;
        };
        let firsts: Vec<&&Prepared> = pages.iter().filter(|p| p.first_rank == 1).collect();
        out.later_pages_skipped += pages.len() - firsts.len();
        if firsts.is_empty() {
            continue;
        }
        out.queries_matched += 1;
        let rankings: Vec<Vec<String>> = firsts
            .iter()
            .map(|p| {
                let mut s = p.shown.clone();
                s.sort_by_key(|x| x.0);
                s.into_iter().map(|x| x.2).collect()
            })
            .collect();
        // Each document's group: where the query's pages placed it (the
        // last page wins), else by its card at the query's last page.
        let mut placed: HashMap<u64, usize> = HashMap::new();
        for p in pages.iter() {
            for &(k, g) in &p.candidates {
                placed.insert(k, g);
            }
        }
        let last_time = pages.iter().map(|p| p.time).max().unwrap_or(0);
        let judged = j.qrels.get(&q.qid).unwrap_or(&empty);
        let mut doc_group: HashMap<String, Vec<i64>> = HashMap::new();
        let docs = rankings.iter().flatten().chain(judged.keys());
        for d in docs {
            if doc_group.contains_key(d) {
                continue;
            }
            let key = key_of(d);
            let g = match placed.get(&key) {
                Some(&g) => g,
                None => {
                    let builder = cards
                        .and_then(|c| c.get(key))
                        .map(|f| f.builder.clone())
                        .unwrap_or_else(|| d.split('/').next().unwrap_or(d).to_string());
                    a.group(&Ctx {
                        model: key,
                        builder: key_of(&builder),
                        builder_name: Some(&builder),
                        quantile: None,
                        time: last_time,
                    })
                }
            };
            doc_group.insert(d.clone(), vec![g as i64]);
        }
        let Some(raw) = expeval_groups(&rankings, judged, &doc_group, &j.options) else {
            continue;
        };
        out.queries_scored += 1;
        out.rankings += rankings.len();
        out.mean.disparity += raw.disparity;
        out.mean.relevance += raw.relevance;
        out.mean.difference += raw.difference;
        // The groups' exposure and target, as expeval_groups sums them.
        let kept = j.options.judged(judged);
        let eps = run_exposure(&rankings, &kept, &j.options);
        let target = target_exposure(&kept, &j.options);
        for d in kept.keys() {
            let g = doc_group[d][0] as usize;
            let e = eps_sum.entry(g).or_default();
            e.0 += eps.get(d).copied().unwrap_or(0.0);
            e.1 += target.get(d).copied().unwrap_or(0.0);
        }
        out.per_query.push(EeQuery {
            qid: q.qid.clone(),
            query: q.text.clone(),
            rankings: rankings.len(),
            raw,
        });
    }
    let n = out.queries_scored.max(1) as f64;
    out.mean.disparity /= n;
    out.mean.relevance /= n;
    out.mean.difference /= n;
    out.groups = eps_sum
        .into_iter()
        .map(|(g, (e, t))| EeGroup {
            group: a.labels[g].clone(),
            exposure: e / n,
            target: t / n,
        })
        .collect();
    out.groups
        .sort_by(|x, y| y.target.total_cmp(&x.target).then(x.group.cmp(&y.group)));
    if out.groups.len() > top {
        let rest = out.groups.split_off(top);
        out.groups.push(EeGroup {
            group: format!("{} others", rest.len()),
            exposure: rest.iter().map(|g| g.exposure).sum(),
            target: rest.iter().map(|g| g.target).sum(),
        });
    }
    out
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
