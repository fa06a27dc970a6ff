//! What the ledger's integration tests share: a served page's log made
//! from its ranked candidates.

use std::collections::BTreeMap;

use hubsearch_ledger::{Book, LoggedCandidate, PageLog, ShownLog};
use hubsearch_rank::Attention;

/// Page `i`'s log: a text search for "query {i}" ranked by relevance at
/// time 1_700_000_000 + i (seed `i`), `ranked` from rank 1 under log
/// attention; its first `shown` shown, under the (model, builder) names
/// `names` gives each (by 0-based rank), scored their relevance.
pub fn page_log(
    i: u64,
    ranked: Vec<LoggedCandidate>,
    shown: usize,
    names: impl Fn(usize, &LoggedCandidate) -> (String, String),
) -> PageLog {
    let shown = ranked[..shown]
        .iter()
        .enumerate()
        .map(|(r, c)| {
            let (model, builder) = names(r, c);
            ShownLog {
                model: model.into(),
                builder,
                rank: r + 1,
                exposure: 1.0 / (2.0 + r as f64).log2(),
                relevance: c.relevance,
                score: c.relevance,
                propensity: None,
            }
        })
        .collect();
    PageLog {
        page: 0,
        time: 1_700_000_000 + i,
        query: format!("query {i}"),
        mode: "text".into(),
        policy: "relevance".into(),
        params: BTreeMap::new(),
        group: "model".into(),
        seed: i,
        candidates: ranked.len(),
        shown,
        logits: Vec::new(),
        first_rank: 1,
        book: Book::Search,
        attention: Some(Attention::Log),
        ranked,
    }
}
