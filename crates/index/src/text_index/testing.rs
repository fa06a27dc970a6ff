//! Test helpers shared by the `text_index` modules' tests: cards, an index
//! in memory holding them, and the ids a query finds.

use hubsearch_core::{Filter, ModelCard};

use super::TextIndex;

/// A card with license `mit`, built by the part of `id` before `/`
/// (`huggingface` when there is none).
pub(super) fn card(id: &str, task: Option<&str>, langs: &[&str], desc: &str) -> ModelCard {
    let (builder, name) = id.split_once('/').unwrap_or(("huggingface", id));
    ModelCard {
        id: id.into(),
        name: name.into(),
        builder: builder.into(),
        task: task.map(str::to_string),
        languages: langs.iter().map(|s| s.to_string()).collect(),
        description: desc.into(),
        license: Some("mit".into()),
        ..Default::default()
    }
}

/// An index in memory holding `cards`, committed and reloaded.
pub(super) fn index(cards: &[ModelCard]) -> TextIndex {
    let idx = TextIndex::in_ram().unwrap();
    let mut w = idx.writer(32, 1).unwrap();
    for c in cards {
        w.upsert(c).unwrap();
    }
    w.commit().unwrap();
    idx.reload().unwrap();
    idx
}

/// The ids of the top 10 cards by BM25 for `q` within `filter`.
pub(super) fn ids(idx: &TextIndex, q: &str, filter: &Filter) -> Vec<String> {
    let s = idx.searcher();
    let r = idx.search(&s, &idx.words(q), filter, 10, false).unwrap();
    r.hits
        .iter()
        .map(|h| idx.card(&s, h.addr).unwrap().id)
        .collect()
}
