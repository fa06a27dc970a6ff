//! The long run (docs/ranking.md, Long run): a million pages or more of
//! mixed real-corpus traffic served under each policy from an empty book,
//! with nDCG@10 on the judged queries, expected exposure loss (EE-L) and
//! the tail's share of exposure measured window by window.
//!
//! Traffic: the judged dev queries, and queries generated from the hub's
//! most downloaded cards (each card's name, and each task), in one pool
//! whose order is shuffled once; page `t` asks the pool's query drawn from
//! a Zipf law over that order (`P(k) ~ 1 / k^s`), the same sequence for
//! every policy. Each distinct query is retrieved once by the engine and
//! its candidates made once by the engine's candidates stage (merit is the
//! calibrated probability: no paid calls happen in the run, so it does not
//! change); per page only the policy ranks, against the run's own
//! exposure book, and the page's delta is applied to it (the same
//! `page_delta` the ledger applies; model groups, log attention, pages of
//! 10). A policy therefore sees exactly what it would read from the
//! ledger's model book, without paying for the ledger's disk and log.

use std::collections::HashMap;
use std::time::Instant;

use hubsearch_core::{AttentionKind, Filter, Group, ListingSort, Mode, PolicyKind, SearchRequest};
use hubsearch_engine::Engine;
use hubsearch_eval::exposure::{expeval, ExpevalOptions, UserModel};
use hubsearch_eval::metrics::ndcg;
use hubsearch_eval::trec::{Qrels, Query};
use hubsearch_rank::{page_delta, rank, Attention, Candidate, ExposureBook, Policy};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::svg::{line_chart, Series};

/// What to run.
#[derive(Debug, Clone)]
pub struct LongRunOptions {
    /// Pages served per policy.
    pub pages: usize,
    /// Measurement windows (equal numbers of pages).
    pub windows: usize,
    pub policies: Vec<PolicyKind>,
    pub mode: Mode,
    /// Generated queries: names of the most downloaded cards (plus every
    /// task among them).
    pub generated: usize,
    /// The Zipf exponent of the query repeat distribution.
    pub zipf: f64,
    /// Hits a user sees per page.
    pub page: usize,
    pub seed: u64,
    /// Rankings kept per judged query and window for EE-L.
    pub ee_samples: usize,
}

impl Default for LongRunOptions {
    fn default() -> Self {
        LongRunOptions {
            pages: 1_000_000,
            windows: 20,
            policies: vec![
                PolicyKind::Relevance,
                PolicyKind::Popularity,
                PolicyKind::Stochastic,
                PolicyKind::Fair,
                PolicyKind::FairImpact,
            ],
            mode: Mode::Hybrid,
            generated: 2000,
            zipf: 1.0,
            page: 10,
            seed: 7,
            ee_samples: 100,
        }
    }
}

/// One distinct query of the pool, retrieved once.
struct Pooled {
    /// Its judgments, for a judged query.
    judged: Option<HashMap<String, u32>>,
    cands: Vec<Candidate>,
    /// Model ids of the candidates (judged queries only; else empty).
    ids: Vec<String>,
    /// Whether each candidate's model is in the hub's tail (outside the top
    /// 10% by downloads).
    tail: Vec<bool>,
    /// Each candidate's group in each of [`GROUPINGS`].
    groups: [Vec<u8>; 3],
}

/// The group reports' groupings and their groups' names: popularity tiers
/// of models (by downloads), builders (by their models' downloads), and
/// models' age (the year of the card's `last_modified`).
pub const GROUPINGS: [(&str, &[&str]); 3] = [
    ("model popularity", &["top 1%", "top 1-10%", "tail 90%"]),
    (
        "builder popularity",
        &[
            "top 10 builders",
            "rest of top 10% builders",
            "other builders",
        ],
    ),
    (
        "model age",
        &["modified 2022", "modified 2021", "earlier or unknown"],
    ),
];

/// One group's share of a window's exposure and of its merit.
#[derive(Debug, Clone, Serialize)]
pub struct GroupShare {
    pub grouping: String,
    pub group: String,
    pub exposure_share: f64,
    pub merit_share: f64,
    /// `exposure_share / merit_share`: 1 is exposure proportional to merit.
    pub ratio: f64,
}

/// Figures of one window of one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Pages served by the window's end.
    pub pages: usize,
    /// Mean nDCG@10 over the window's judged pages.
    pub ndcg10: f64,
    /// Judged pages in the window.
    pub judged_pages: usize,
    /// Mean EE-L (rbp, patience 0.5, as expeval) over the judged queries
    /// served in the window, each over its rankings there.
    pub ee_l: f64,
    /// The tail's share of the window's exposure.
    pub tail_share: f64,
    /// Each group's share of the window's exposure and merit (amortized over
    /// the window's pages).
    pub groups: Vec<GroupShare>,
}

/// One policy's run.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRun {
    pub policy: String,
    pub params: Vec<(String, f64)>,
    pub windows: Vec<Window>,
    /// Over the whole run.
    pub ndcg10: f64,
    pub ee_l: f64,
    pub tail_share: f64,
    pub pages_per_second: f64,
}

/// The run's report.
#[derive(Debug, Clone, Serialize)]
pub struct LongRun {
    pub pages: usize,
    pub mode: Mode,
    pub zipf: f64,
    pub distinct_queries: usize,
    pub judged_queries: usize,
    /// Share of pages that asked a judged query.
    pub judged_share: f64,
    /// Share of pages taken by the 10 most asked queries.
    pub top10_share: f64,
    pub retrieval_seconds: f64,
    pub runs: Vec<PolicyRun>,
}

/// Run the long run over `engine` with the judged `sets`.
pub fn long_run(
    engine: &Engine,
    sets: &[(Vec<Query>, Qrels)],
    o: &LongRunOptions,
    log: &dyn Fn(&str),
) -> Result<LongRun, hubsearch_engine::Error> {
    let start = Instant::now();
    let pool = build_pool(engine, sets, o)?;
    let retrieval_seconds = start.elapsed().as_secs_f64();
    log(&format!(
        "{} distinct queries retrieved in {retrieval_seconds:.1}s",
        pool.len()
    ));
    // The traffic: Zipf over the shuffled pool, the same for every policy.
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut cumulative = Vec::with_capacity(pool.len());
    let mut acc = 0.0;
    for k in 0..pool.len() {
        acc += 1.0 / ((k + 1) as f64).powf(o.zipf);
        cumulative.push(acc);
    }
    let sequence: Vec<u32> = (0..o.pages)
        .map(|_| {
            let u = rng.gen_range(0.0..acc);
            cumulative.partition_point(|c| *c <= u).min(pool.len() - 1) as u32
        })
        .collect();
    let mut counts = vec![0usize; pool.len()];
    for &q in &sequence {
        counts[q as usize] += 1;
    }
    let judged_pages: usize = counts
        .iter()
        .zip(&pool)
        .filter(|(_, q)| q.judged.is_some())
        .map(|(c, _)| c)
        .sum();
    let mut sorted = counts.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top10: usize = sorted.iter().take(10).sum();
    let mut runs = Vec::new();
    for &kind in &o.policies {
        let policy = Policy::new(kind, &engine.config().ranking);
        let t = Instant::now();
        let run = run_policy(&pool, &sequence, &policy, o);
        let secs = t.elapsed().as_secs_f64();
        log(&format!(
            "{}: {} pages in {secs:.1}s ({:.0} pages/s): nDCG@10 {:.4}, EE-L {:.4}, tail {:.4}",
            policy.name(),
            o.pages,
            o.pages as f64 / secs,
            run.ndcg10,
            run.ee_l,
            run.tail_share
        ));
        runs.push(PolicyRun {
            pages_per_second: o.pages as f64 / secs.max(1e-9),
            ..run
        });
    }
    Ok(LongRun {
        pages: o.pages,
        mode: o.mode,
        zipf: o.zipf,
        distinct_queries: pool.len(),
        judged_queries: pool.iter().filter(|q| q.judged.is_some()).count(),
        judged_share: judged_pages as f64 / o.pages.max(1) as f64,
        top10_share: top10 as f64 / o.pages.max(1) as f64,
        retrieval_seconds,
        runs,
    })
}

/// The generated query texts: the names of the `n` most downloaded cards
/// (words of the id's last segment, at most three) and their tasks.
fn generated_queries(engine: &Engine, n: usize) -> Result<Vec<String>, hubsearch_engine::Error> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let limit = engine.config().search.max_limit;
    let mut offset = 0;
    while offset < n {
        let page = engine.listing(
            &Filter::default(),
            ListingSort::Trending,
            offset,
            limit.min(n - offset),
            false,
        )?;
        if page.hits.is_empty() {
            break;
        }
        offset += page.hits.len();
        for h in &page.hits {
            let name = h.card.id.rsplit('/').next().unwrap_or(&h.card.id);
            let words: Vec<String> = name
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .take(3)
                .map(str::to_lowercase)
                .collect();
            let mut texts = vec![words.join(" ")];
            if let Some(task) = &h.card.task {
                texts.push(task.replace('-', " "));
            }
            for t in texts {
                if !t.trim().is_empty() && seen.insert(t.clone()) {
                    out.push(t);
                }
            }
        }
    }
    Ok(out)
}

/// Every distinct query, retrieved and made into candidates once.
fn build_pool(
    engine: &Engine,
    sets: &[(Vec<Query>, Qrels)],
    o: &LongRunOptions,
) -> Result<Vec<Pooled>, hubsearch_engine::Error> {
    let mut texts: Vec<(String, Option<HashMap<String, u32>>)> = Vec::new();
    for (queries, qrels) in sets {
        for q in queries {
            if let Some(j) = qrels.get(&q.qid).filter(|j| j.values().any(|g| *g > 0)) {
                texts.push((q.text.clone(), Some(j.clone())));
            }
        }
    }
    for t in generated_queries(engine, o.generated)? {
        texts.push((t, None));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x5eed);
    texts.shuffle(&mut rng);
    let hub = engine.hub();
    let searcher = engine.text_index().searcher();
    let depth = engine.config().search.candidates;
    let mut pool = Vec::with_capacity(texts.len());
    // A model's age group from its card's `last_modified` year, read once
    // per model: 0 = 2022 or later, 1 = 2021, 2 = earlier or unknown.
    let mut ages: HashMap<u64, u8> = HashMap::new();
    let age_tier = |row: &hubsearch_engine::row::Row,
                    cache: &mut HashMap<u64, u8>|
     -> Result<u8, hubsearch_engine::Error> {
        if let Some(t) = cache.get(&row.facts.id_key.0) {
            return Ok(*t);
        }
        let card = engine.text_index().card(&searcher, row.addr)?;
        let year: Option<u32> = card
            .last_modified
            .as_deref()
            .and_then(|d| d.get(..4))
            .and_then(|y| y.parse().ok());
        let t = match year {
            Some(y) if y >= 2022 => 0,
            Some(2021) => 1,
            _ => 2,
        };
        cache.insert(row.facts.id_key.0, t);
        Ok(t)
    };
    for (text, judged) in texts {
        let mut req = SearchRequest::new(text, o.page);
        req.mode = o.mode;
        req.record = false;
        let mut rows = engine.retrieve(&searcher, &req, depth)?.rows;
        if rows.is_empty() {
            continue;
        }
        engine.candidates(&mut rows, Group::Model);
        let ids = match judged {
            Some(_) => rows
                .iter()
                .map(|r| engine.text_index().card(&searcher, r.addr).map(|c| c.id))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let model_tier = |k: u64| -> u8 {
            if hub.model_heads.top_1pct.contains(&k) {
                0
            } else if hub.model_heads.head.contains(&k) {
                1
            } else {
                2
            }
        };
        let builder_tier = |k: u64| -> u8 {
            if hub.builder_heads.top_10.contains(&k) {
                0
            } else if hub.builder_heads.head.contains(&k) {
                1
            } else {
                2
            }
        };
        pool.push(Pooled {
            groups: [
                rows.iter().map(|r| model_tier(r.facts.id_key.0)).collect(),
                rows.iter()
                    .map(|r| builder_tier(r.facts.builder_key.0))
                    .collect(),
                rows.iter()
                    .map(|r| age_tier(r, &mut ages))
                    .collect::<Result<Vec<u8>, _>>()?,
            ],
            judged,
            tail: rows
                .iter()
                .map(|r| !hub.model_heads.head.contains(&r.facts.id_key.0))
                .collect(),
            cands: rows.iter().map(|r| r.candidate).collect(),
            ids,
        });
    }
    Ok(pool)
}

/// Serve `sequence` under `policy` from an empty book.
fn run_policy(pool: &[Pooled], sequence: &[u32], policy: &Policy, o: &LongRunOptions) -> PolicyRun {
    let att = Attention::new(AttentionKind::Log, 0.5);
    let ee = ExpevalOptions {
        model: UserModel::Rbp { patience: 0.5 },
        ..Default::default()
    };
    let mut book = ExposureBook::new();
    let per_window = o.pages.div_ceil(o.windows.max(1)).max(1);
    let mut windows = Vec::new();
    // Window accumulators.
    let (mut ndcg_sum, mut judged_n, mut exp_total, mut exp_tail) = (0.0, 0usize, 0.0, 0.0);
    let mut samples: HashMap<usize, Vec<Vec<String>>> = HashMap::new();
    let (mut all_ndcg, mut all_judged, mut all_total, mut all_tail) = (0.0, 0usize, 0.0, 0.0);
    let mut ee_all: Vec<f64> = Vec::new();
    let mut g_exp = [[0.0f64; 3]; 3];
    let mut g_merit = [[0.0f64; 3]; 3];
    for (t, &qi) in sequence.iter().enumerate() {
        let q = &pool[qi as usize];
        let ranked = rank(policy, &q.cands, &book, o.seed.wrapping_add(t as u64));
        let shown: Vec<usize> = ranked.iter().take(o.page).map(|r| r.index).collect();
        let rel: Vec<f64> = shown.iter().map(|&i| q.cands[i].relevance).collect();
        for (&i, w) in shown.iter().zip(att.page(1, &rel)) {
            exp_total += w;
            if q.tail[i] {
                exp_tail += w;
            }
        }
        for (gi, tiers) in q.groups.iter().enumerate() {
            for (c, &t) in q.cands.iter().zip(tiers) {
                g_merit[gi][t as usize] += c.merit.max(0.0);
            }
            for (&i, w) in shown.iter().zip(att.page(1, &rel)) {
                g_exp[gi][tiers[i] as usize] += w;
            }
        }
        book.apply(&page_delta(&q.cands, &shown, 1, &att));
        if let Some(j) = &q.judged {
            let ids: Vec<String> = shown.iter().map(|&i| q.ids[i].clone()).collect();
            ndcg_sum += ndcg(&ids, j, 10);
            judged_n += 1;
            let s = samples.entry(qi as usize).or_default();
            if s.len() < o.ee_samples {
                s.push(ids);
            }
        }
        if (t + 1) % per_window == 0 || t + 1 == sequence.len() {
            let ees: Vec<f64> = samples
                .iter()
                .filter_map(|(qi, rankings)| {
                    let j = pool[*qi].judged.as_ref()?;
                    expeval(rankings, j, &ee).map(|e| e.raw.difference)
                })
                .collect();
            let ee_l = if ees.is_empty() {
                0.0
            } else {
                ees.iter().sum::<f64>() / ees.len() as f64
            };
            ee_all.push(ee_l);
            windows.push(Window {
                pages: t + 1,
                ndcg10: ndcg_sum / judged_n.max(1) as f64,
                judged_pages: judged_n,
                ee_l,
                tail_share: exp_tail / exp_total.max(1e-12),
                groups: group_shares(&g_exp, &g_merit),
            });
            g_exp = [[0.0; 3]; 3];
            g_merit = [[0.0; 3]; 3];
            all_ndcg += ndcg_sum;
            all_judged += judged_n;
            all_total += exp_total;
            all_tail += exp_tail;
            (ndcg_sum, judged_n, exp_total, exp_tail) = (0.0, 0, 0.0, 0.0);
            samples.clear();
        }
    }
    PolicyRun {
        policy: policy.name().to_string(),
        params: policy
            .params()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        windows,
        ndcg10: all_ndcg / all_judged.max(1) as f64,
        ee_l: ee_all.iter().sum::<f64>() / ee_all.len().max(1) as f64,
        tail_share: all_tail / all_total.max(1e-12),
        pages_per_second: 0.0,
    }
}

/// Each group's share of exposure and of merit.
fn group_shares(exp: &[[f64; 3]; 3], merit: &[[f64; 3]; 3]) -> Vec<GroupShare> {
    let mut out = Vec::new();
    for (gi, (name, labels)) in GROUPINGS.iter().enumerate() {
        let te: f64 = exp[gi].iter().sum();
        let tm: f64 = merit[gi].iter().sum();
        for (t, label) in labels.iter().enumerate() {
            let e = exp[gi][t] / te.max(1e-12);
            let m = merit[gi][t] / tm.max(1e-12);
            out.push(GroupShare {
                grouping: name.to_string(),
                group: label.to_string(),
                exposure_share: e,
                merit_share: m,
                ratio: if m > 0.0 { e / m } else { 0.0 },
            });
        }
    }
    out
}

/// REPORT.md's text and the SVG plots (name, content) of a run.
pub fn report(r: &LongRun, command: &str, seconds: f64) -> (String, Vec<(String, String)>) {
    let mut plots = metric_plots(r);
    plots.extend(group_plots(r));
    (markdown(r, command, seconds), plots)
}

/// A line per policy: `f` of each window against the pages served.
fn series(r: &LongRun, f: impl Fn(&Window) -> f64) -> Vec<Series> {
    r.runs
        .iter()
        .map(|p| Series {
            name: p.policy.clone(),
            points: p.windows.iter().map(|w| (w.pages as f64, f(w))).collect(),
        })
        .collect()
}

/// nDCG@10, EE-L and the tail share per window, a line per policy.
fn metric_plots(r: &LongRun) -> Vec<(String, String)> {
    let series = |f: fn(&Window) -> f64| series(r, f);
    vec![
        (
            "longrun-ndcg.svg".to_string(),
            line_chart(
                "nDCG@10 on judged pages, per window",
                "pages served",
                "nDCG@10",
                &series(|w| w.ndcg10),
                true,
            ),
        ),
        (
            "longrun-eel.svg".to_string(),
            line_chart(
                "EE-L (rbp 0.5) per window",
                "pages served",
                "EE-L",
                &series(|w| w.ee_l),
                true,
            ),
        ),
        (
            "longrun-tail.svg".to_string(),
            line_chart(
                "Tail share of exposure per window",
                "pages served",
                "tail share",
                &series(|w| w.tail_share),
                true,
            ),
        ),
    ]
}

/// Each grouping's head and tail group: exposure share over merit share
/// per window, a line per policy.
fn group_plots(r: &LongRun) -> Vec<(String, String)> {
    let mut plots = Vec::new();
    for (gi, (grouping, labels)) in GROUPINGS.iter().enumerate() {
        for (t, label) in labels.iter().enumerate() {
            if t == 1 {
                continue;
            }
            let k = gi * 3 + t;
            let series = series(r, |w| w.groups.get(k).map_or(0.0, |g| g.ratio));
            let file = format!(
                "longrun-group-{}-{}.svg",
                match *grouping {
                    "model popularity" => "model",
                    "builder popularity" => "builder",
                    _ => "model-age",
                },
                if t == 0 { "head" } else { "tail" }
            );
            plots.push((
                file,
                line_chart(
                    &format!("{grouping}: {label}, exposure share / merit share"),
                    "pages served",
                    "exposure / merit",
                    &series,
                    true,
                ),
            ));
        }
    }
    plots
}

/// REPORT.md: the method, the policies' figures, the groups' shares.
fn markdown(r: &LongRun, command: &str, seconds: f64) -> String {
    let mut md = String::new();
    md.push_str("# Long run: served traffic under each policy\n\n");
    md.push_str(&format!(
        "Generated by `{command}` ({seconds:.0} s in all). {} pages per policy, mode {}, \
         {} distinct queries ({} judged: dev and natural-dev; the rest generated from the \
         most downloaded cards' names and tasks), asked with Zipf exponent {} over a shuffled \
         order: judged queries take {:.1}% of the pages, the 10 most asked {:.1}%. Retrieval \
         of every distinct query once: {:.1} s. Each policy starts from an empty book; model \
         groups, log attention, pages of 10. nDCG@10 is over the judged pages; EE-L is \
         expeval's (rbp, patience 0.5) per judged query over its rankings in the window \
         (at most 100), averaged over the queries; tail = models outside the top 10% by \
         downloads. Method: docs/ranking.md, Long run.\n\n",
        r.pages,
        r.mode.as_str(),
        r.distinct_queries,
        r.judged_queries,
        r.zipf,
        100.0 * r.judged_share,
        100.0 * r.top10_share,
        r.retrieval_seconds
    ));
    md.push_str("| policy | params | nDCG@10 | EE-L | tail share | first window nDCG@10 / EE-L | last window nDCG@10 / EE-L | pages/s |\n|---|---|---|---|---|---|---|---|\n");
    for p in &r.runs {
        let params = p
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (f, l) = (p.windows.first(), p.windows.last());
        let fl = |w: Option<&Window>| {
            w.map_or("-".into(), |w| format!("{:.4} / {:.4}", w.ndcg10, w.ee_l))
        };
        md.push_str(&format!(
            "| {} | {} | {:.4} | {:.4} | {:.4} | {} | {} | {:.0} |\n",
            p.policy,
            params,
            p.ndcg10,
            p.ee_l,
            p.tail_share,
            fl(f),
            fl(l),
            p.pages_per_second
        ));
    }
    md.push_str("\n## Groups: exposure vs merit\n\nPer group, its share of all exposure and of all merit over the whole run (amortized over every page; merit as the book accrues it, every candidate's calibrated probability), and their ratio (1 = exposure proportional to merit). No paid calls happen in the run, so impact vs merit is not reported here.\n\n| policy | grouping | group | exposure share | merit share | exposure / merit |\n|---|---|---|---|---|---|\n");
    for p in &r.runs {
        for g in &whole_run_groups(p) {
            md.push_str(&format!(
                "| {} | {} | {} | {:.4} | {:.4} | {:.3} |\n",
                p.policy, g.grouping, g.group, g.exposure_share, g.merit_share, g.ratio
            ));
        }
    }
    md.push_str("\n![model head](longrun-group-model-head.svg)\n\n![model tail](longrun-group-model-tail.svg)\n\n![builder head](longrun-group-builder-head.svg)\n\n![builder tail](longrun-group-builder-tail.svg)\n\n![newest models](longrun-group-model-age-head.svg)\n\n![oldest models](longrun-group-model-age-tail.svg)\n");
    md.push_str("\n![nDCG@10](longrun-ndcg.svg)\n\n![EE-L](longrun-eel.svg)\n\n![tail share](longrun-tail.svg)\n\nPer-window figures: `longrun.json`.\n");
    md
}

/// A policy's group shares over the whole run: the windows' shares
/// weighted by the windows' pages (equal windows: the mean).
fn whole_run_groups(p: &PolicyRun) -> Vec<GroupShare> {
    let n = p.windows.len().max(1) as f64;
    let mut out: Vec<GroupShare> = p.windows.first().map_or(Vec::new(), |w| w.groups.clone());
    for (k, g) in out.iter_mut().enumerate() {
        g.exposure_share = p
            .windows
            .iter()
            .map(|w| w.groups[k].exposure_share)
            .sum::<f64>()
            / n;
        g.merit_share = p
            .windows
            .iter()
            .map(|w| w.groups[k].merit_share)
            .sum::<f64>()
            / n;
        g.ratio = if g.merit_share > 0.0 {
            g.exposure_share / g.merit_share
        } else {
            0.0
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_sequence_repeats_the_head() {
        // The sampler above: P(k) ~ 1/k over 100 queries; the first takes
        // 1 / H_100 = 19.3% of the pages.
        let n = 100;
        let cumulative: Vec<f64> = (0..n)
            .scan(0.0, |a, k| {
                *a += 1.0 / (k + 1) as f64;
                Some(*a)
            })
            .collect();
        let acc = *cumulative.last().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws = 200_000;
        let first = (0..draws)
            .filter(|_| {
                let u = rng.gen_range(0.0..acc);
                cumulative.partition_point(|c| *c <= u) == 0
            })
            .count();
        let h100: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        assert!((first as f64 / draws as f64 - 1.0 / h100).abs() < 0.005);
    }
}
