//! Names first (docs/retrieval.md, Names first): when a query is a model's
//! whole id, or its name without the author (and somebody downloaded it),
//! that model comes first; among models of the same name, the original (the
//! un-namespaced id) and then the most downloaded. Then names with a slip
//! (words no id has, within the edits their length tolerates) and names
//! typed half-way (completed by the most downloaded, when more popular than
//! what the query shows first anyway).

use hubsearch_core::ModelKey;
use hubsearch_index::typos::{edit_distance, edits_allowed};
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
/// else (`Helsinki-NLP/opus-mt-en-de` -> `helsinki nlp opus mt en de`), as
/// the index keeps names ([`hubsearch_index::name_key`]).
pub fn name_words(s: &str) -> String {
    hubsearch_index::name_key(s)
}

/// Most cards a name being typed lifts to the top (its most downloaded
/// completions; docs/retrieval.md, Prefixes and typos).
const MAX_COMPLETIONS: usize = 5;
/// Corrections of a misspelt word whose names are looked up directly.
const CORRECTIONS_LOOKED_UP: usize = 3;
/// How many of the best candidates a completion must be more popular than.
const SHOWN: usize = 5;

/// How a query's name words compare with a text's (an id's, or a name's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compared {
    /// The same words.
    Same,
    /// The same words but for this many edits, each word within what its
    /// length tolerates ([`edits_allowed`]).
    Corrected(usize),
    /// The text starts with the query: its words so far, the last one as a
    /// prefix (a name being typed), but for this many edits.
    Completes(usize),
    Differs,
}

/// Compare the query's name words `words` with `s`'s. `typing`: the last
/// query word is still being typed (may be a prefix); `unknown`: the
/// query words no card contains, the only ones that may be corrected (a
/// word the index knows is taken as typed).
fn compare(words: &[&str], s: &str, typing: bool, unknown: &[String]) -> Compared {
    let mut it = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    let (mut edits, mut partial) = (0, false);
    for (i, q) in words.iter().enumerate() {
        let Some(x) = it.next() else {
            return Compared::Differs;
        };
        if x.eq_ignore_ascii_case(q) {
            continue;
        }
        let last = i + 1 == words.len();
        if last
            && typing
            && x.len() > q.len()
            && x.as_bytes()[..q.len()].eq_ignore_ascii_case(q.as_bytes())
        {
            partial = true;
            continue;
        }
        if !unknown.iter().any(|u| u == q) {
            return Compared::Differs;
        }
        match edit_distance(q, x, edits_allowed(q)) {
            Some(d) => edits += d,
            None => return Compared::Differs,
        }
    }
    partial |= it.next().is_some();
    match (edits, partial) {
        (0, false) => Compared::Same,
        (e, false) => Compared::Corrected(e),
        (e, true) if typing => Compared::Completes(e),
        _ => Compared::Differs,
    }
}

/// How well a query names a model: 2 = its whole id (an un-namespaced id
/// is whole by its name alone), 1 = its name without the author, 0 = not.
/// `query_words` are the query's name words ([`name_words`]).
pub fn name_match(query_words: &str, id: &str) -> u8 {
    let words: Vec<&str> = query_words.split(' ').filter(|w| !w.is_empty()).collect();
    match_words(&words, id, false, &[]).map_or(0, |m| match m.level {
        Level::Id => 2,
        Level::Name => 1,
        _ => 0,
    })
}

/// How a candidate is named, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// Its whole id, as typed.
    Id,
    /// Its name without the author, as typed.
    Name,
    /// Its id or name, with a slip or two.
    Corrected,
    /// The start of its id or name (a name being typed).
    Completed,
}

/// A match of the query's words with an id.
#[derive(Debug, Clone, Copy)]
struct NameMatch {
    level: Level,
    /// Edits of a corrected match.
    edits: usize,
    /// Whether only the name without the author matched (a copy nobody
    /// uses is then named only weakly).
    name_only: bool,
}

fn match_words(words: &[&str], id: &str, typing: bool, unknown: &[String]) -> Option<NameMatch> {
    let (name, namespaced) = match id.rsplit_once('/') {
        Some((_, name)) => (name, true),
        None => (id, false),
    };
    let whole = compare(words, id, typing, unknown);
    let of_name = if namespaced {
        compare(words, name, typing, unknown)
    } else {
        whole
    };
    let m = |level, edits, name_only| {
        Some(NameMatch {
            level,
            edits,
            name_only,
        })
    };
    match (whole, of_name) {
        (Compared::Same, _) => m(Level::Id, 0, false),
        (_, Compared::Same) if !namespaced => m(Level::Id, 0, false),
        (_, Compared::Same) => m(Level::Name, 0, true),
        (Compared::Corrected(e), _) => m(Level::Corrected, e, false),
        (_, Compared::Corrected(e)) => m(Level::Corrected, e, namespaced),
        (Compared::Completes(e), _) => m(Level::Completed, e, false),
        (_, Compared::Completes(e)) => m(Level::Completed, e, namespaced),
        _ => None,
    }
}

impl Engine {
    /// Put the candidates `query` names first (see the module docs). An
    /// `unfiltered` search also looks the query up as an id directly, in
    /// case retrieval missed the original, and (while its last word is
    /// being typed) the most downloaded names it starts.
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
        let typing = query.ends_with(|c: char| c.is_ascii_alphanumeric());
        let text = self.text_index();
        // The words that may be corrected: long enough, and no id's word
        // (a word some name has is taken as typed).
        let mut unknown = Vec::new();
        for w in &words {
            if edits_allowed(w) > 0 && !text.in_ids(searcher, w)? {
                unknown.push(w.to_string());
            }
        }
        let unknown = &unknown[..];
        if unfiltered {
            self.add_direct(searcher, query, (&q, unknown), typing, out)?;
        }
        let addrs: Vec<_> = out.rows.iter().map(|f| f.addr).collect();
        // An id or name can match only by its first word, as typed, unless
        // that word may be corrected (`unknown`) or is a name being typed
        // (the only word, and the last): the index passes over the others
        // without reading their ids.
        let first = words[0];
        let loose_first = unknown.iter().any(|u| u == first) || (typing && words.len() == 1);
        let mut named: Vec<Named> = Vec::new();
        text.each_id(
            searcher,
            &addrs,
            (!loose_first).then_some(first),
            |i, id| {
                let f = &out.rows[i];
                // A name without its author (or a name typed half-way) names a
                // copy nobody uses only weakly: such a card keeps its place.
                let used = f.facts.downloads > 0;
                let Some(m) = match_words(&words, id, typing, unknown) else {
                    return;
                };
                if (m.name_only || m.level == Level::Completed) && !used {
                    return;
                }
                named.push(Named {
                    level: m.level,
                    edits: m.edits,
                    namespaced: id.contains('/'),
                    downloads: f.facts.downloads,
                    key: f.facts.id_key,
                    index: i,
                });
            },
        )?;
        // Whole id first, then the name alone, then corrected names (fewest
        // edits first), then names being typed; within a level the
        // un-namespaced original, then the most downloaded, then key. A
        // name being typed is completed by the most downloaded.
        named.sort_by(|a, b| {
            let completing = a.level == Level::Completed;
            a.level
                .cmp(&b.level)
                .then(a.edits.cmp(&b.edits))
                .then(if completing {
                    std::cmp::Ordering::Equal
                } else {
                    a.namespaced.cmp(&b.namespaced)
                })
                .then(b.downloads.cmp(&a.downloads))
                .then(a.key.cmp(&b.key))
        });
        // A name being typed lifts its most downloaded completions, and
        // only those more popular than what the query shows first anyway.
        let bar = popular_shown(out, &named);
        let mut kept = 0;
        named.retain(|n| {
            if n.level != Level::Completed {
                return true;
            }
            kept += 1;
            kept <= MAX_COMPLETIONS && n.downloads > bar
        });
        if named.is_empty() {
            return Ok(());
        }
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

impl Engine {
    /// Add the cards a query names directly, in case retrieval missed
    /// them: the id as typed and as its name words `q` joined by `-` (the
    /// original of a name is often un-namespaced); while its last word is
    /// being `typing`, the most downloaded names `q` starts; and for each
    /// word no id has (`unknown`), the most downloaded names starting with
    /// `q` with that word corrected ([`CORRECTIONS_LOOKED_UP`] corrections).
    fn add_direct(
        &self,
        searcher: &Searcher,
        query: &str,
        (q, unknown): (&str, &[String]),
        typing: bool,
        out: &mut Retrieved,
    ) -> Result<()> {
        let text = self.text_index();
        let direct = [q.replace(' ', "-"), query.trim().to_string()];
        let mut addrs = text.find_ids(searcher, &direct)?;
        if typing {
            addrs.extend(text.completions(searcher, q, MAX_COMPLETIONS)?);
        }
        for word in unknown {
            // Kept across searches (the text query found them too).
            let corrections = text.corrections(searcher, word)?;
            for (c, _) in corrections.iter().take(CORRECTIONS_LOOKED_UP) {
                let fixed: Vec<&str> = q
                    .split(' ')
                    .map(|w| if w == word { c.as_str() } else { w })
                    .collect();
                addrs.extend(text.completions(searcher, &fixed.join(" "), MAX_COMPLETIONS)?);
            }
        }
        for addr in addrs {
            if !out.rows.iter().any(|f| f.addr == addr) {
                let facts = text.candidate_facts(searcher, &[addr])?;
                if let Some(facts) = facts.into_iter().next() {
                    out.rows.push(Row::new(addr, facts));
                }
            }
        }
        Ok(())
    }
}

/// What a suggestion completes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionKind {
    Model,
    Task,
    Builder,
}

/// One completion of a text being typed (`GET /v1/suggest`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub kind: SuggestionKind,
    /// A model's id, a task, or a builder.
    pub value: String,
    /// A model's downloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloads: Option<u64>,
}

/// Tasks and builders suggested at most, each.
const SUGGESTED_OTHERS: usize = 3;

impl Engine {
    /// Completions of `typed` (docs/retrieval.md, Suggestions): up to
    /// `limit` models, those whose id or name starts with the text first,
    /// then those whose id has its words inside, each group most downloaded
    /// first; then tasks and builders whose name starts with it (tasks
    /// also by a later word).
    pub fn suggest(&self, typed: &str, limit: usize) -> Result<Vec<Suggestion>> {
        let text = self.text_index();
        let searcher = text.searcher();
        let q = name_words(typed);
        if q.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut addrs = text.completions(&searcher, &q, limit)?;
        if addrs.len() < limit {
            for a in text.names_containing(&searcher, &q, limit)? {
                if addrs.len() < limit && !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        let facts = text.candidate_facts(&searcher, &addrs)?;
        let ids = text.ids_of(&searcher, &addrs)?;
        let mut out: Vec<Suggestion> = ids
            .into_iter()
            .zip(facts)
            .map(|(id, f)| Suggestion {
                kind: SuggestionKind::Model,
                value: id,
                downloads: Some(f.downloads),
            })
            .collect();
        // A cheap look at the first letter before the words are compared.
        let first = q.as_bytes()[0];
        let starts = |v: &str| {
            let lead = v.bytes().find(u8::is_ascii_alphanumeric);
            lead.is_some_and(|b| b.to_ascii_lowercase() == first) && name_words(v).starts_with(&q)
        };
        let inside = |v: &str| name_words(v).contains(&format!(" {q}"));
        let tasks = text.facet_values_where(&searcher, "task", |_| true)?;
        let mut picked: Vec<&String> = tasks.iter().filter(|t| starts(t)).collect();
        picked.extend(tasks.iter().filter(|t| !starts(t) && inside(t)));
        out.extend(
            picked
                .into_iter()
                .take(SUGGESTED_OTHERS)
                .map(|t| Suggestion {
                    kind: SuggestionKind::Task,
                    value: t.clone(),
                    downloads: None,
                }),
        );
        // Builders: those of the models suggested first (popular), then
        // the others in name order.
        let mut builders: Vec<String> = out
            .iter()
            .filter_map(|s| s.value.split_once('/').map(|(b, _)| b.to_string()))
            .filter(|b| starts(b))
            .collect();
        builders.dedup();
        // The first builders in name order: the pre-picked ones among the
        // first SUGGESTED_OTHERS leave the rest of them.
        for b in text.builders_starting(&searcher, &q, SUGGESTED_OTHERS)? {
            if builders.len() >= SUGGESTED_OTHERS {
                break;
            }
            if !builders.contains(&b) {
                builders.push(b);
            }
        }
        out.extend(
            builders
                .into_iter()
                .take(SUGGESTED_OTHERS)
                .map(|b| Suggestion {
                    kind: SuggestionKind::Builder,
                    value: b,
                    downloads: None,
                }),
        );
        Ok(out)
    }
}

/// The most downloads among the first [`SHOWN`] candidates by relevance
/// that the query does not name (`named` are the ones it names): a name
/// being typed is completed by cards more popular than those.
fn popular_shown(out: &Retrieved, named: &[Named]) -> u64 {
    let mut is_named = vec![false; out.rows.len()];
    for n in named {
        is_named[n.index] = true;
    }
    let mut rows: Vec<(f64, u64)> = out
        .rows
        .iter()
        .zip(is_named)
        .filter(|(_, named)| !named)
        .map(|(r, _)| (r.relevance, r.facts.downloads))
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    rows.iter().take(SHOWN).map(|r| r.1).max().unwrap_or(0)
}

/// A candidate whose id the query names.
struct Named {
    level: Level,
    edits: usize,
    namespaced: bool,
    downloads: u64,
    key: ModelKey,
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

    /// Slips and names typed half-way, by the rules of docs/retrieval.md.
    #[test]
    fn tolerant_matches() {
        let unknown = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let m = |q: &str, id: &str, typing: bool, unk: &[&str]| {
            let words: Vec<&str> = q.split(' ').collect();
            match_words(&words, id, typing, &unknown(unk)).map(|m| (m.level, m.edits, m.name_only))
        };
        let id = "textattack/bert-base-uncased-MRPC";
        // One slip in a word no id has: corrected, by the name or the id.
        assert_eq!(
            m("bert base ucased mrpc", id, false, &["ucased"]),
            Some((Level::Corrected, 1, true))
        );
        assert_eq!(
            m("textattack bert base uncsaed mrpc", id, false, &["uncsaed"]),
            Some((Level::Corrected, 1, false))
        );
        // A word some id has is taken as typed: not corrected.
        assert_eq!(m("bert base ucased mrpc", id, false, &[]), None);
        // Too many edits for the length, short words, numbers.
        assert_eq!(m("bert base ucsed mrpc", id, false, &["ucsed"]), None);
        assert_eq!(m("bret base uncased mrpc", id, false, &["bret"]), None);
        let v2 = "sentence-transformers/paraphrase-MiniLM-L6-v2";
        assert_eq!(m("paraphrase minilm l6 v3", v2, false, &["v3"]), None);
        assert_eq!(m("paraphrase minilm l12 v2", v2, false, &["l12"]), None);
        assert_eq!(
            m("paraphrsae minilm l6 v2", v2, false, &["paraphrsae"]),
            Some((Level::Corrected, 1, true))
        );
        // Typed half-way: the last word a prefix, or words still to come;
        // only while the last word is being typed.
        assert_eq!(
            m("bert base un", "bert-base-uncased", true, &[]),
            Some((Level::Completed, 0, false))
        );
        assert_eq!(
            m("bert base", id, true, &[]),
            Some((Level::Completed, 0, true))
        );
        assert_eq!(
            m("sentence tr", v2, true, &[]),
            Some((Level::Completed, 0, false))
        );
        assert_eq!(m("bert base un", "bert-base-uncased", false, &[]), None);
        assert_eq!(m("bert bas un", "bert-base-uncased", true, &[]), None);
        assert_eq!(m("base un", "bert-base-uncased", true, &[]), None);
        // Exact still wins its level, whatever else could match.
        assert_eq!(
            m("bert base uncased", "bert-base-uncased", true, &[]),
            Some((Level::Id, 0, false))
        );
    }

    /// An engine over cards of a known shape: the original of a name
    /// (most downloads), its copies (namespaced, fewer downloads), its
    /// siblings, and an unrelated card whose id shares the misspelt word's
    /// neighbourhood.
    #[test]
    fn a_name_with_a_slip_or_half_typed_finds_the_original() {
        use hubsearch_core::{Config, ModelCard, SearchRequest};
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.index.dir = dir.path().join("index");
        config.embedding.model = hubsearch_core::EmbeddingModel::None;
        let e = Engine::open_or_create(config).unwrap();
        // Copies repeat their name in the description, so BM25 alone
        // ranks them above the original.
        let card = |id: &str, downloads: u64| ModelCard {
            id: id.into(),
            name: id.rsplit('/').next().unwrap().into(),
            builder: id.split_once('/').map_or("", |(b, _)| b).into(),
            downloads,
            description: if id.contains('/') {
                id.replace(['-', '/'], " ").repeat(3)
            } else {
                String::new()
            },
            ..Default::default()
        };
        let mut cards = vec![
            card("bert-base-uncased", 5000),
            card("bert-base-cased", 3000),
            card("tugstugi/bert-base-mongolian-uncased", 22),
            card("google/electra-small-discriminator", 900),
        ];
        for i in 0..40 {
            cards.push(card(&format!("u{i}/bert-base-uncased"), i));
            cards.push(card(&format!("v{i}/bert-base-uncased-ft"), 100 + i));
            cards.push(card(&format!("w{i}/electra-small-discriminator-ft"), i));
        }
        let path = dir.path().join("cards.jsonl");
        let lines: Vec<String> = cards
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        e.import(&[path], &crate::progress::silent).unwrap();
        let top = |q: &str| -> Vec<String> {
            let mut req = SearchRequest::new(q, 5);
            req.record = false;
            e.search(&req)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.id)
                .collect()
        };
        // The most downloaded card named (by the rules) comes first.
        let most_downloaded = |pred: &dyn Fn(&str) -> bool| {
            cards
                .iter()
                .filter(|c| pred(&c.id))
                .max_by_key(|c| c.downloads)
                .unwrap()
                .id
                .clone()
        };
        assert_eq!(top("bert base uncasd")[0], "bert-base-uncased");
        assert_eq!(top("bert base ucnased")[0], "bert-base-uncased");
        assert_eq!(
            top("electra smlal discriminator")[0],
            "google/electra-small-discriminator"
        );
        let completes = |typed: &'static str| {
            move |id: &str| {
                let name = id.rsplit('/').next().unwrap();
                name.replace('-', " ").starts_with(typed)
                    || id.replace(['-', '/'], " ").starts_with(typed)
            }
        };
        for typed in ["bert base un", "bert base", "bert", "electra sm"] {
            let want = most_downloaded(&completes(typed));
            assert!(
                top(typed).contains(&want),
                "{typed}: {want} in {:?}",
                top(typed)
            );
        }
        // Typed whole (a trailing space), the name is no prefix any more.
        assert_eq!(top("bert base cased ")[0], "bert-base-cased");
        // Suggestions: the most downloaded completions, in order.
        for typed in ["bert base un", "electra sm", "v1"] {
            let pred = completes(typed);
            let mut want: Vec<&ModelCard> = cards.iter().filter(|c| pred(&c.id)).collect();
            want.sort_by_key(|b| std::cmp::Reverse(b.downloads));
            let want: Vec<String> = want.iter().take(4).map(|c| c.id.clone()).collect();
            let got = e.suggest(typed, 4).unwrap();
            let models: Vec<String> = got
                .iter()
                .filter(|s| s.kind == SuggestionKind::Model)
                .map(|s| s.value.clone())
                .collect();
            assert_eq!(models, want, "{typed}");
            assert!(got[..models.len()]
                .iter()
                .all(|s| s.kind == SuggestionKind::Model));
        }
        let builders: Vec<String> = e
            .suggest("v1", 4)
            .unwrap()
            .into_iter()
            .filter(|s| s.kind == SuggestionKind::Builder)
            .map(|s| s.value)
            .collect();
        assert_eq!(builders.len(), 3);
        assert!(builders.iter().all(|b| b.starts_with("v1")), "{builders:?}");
        assert!(e.suggest("  -- ", 4).unwrap().is_empty());
    }
}
