//! Group-level expected exposure (expeval's `-G`) of the judged queries,
//! from the logged rankings of their used first pages.

use std::collections::{BTreeMap, HashMap};

use hubsearch_core::card::key_of;

use super::figures::{EeGroup, EeQuery, GroupEe};
use super::grouping::{Assigner, Ctx};
use super::prepare::Prepared;
use super::Judged;
use crate::exposure::{expeval_groups, run_exposure, target_exposure, ExpectedExposure};

/// Per group: the sums over the scored queries of its expected exposure
/// and of its target.
type GroupSums = BTreeMap<usize, (f64, f64)>;

/// Group-level expected exposure of the judged queries, from their used
/// first pages (every rank from 1, as expeval reads a ranking); `top`
/// groups listed, the rest summed.
pub(super) fn group_ee(prepared: &[Prepared], j: &Judged, a: &mut Assigner, top: usize) -> GroupEe {
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
    let mut sums = GroupSums::new();
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
        let rankings: Vec<Vec<String>> = firsts.iter().map(|p| ranking(p)).collect();
        let judged = j.qrels.get(&q.qid).unwrap_or(&empty);
        let doc_group = doc_groups(pages, &rankings, judged, a);
        let Some(raw) = expeval_groups(&rankings, judged, &doc_group, &j.options) else {
            continue;
        };
        out.queries_scored += 1;
        out.rankings += rankings.len();
        out.mean.disparity += raw.disparity;
        out.mean.relevance += raw.relevance;
        out.mean.difference += raw.difference;
        add_group_sums(&mut sums, &rankings, judged, &doc_group, j);
        out.per_query.push(EeQuery {
            qid: q.qid.clone(),
            query: q.text.clone(),
            rankings: rankings.len(),
            raw,
        });
    }
    finish(&mut out, sums, &a.labels, top);
    out
}

/// A page's shown model ids in rank order.
fn ranking(p: &Prepared) -> Vec<String> {
    let mut s = p.shown.clone();
    s.sort_by_key(|x| x.0);
    s.into_iter().map(|x| x.2).collect()
}

/// Each document's group: where the query's pages placed it (the last page
/// wins), else by its card at the query's last page.
fn doc_groups(
    pages: &[&Prepared],
    rankings: &[Vec<String>],
    judged: &HashMap<String, u32>,
    a: &mut Assigner,
) -> HashMap<String, Vec<i64>> {
    let mut placed: HashMap<u64, usize> = HashMap::new();
    for p in pages.iter() {
        for &(k, g) in &p.candidates {
            placed.insert(k, g);
        }
    }
    let last_time = pages.iter().map(|p| p.time).max().unwrap_or(0);
    let cards = a.cards();
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
                a.group(&Ctx::named(d, &builder, last_time))
            }
        };
        doc_group.insert(d.clone(), vec![g as i64]);
    }
    doc_group
}

/// The groups' exposure and target of one scored query, as
/// `expeval_groups` sums them.
fn add_group_sums(
    sums: &mut GroupSums,
    rankings: &[Vec<String>],
    judged: &HashMap<String, u32>,
    doc_group: &HashMap<String, Vec<i64>>,
    j: &Judged,
) {
    let kept = j.options.judged(judged);
    let eps = run_exposure(rankings, &kept, &j.options);
    let target = target_exposure(&kept, &j.options);
    for d in kept.keys() {
        let g = doc_group[d][0] as usize;
        let e = sums.entry(g).or_default();
        e.0 += eps.get(d).copied().unwrap_or(0.0);
        e.1 += target.get(d).copied().unwrap_or(0.0);
    }
}

/// Means over the scored queries; the groups with the largest targets
/// first, beyond `top` summed in one row.
fn finish(out: &mut GroupEe, sums: GroupSums, labels: &[String], top: usize) {
    let n = out.queries_scored.max(1) as f64;
    out.mean.disparity /= n;
    out.mean.relevance /= n;
    out.mean.difference /= n;
    out.groups = sums
        .into_iter()
        .map(|(g, (e, t))| EeGroup {
            group: labels[g].clone(),
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
}
