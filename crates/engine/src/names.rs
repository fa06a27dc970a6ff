//! Names first (docs/retrieval.md, Names first): when a query is a model's
//! whole id, or its name without the author (and somebody downloaded it),
//! that model comes first; among models of the same name, the original (the
//! un-namespaced id) and then the most downloaded.

use hubsearch_index::Searcher;

use crate::engine::Engine;
use crate::error::Result;
use crate::retrieve::Retrieved;
use crate::row::Row;

/// Queries of more words than this are not names.
const MAX_NAME_WORDS: usize = 12;
/// The most relevance a non-matching candidate keeps when a name matched.
const OTHERS_BELOW: f64 = 0.98;
/// The relevance step between successive name matches.
const STEP: f64 = 1e-3;

/// A text's words: lowercase ASCII letters and digits, split on anything
/// else (`Helsinki-NLP/opus-mt-en-de` -> `helsinki nlp opus mt en de`).
pub fn name_words(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `s`'s name words are `words` (no allocation: every candidate of
/// every search is compared).
fn same_words(words: &[&str], s: &str) -> bool {
    let mut it = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    for w in words {
        match it.next() {
            Some(x) if x.eq_ignore_ascii_case(w) => {}
            _ => return false,
        }
    }
    it.next().is_none()
}

/// How well a query names a model: 2 = its whole id (an un-namespaced id
/// is whole by its name alone), 1 = its name without the author, 0 = not.
/// `query_words` are the query's name words ([`name_words`]).
pub fn name_match(query_words: &str, id: &str) -> u8 {
    let words: Vec<&str> = query_words.split(' ').filter(|w| !w.is_empty()).collect();
    match_words(&words, id)
}

fn match_words(words: &[&str], id: &str) -> u8 {
    let name = id.rsplit('/').next().unwrap_or(id);
    if same_words(words, id) {
        2
    } else if same_words(words, name) {
        if id.contains('/') {
            1
        } else {
            2
        }
    } else {
        0
    }
}

impl Engine {
    /// Put the candidates `query` names first (see the module docs). An
    /// `unfiltered` search also looks the query up as an id directly, in
    /// case retrieval missed the original.
    pub(crate) fn names_first(
        &self,
        searcher: &Searcher,
        query: &str,
        unfiltered: bool,
        out: &mut Retrieved,
    ) -> Result<()> {
        let q = name_words(query);
        let words: Vec<&str> = q.split(' ').filter(|w| !w.is_empty()).collect();
        if words.is_empty() || words.len() > MAX_NAME_WORDS {
            return Ok(());
        }
        let text = self.text_index();
        // The original of a name is often un-namespaced: look it up by id.
        let direct = [q.replace(' ', "-"), query.trim().to_string()];
        let direct = if unfiltered { &direct[..] } else { &[] };
        for addr in text.find_ids(searcher, direct)? {
            if !out.rows.iter().any(|f| f.addr == addr) {
                let facts = text.candidate_facts(searcher, &[addr])?;
                if let Some(facts) = facts.into_iter().next() {
                    out.rows.push(Row::new(addr, facts));
                }
            }
        }
        let addrs: Vec<_> = out.rows.iter().map(|f| f.addr).collect();
        let mut named: Vec<Named> = Vec::new();
        text.each_id(searcher, &addrs, |i, id| {
            let m = match_words(&words, id);
            let f = &out.rows[i];
            // A name without its author names a copy nobody uses only
            // weakly: such a card keeps its place.
            let used = f.facts.downloads > 0;
            if m == 2 || (m == 1 && used) {
                named.push(Named {
                    words: m,
                    namespaced: id.contains('/'),
                    downloads: f.facts.downloads,
                    key: f.facts.id_key,
                    index: i,
                });
            }
        })?;
        if named.is_empty() {
            return Ok(());
        }
        // Whole id first, then un-namespaced, then most downloaded, then key.
        named.sort_by(|a, b| {
            b.words
                .cmp(&a.words)
                .then(a.namespaced.cmp(&b.namespaced))
                .then(b.downloads.cmp(&a.downloads))
                .then(a.key.cmp(&b.key))
        });
        for f in &mut out.rows {
            f.relevance *= OTHERS_BELOW;
        }
        for (rank, n) in named.iter().enumerate() {
            out.rows[n.index].relevance = (1.0 - STEP * rank as f64).max(OTHERS_BELOW);
            out.rows[n.index].named = true;
        }
        Ok(())
    }
}

/// A candidate whose id the query names.
struct Named {
    /// 2: the whole id; 1: the id without its namespace.
    words: u8,
    namespaced: bool,
    downloads: u64,
    key: u64,
    /// Its place among the candidates.
    index: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_ids() {
        assert_eq!(
            name_words("Helsinki-NLP/opus-mt-en-de"),
            "helsinki nlp opus mt en de"
        );
        assert_eq!(name_match("bert base uncased", "bert-base-uncased"), 2);
        assert_eq!(
            name_match("bert base uncased", "someone/bert-base-uncased"),
            1
        );
        assert_eq!(
            name_match("someone bert base uncased", "someone/bert-base-uncased"),
            2
        );
        assert_eq!(name_match("bert base", "bert-base-uncased"), 0);
        assert_eq!(name_match("gpt2", "gpt2"), 2);
        assert_eq!(name_match("gpt2", "distilgpt2"), 0);
    }
}
