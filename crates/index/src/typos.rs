//! Typo tolerance (docs/retrieval.md, Prefixes and typos): how many
//! edits a word tolerates, and the edit distance that counts them. The
//! text query corrects words no card contains by these rules (the id
//! words a misspelt word may stand for, [`TextIndex::corrections`]), and
//! names first (in the engine) compares query words with ids by them.

use std::collections::HashMap;

use tantivy::query::FuzzyTermQuery;
use tantivy::{Searcher, Term};

use crate::error::Result;
use crate::text_index::TextIndex;

/// Most corrections of one word searched (the most common ones).
const MAX_CORRECTIONS: usize = 8;

/// Most words whose corrections are kept across searches; the cache is
/// emptied when it is full (a word's walk costs 0.1-0.6 ms, docs/retrieval.md).
const CACHED_WORDS: usize = 4096;

/// The corrections of unknown words found by earlier searches, valid for
/// the segments they were found on: they depend only on the id
/// dictionaries and their document frequencies, which change only when the
/// segments do (a delete changes no document frequency until a merge,
/// which makes a new segment). Another set of segments empties it.
#[derive(Default)]
pub(crate) struct CorrectionCache(std::sync::Mutex<Cached>);

/// The segments the cached corrections were found on, and each word's.
type Cached = (
    Vec<tantivy::index::SegmentId>,
    HashMap<String, Vec<(String, u64)>>,
);

impl CorrectionCache {
    fn get(
        &self,
        segments: &[tantivy::index::SegmentId],
        word: &str,
    ) -> Option<Vec<(String, u64)>> {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (c.0 == segments).then(|| c.1.get(word).cloned()).flatten()
    }

    fn put(&self, segments: Vec<tantivy::index::SegmentId>, word: &str, found: &[(String, u64)]) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if c.0 != segments || c.1.len() >= CACHED_WORDS {
            c.1.clear();
            c.0 = segments;
        }
        c.1.insert(word.to_string(), found.to_vec());
    }
}

/// How many edits a query word of this many characters tolerates
/// (docs/retrieval.md, Prefixes and typos): none below 5, one from 5,
/// two from 9 (as Meilisearch and Typesense: shorter words have too many
/// neighbours). Digits are never corrected (see [`edit_distance`]).
pub fn edits_allowed(word: &str) -> usize {
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// The edit distance between `a` and `b` (ASCII case ignored) when it is
/// at most `max`: insertions, deletions, substitutions and transpositions
/// of two adjacent characters each count one (optimal string alignment).
/// `None` beyond `max`, or when the two words' digits differ: numbers and
/// versions (`v2`, `l6`, `450k`, `wav2vec2`'s 2s) are never corrected into
/// other numbers, only the letters around them.
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    if !same_digits(a, b) {
        return None;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let n = b.len();
    // Three rows of the dynamic programme: two back, one back, current.
    let mut rows = [
        (0..=n).collect::<Vec<usize>>(),
        vec![0; n + 1],
        vec![0; n + 1],
    ];
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur][0] = i;
        let mut row_min = i;
        for j in 1..=n {
            let ca = a[i - 1].to_ascii_lowercase();
            let cb = b[j - 1].to_ascii_lowercase();
            let cost = usize::from(ca != cb);
            let mut d = (rows[prev][j] + 1)
                .min(rows[cur][j - 1] + 1)
                .min(rows[prev][j - 1] + cost);
            if i > 1
                && j > 1
                && ca == b[j - 2].to_ascii_lowercase()
                && a[i - 2].to_ascii_lowercase() == cb
            {
                d = d.min(rows[prev2][j - 2] + 1);
            }
            rows[cur][j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return None;
        }
    }
    let d = rows[a.len() % 3][n];
    (d <= max).then_some(d)
}

/// Whether `a` and `b` hold the same digits in the same order.
pub fn same_digits(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).collect::<Vec<u8>>();
    digits(a) == digits(b)
}

impl TextIndex {
    /// The words of ids a misspelt `word` may stand for, with how many
    /// cards' ids have each, the most common first (at most
    /// [`MAX_CORRECTIONS`]): those within the fewest edits that find any,
    /// up to what the word's length tolerates (`typos::edits_allowed`: one
    /// from 5 characters, two from 9; a transposition counts one), its
    /// digits unchanged. Ids are where names and the words people type
    /// for models are; one walk of the id dictionary with a Levenshtein
    /// automaton per segment and distance, once per set of segments (later
    /// searches read the walk's result from a cache).
    pub fn corrections(&self, searcher: &Searcher, word: &str) -> Result<Vec<(String, u64)>> {
        let segments: Vec<tantivy::index::SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        if let Some(found) = self.corrections.get(&segments, word) {
            return Ok(found);
        }
        let found = self.walk_corrections(searcher, word)?;
        self.corrections.put(segments, word, &found);
        Ok(found)
    }

    /// [`TextIndex::corrections`] without the cache.
    fn walk_corrections(&self, searcher: &Searcher, word: &str) -> Result<Vec<(String, u64)>> {
        let max = edits_allowed(word);
        let id_text = self.fields().id_text;
        for distance in 1..=max {
            let query =
                FuzzyTermQuery::new(Term::from_field_text(id_text, word), distance as u8, true);
            let automaton = query.automaton()?;
            let mut found: HashMap<String, u64> = HashMap::new();
            for reader in searcher.segment_readers() {
                let inverted = reader.inverted_index(id_text)?;
                let mut stream = inverted
                    .terms()
                    .search(&automaton)
                    .into_stream()
                    .map_err(tantivy::TantivyError::from)?;
                while stream.advance() {
                    let Ok(term) = std::str::from_utf8(stream.key()) else {
                        continue;
                    };
                    if term != word && edit_distance(word, term, distance).is_some() {
                        *found.entry(term.to_string()).or_default() +=
                            u64::from(stream.value().doc_freq);
                    }
                }
            }
            if !found.is_empty() {
                let mut found: Vec<(String, u64)> = found.into_iter().collect();
                found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                found.truncate(MAX_CORRECTIONS);
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
/// The reference: the full-matrix optimal string alignment distance,
/// as in the textbooks (no bound, no early exit, lowercase first).
pub(crate) fn reference(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair of many short random words over a small alphabet (so
    /// that near misses are common) agrees with the reference at every
    /// bound, wherever the digits agree.
    #[test]
    fn bounded_distance_agrees_with_the_reference() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let alphabet = b"abcA";
        let words: Vec<String> = (0..300)
            .map(|_| {
                let len = next(8) as usize;
                (0..len)
                    .map(|_| alphabet[next(alphabet.len() as u64) as usize] as char)
                    .collect()
            })
            .collect();
        let mut seen = [0usize; 4];
        for a in &words {
            for b in words.iter().take(120) {
                let want = reference(a, b);
                seen[want.min(3)] += 1;
                for max in 0..4 {
                    let got = edit_distance(a, b, max);
                    assert_eq!(got, (want <= max).then_some(want), "{a:?} {b:?} {max}");
                }
            }
        }
        assert!(
            seen.iter().all(|n| *n > 50),
            "every distance occurs: {seen:?}"
        );
    }

    #[test]
    fn slips_and_numbers() {
        assert_eq!(edit_distance("paraphrsae", "paraphrase", 2), Some(1));
        assert_eq!(edit_distance("smlal", "small", 1), Some(1));
        assert_eq!(edit_distance("ucased", "uncased", 1), Some(1));
        assert_eq!(edit_distance("wav2vce2", "wav2vec2", 1), Some(1));
        assert_eq!(edit_distance("Uncased", "uncased", 0), Some(0));
        // Digits never change, whatever the bound.
        assert_eq!(edit_distance("v2", "v3", 2), None);
        assert_eq!(edit_distance("l6", "l12", 2), None);
        assert_eq!(edit_distance("base", "base1", 2), None);
        assert_eq!(edit_distance("wav2vec2", "wav2vec3", 2), None);
        assert_eq!(edits_allowed("base"), 0);
        assert_eq!(edits_allowed("large"), 1);
        assert_eq!(edits_allowed("multilingual"), 2);
        assert_eq!(edits_allowed("discrimin"), 2);
        assert_eq!(edits_allowed("discrimi"), 1);
    }
}
