//! Reading an export: the pages used, each reduced to what its groups got
//! ([`Prepared`]), and the paid calls placed on their pages or in time.

use std::collections::{BTreeMap, HashMap, HashSet};

use hubsearch_core::card::key_of;
use hubsearch_core::BuilderKey;
use hubsearch_engine::ledger::{Book, PageLog};

use super::accumulate::Acc;
use super::cards::{Call, Cards};
use super::figures::InputCounts;
use super::grouping::{Assigner, Ctx};
use super::Options;

/// A page as the report uses it.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub page: u64,
    pub time: u64,
    pub query: String,
    pub policy: String,
    pub first_rank: usize,
    /// What each group of the page got: (group, exposure and merit).
    pub deltas: Vec<(usize, Acc)>,
    /// Shown items: (rank, group, model id).
    pub shown: Vec<(usize, usize, String)>,
    /// Every candidate's (model key, group).
    pub candidates: Vec<(u64, usize)>,
    /// Calls on this page: (group, amount).
    pub calls: Vec<(usize, f64)>,
}

/// Builder names by key: cards, then what pages and calls name (the last
/// one read wins).
pub(super) fn builder_names(
    pages: &[PageLog],
    calls: &[Call],
    cards: Option<&Cards>,
) -> HashMap<u64, String> {
    let mut names: HashMap<u64, String> = HashMap::new();
    if let Some(cs) = cards {
        for f in cs.facts() {
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
    names
}

/// The pages the options keep, and the ids of those they filter out.
pub(super) struct Selection<'p> {
    /// In page order.
    pub used: Vec<&'p PageLog>,
    pub filtered: HashSet<u64>,
}

/// Per group, over the used pages: distinct models, candidate slots and
/// impressions; and the candidate slots with merit 0.
#[derive(Debug, Default)]
pub(super) struct GroupCounts {
    pub models: Vec<HashSet<u64>>,
    pub slots: Vec<usize>,
    pub shown: Vec<usize>,
    pub zero_merit: usize,
}

impl GroupCounts {
    /// Room for groups `0..groups`.
    pub fn resize(&mut self, groups: usize) {
        self.models.resize_with(groups, HashSet::new);
        self.slots.resize(groups, 0);
        self.shown.resize(groups, 0);
    }
}

/// The used pages, prepared in page order, and what their candidates
/// counted per group.
pub(super) struct PreparedPages {
    pub pages: Vec<Prepared>,
    pub counts: GroupCounts,
}

/// Calls placed by time (naming no used page): per window, (group, amount).
pub(super) type Timed = Vec<Vec<(usize, f64)>>;

/// Reading an export: the assigner that places models in groups (and
/// interns the groups' labels, in the order first met), and the counts of
/// what was read.
pub(super) struct Reading<'a> {
    pub assigner: Assigner<'a>,
    pub input: InputCounts,
}

/// What one page gives its groups, while it is read.
struct PageParts<'c> {
    counts: &'c mut GroupCounts,
    deltas: BTreeMap<usize, Acc>,
    shown: Vec<(usize, usize, String)>,
    candidates: Vec<(u64, usize)>,
}

impl PageParts<'_> {
    /// One candidate slot of group `g`: its exposure `e` (0 unless shown)
    /// and merit `m`.
    fn place(&mut self, g: usize, model: u64, e: f64, m: f64, is_shown: bool) {
        let counts = &mut *self.counts;
        if counts.models.len() <= g {
            counts.resize(g + 1);
        }
        counts.models[g].insert(model);
        counts.slots[g] += 1;
        counts.zero_merit += usize::from(m == 0.0);
        counts.shown[g] += usize::from(is_shown);
        let d = self.deltas.entry(g).or_default();
        d.exposure += e;
        d.merit += m;
    }
}

impl Reading<'_> {
    /// The pages the options keep (fair listings only with
    /// `o.listings`, the given policies only), in page order.
    pub fn select<'p>(&mut self, pages: &'p [PageLog], o: &Options) -> Selection<'p> {
        let mut used: Vec<&PageLog> = Vec::new();
        let mut filtered: HashSet<u64> = HashSet::new();
        for p in pages {
            if p.book == Book::Listing && !o.listings {
                self.input.skipped_listing += 1;
                filtered.insert(p.page);
            } else if !o.policies.is_empty() && !o.policies.contains(&p.policy) {
                self.input.skipped_policy += 1;
                filtered.insert(p.page);
            } else {
                used.push(p);
            }
        }
        used.sort_by_key(|p| p.page);
        Selection { used, filtered }
    }

    /// Every used page prepared, in order.
    pub fn prepare(&mut self, used: &[&PageLog]) -> PreparedPages {
        let mut counts = GroupCounts::default();
        let mut pages: Vec<Prepared> = Vec::with_capacity(used.len());
        let mut queries: HashSet<&str> = HashSet::new();
        for p in used {
            queries.insert(&p.query);
            pages.push(self.prepare_page(p, &mut counts));
        }
        let input = &mut self.input;
        input.pages_used = pages.len();
        input.first_time = pages.iter().map(|p| p.time).min().unwrap_or(0);
        input.last_time = pages.iter().map(|p| p.time).max().unwrap_or(0);
        input.zero_merit_slots = counts.zero_merit;
        input.distinct_queries = queries.len();
        PreparedPages { pages, counts }
    }

    /// One page: every candidate placed with its merit, every shown item
    /// with its exposure. Pages logged before candidate lists were take
    /// their shown items as the candidates (merit = shown relevance).
    fn prepare_page(&mut self, p: &PageLog, counts: &mut GroupCounts) -> Prepared {
        let first = p.first_rank.max(1);
        if first > 1 {
            self.input.later_pages += 1;
        }
        let mut parts = PageParts {
            counts,
            deltas: BTreeMap::new(),
            shown: Vec::with_capacity(p.shown.len()),
            candidates: Vec::with_capacity(p.ranked.len().max(p.shown.len())),
        };
        if p.ranked.is_empty() {
            self.input.pages_without_candidates += 1;
            for s in &p.shown {
                let key = key_of(s.model.as_str());
                let g = self
                    .assigner
                    .group(&Ctx::named(s.model.as_str(), &s.builder, p.time));
                parts.place(g, key, s.exposure, s.relevance, true);
                parts.shown.push((s.rank, g, s.model.to_string()));
                parts.candidates.push((key, g));
            }
        } else {
            self.place_ranked(p, first - 1, &mut parts);
        }
        self.input.candidate_slots += parts.candidates.len();
        self.input.impressions += parts.shown.len();
        Prepared {
            page: p.page,
            time: p.time,
            query: p.query.clone(),
            policy: p.policy.clone(),
            first_rank: first,
            deltas: parts.deltas.into_iter().collect(),
            shown: parts.shown,
            candidates: parts.candidates,
            calls: Vec::new(),
        }
    }

    /// A page's candidate list, whose shown items start at 0-based rank
    /// `lo`.
    fn place_ranked(&mut self, p: &PageLog, lo: usize, parts: &mut PageParts) {
        for (j, c) in p.ranked.iter().enumerate() {
            let s = j.checked_sub(lo).and_then(|k| p.shown.get(k));
            if let Some(s) = s {
                if key_of(s.model.as_str()) != c.model.0 {
                    self.input.key_mismatches += 1;
                }
            }
            let g = self.assigner.group(&Ctx {
                model: c.model,
                builder: c.builder,
                builder_name: s
                    .filter(|s| BuilderKey::of(&s.builder) == c.builder)
                    .map(|s| s.builder.as_str()),
                quantile: Some(c.quantile),
                time: p.time,
            });
            parts.place(
                g,
                c.model.0,
                s.map_or(0.0, |s| s.exposure),
                c.merit,
                s.is_some(),
            );
            if let Some(s) = s {
                parts.shown.push((s.rank, g, s.model.to_string()));
            }
            parts.candidates.push((c.model.0, g));
        }
        // Shown items past the candidate list (not expected): exposure
        // without merit.
        for s in p.shown.iter().skip(p.ranked.len().saturating_sub(lo)) {
            self.input.key_mismatches += 1;
            let g = self
                .assigner
                .group(&Ctx::named(s.model.as_str(), &s.builder, p.time));
            parts.place(g, key_of(s.model.as_str()), s.exposure, 0.0, true);
            parts.shown.push((s.rank, g, s.model.to_string()));
        }
    }

    /// Calls: on their page where they name a used one (grouped as the
    /// shown item they name, else by their own model), else by time into
    /// the window of `ends` their timestamp falls in (only when no page was
    /// filtered out).
    pub fn place_calls(
        &mut self,
        calls: &[Call],
        pages: &mut [Prepared],
        selection: &Selection,
        ends: &[usize],
    ) -> Timed {
        let everything = selection.filtered.is_empty();
        let at: HashMap<u64, usize> = pages.iter().enumerate().map(|(i, p)| (p.page, i)).collect();
        let mut timed: Timed = vec![Vec::new(); ends.len()];
        for c in calls {
            match c.page.and_then(|p| at.get(&p).copied()) {
                Some(i) => {
                    let page = &mut pages[i];
                    let hit = page
                        .shown
                        .iter()
                        .find(|(r, _, m)| Some(*r as u64) == c.rank && *m == c.model)
                        .map(|s| s.1);
                    let g = match hit {
                        Some(g) => {
                            self.input.calls_on_pages += 1;
                            g
                        }
                        None => {
                            self.input.calls_rank_mismatch += 1;
                            self.assigner
                                .group(&Ctx::named(&c.model, &c.builder, page.time))
                        }
                    };
                    page.calls.push((g, c.amount_usd));
                }
                None => {
                    let named_filtered = c.page.is_some_and(|p| selection.filtered.contains(&p));
                    if named_filtered || !everything || pages.is_empty() {
                        self.input.calls_excluded += 1;
                        continue;
                    }
                    self.input.calls_by_time += 1;
                    let w = ends
                        .iter()
                        .position(|&e| pages[e - 1].time >= c.time)
                        .unwrap_or(ends.len() - 1);
                    let g = self
                        .assigner
                        .group(&Ctx::named(&c.model, &c.builder, c.time));
                    timed[w].push((g, c.amount_usd));
                }
            }
        }
        timed
    }
}
