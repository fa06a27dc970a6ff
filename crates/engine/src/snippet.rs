//! Snippets: a hit's card text as a person reads it, cropped around the
//! words the query matched, those words marked (docs/retrieval.md,
//! Snippets).
//!
//! - [`plain_text`] reduces a card's Markdown to text: YAML front matter,
//!   HTML comments, `<script>`/`<style>` elements, images, HTML tags,
//!   fence lines, heading and list markers, emphasis and table rules go;
//!   links keep their text, code keeps its characters (a `<b>` written in
//!   a code span is text, not a tag), the common HTML entities are decoded;
//!   whitespace collapses to single spaces.
//! - [`Marker`] knows what the query matched: each query word as typed and
//!   by its stem (the text analyzer's, so `translate` marks `translation`),
//!   the corrections of words no card has (`wav2vce2` marks `wav2vec2`) and,
//!   while the last word is being typed, the words it begins.
//! - [`Marker::formatted`] picks the window of about [`WINDOW`] bytes that
//!   holds the most distinct matched words (then the most matches, then the
//!   earliest) in the card body or the description, and returns it as
//!   HTML: every character of the text escaped (`& < > " '`), the matched
//!   words inside `<mark>`...`</mark>`, `…` where the text was cropped. It
//!   is the only markup in it, so a page may insert it as HTML.

use rustc_hash::{FxHashMap, FxHashSet};

use hubsearch_core::ModelCard;
use hubsearch_index::analyzer::text_tokens;
pub use hubsearch_index::plain::{cut, plain_text, snippet_texts, MAX_TEXT};

/// About how many bytes of text a snippet shows.
pub const WINDOW: usize = 240;

/// Function words never marked (they match nearly every card).
/// The longest of [`STOPWORDS`].
const STOPWORD_LEN: usize = 4;
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "that", "the", "this", "to", "with",
];

/// What a query matched, to mark in a card's text.
///
/// Marking scans every word of a hit's text, so a word that cannot match
/// costs no allocation and no hashing: an ASCII word is looked at only if
/// its first letters may begin a query stem, exact word or typed prefix
/// (`Heads`), or an upper-case letter inside it begins one (a part of a
/// name); only those words are lowercased into a buffer and looked up,
/// once per distinct word (`memo`).
#[derive(Clone)]
pub struct Marker {
    /// Lowercase words matched as written (the query's words, corrections).
    exact: FxHashSet<String>,
    /// Their stems under the text analyzer.
    stems: FxHashSet<String>,
    /// The first letters of the stems and of the exact words.
    firsts: Vec<char>,
    /// ASCII words worth looking up (`Heads`): by the first letters of the
    /// stems, exact words and the typed prefix.
    heads: Heads,
    /// The last word while it is being typed: words starting with it match.
    prefix: Option<String>,
    /// The terms a word may match (stems, and `prefix*`); a span holds an
    /// index into it.
    terms: Vec<String>,
    /// The term each lowercase text word matched (or none), once computed.
    memo: FxHashMap<String, Option<u32>>,
}

impl Marker {
    /// A marker for the query's `words` (lowercase, as the index split
    /// them), the `corrections` of its unknown words, and the `typing`
    /// last word (being typed: words that start with it match).
    pub fn new(words: &[String], corrections: &[String], typing: Option<&str>) -> Marker {
        let mut m = Marker {
            exact: FxHashSet::default(),
            stems: FxHashSet::default(),
            firsts: Vec::new(),
            heads: Heads::default(),
            prefix: typing
                .filter(|w| w.chars().count() >= 2)
                .map(str::to_lowercase),
            terms: Vec::new(),
            memo: FxHashMap::default(),
        };
        for w in words.iter().chain(corrections) {
            let w = w.to_lowercase();
            if STOPWORDS.contains(&w.as_str()) {
                continue;
            }
            let s = stem(&w);
            m.firsts.extend(s.chars().next());
            m.firsts.extend(w.chars().next());
            m.stems.insert(s);
            m.exact.insert(w);
        }
        m.firsts.sort_unstable();
        m.firsts.dedup();
        for t in m.stems.iter().chain(&m.exact).chain(&m.prefix) {
            m.heads.add(t);
        }
        m
    }

    /// A marker that marks nothing (listings, similar models).
    pub fn none() -> Marker {
        Marker::new(&[], &[], None)
    }

    /// Whether a lowercase word could match at all (see the type's doc):
    /// no hashing, no allocation.
    fn may_match(&self, first: char, word: &str) -> bool {
        self.firsts.contains(&first) || self.prefix.as_deref().is_some_and(|p| word.starts_with(p))
    }

    /// The term a lowercase text word matches, if any (its stem, or the
    /// prefix typed), as an index into `terms`.
    fn matches(&mut self, word: &str) -> Option<u32> {
        let first = word.chars().next()?;
        if !self.may_match(first, word) {
            return None;
        }
        if let Some(t) = self.memo.get(word) {
            return *t;
        }
        let t = self.match_uncached(first, word);
        self.memo.insert(word.to_string(), t);
        t
    }

    fn match_uncached(&mut self, first: char, word: &str) -> Option<u32> {
        if word.len() <= STOPWORD_LEN && STOPWORDS.contains(&word) {
            return None;
        }
        if self.exact.contains(word) {
            let s = cached_stem(word);
            return Some(self.term(s));
        }
        if self.firsts.contains(&first) {
            let stems = &self.stems;
            if let Some(s) = with_stem(word, |s| stems.contains(s).then(|| s.to_string())) {
                return Some(self.term(s));
            }
        }
        match &self.prefix {
            Some(p) if word.starts_with(p.as_str()) => {
                let t = format!("{p}*");
                Some(self.term(t))
            }
            _ => None,
        }
    }

    /// The index of `term` in `terms`, added if new.
    fn term(&mut self, term: String) -> u32 {
        match self.terms.iter().position(|t| *t == term) {
            Some(i) => i as u32,
            None => {
                self.terms.push(term);
                (self.terms.len() - 1) as u32
            }
        }
    }

    /// The term a text run matches (`run` as written, `lower` a buffer):
    /// `None` when its lowercase form differs in length (as the index
    /// would not match it either) or nothing matched.
    fn run_matches(&mut self, run: &str, lower: &mut String) -> Option<u32> {
        let first = run.chars().next()?;
        let first_lower = if first.is_ascii() {
            first.to_ascii_lowercase()
        } else {
            first.to_lowercase().next()?
        };
        // Cheap rejection before lowercasing the whole run.
        let could = self.firsts.contains(&first_lower)
            || self
                .prefix
                .as_deref()
                .is_some_and(|p| p.starts_with(first_lower) && run.len() >= p.len());
        if !could {
            return None;
        }
        lower.clear();
        if run.is_ascii() {
            lower.push_str(run);
            lower.make_ascii_lowercase();
        } else {
            lower.push_str(&run.to_lowercase());
            if lower.len() != run.len() {
                return None;
            }
        }
        let word = std::mem::take(lower);
        let t = self.matches(&word);
        *lower = word;
        t
    }

    /// The words of `text` (byte ranges), each with the term it matched.
    fn spans(&mut self, text: &str) -> Vec<Span> {
        let mut out = Vec::with_capacity(text.len() / 5);
        let mut lower = String::new();
        for (start, end) in words_of(text) {
            let run = &text[start..end];
            let upper = if run.is_ascii() {
                run.bytes().skip(1).any(|c| c.is_ascii_uppercase())
            } else {
                run.chars().skip(1).any(char::is_uppercase)
            };
            self.run_spans(run, start, upper, &mut lower, &mut out, false);
        }
        out
    }

    /// The spans of one run of `text` (at `start`; `upper`: an upper-case
    /// letter after its first) into `out`: the run when it matches as a
    /// whole or has one part, else its parts. `only_matched`: the matched
    /// ones only.
    fn run_spans(
        &mut self,
        run: &str,
        start: usize,
        upper: bool,
        lower: &mut String,
        out: &mut Vec<Span>,
        only_matched: bool,
    ) {
        let end = start + run.len();
        if let Some(term) = self.run_matches(run, lower) {
            out.push(Span {
                start,
                end,
                term: Some(term),
            });
            return;
        }
        // `XLMRobertaModel`: its parts may match on their own. A run
        // without an upper-case letter is one part, already looked at.
        let parts = if upper { case_parts(run) } else { Vec::new() };
        if parts.len() <= 1 {
            if !only_matched {
                out.push(Span {
                    start,
                    end,
                    term: None,
                });
            }
            return;
        }
        for (s, e) in parts {
            let term = self.run_matches(&run[s..e], lower);
            if term.is_some() || !only_matched {
                out.push(Span {
                    start: start + s,
                    end: start + e,
                    term,
                });
            }
        }
    }

    /// The card's snippet as safe HTML (see the module doc): from the card
    /// body or the description, whichever has the better window (the
    /// description on a tie), the description's start when neither has a
    /// match.
    pub fn formatted(&mut self, card: &ModelCard) -> String {
        let [desc, body] = snippet_texts(card);
        self.formatted_texts(&desc, &body)
    }

    /// [`Marker::formatted`] from a card's snippet texts (description,
    /// body), as [`snippet_texts`] makes them.
    pub fn formatted_texts(&mut self, desc: &str, body: &str) -> String {
        if self.exact.is_empty() && self.prefix.is_none() && !desc.is_empty() {
            // Nothing to mark (browsing): the description's start.
            return self.render(desc, &[], 0);
        }
        let bs = self.matched(body);
        let ds = self.matched(desc);
        let (bw, dw) = (best_window(&bs), best_window(&ds));
        let use_body = if bw.score == (0, 0) && dw.score == (0, 0) {
            desc.trim().is_empty()
        } else {
            bw.score > dw.score
        };
        if use_body {
            self.render(body, &bs, bw.first)
        } else {
            self.render(desc, &ds, dw.first)
        }
    }

    /// The matched words of `text`, in order: exactly the spans of
    /// [`Marker::spans`] that have a term, found without a span per word.
    /// In ASCII text a word is looked at only when its first letter, or an
    /// upper-case letter inside it (where a part of `XLMRobertaModel`
    /// starts), is the first letter of something that can match.
    fn matched(&mut self, text: &str) -> Vec<Span> {
        let mut inner = [false; 128];
        for c in self
            .firsts
            .iter()
            .copied()
            .chain(self.prefix.iter().flat_map(|p| p.chars().next()))
        {
            if c.is_ascii() {
                inner[c as usize] = true;
            }
        }
        let mut flags = [SEPISH; 256];
        for c in 0..128u8 {
            flags[c as usize] = if !c.is_ascii_alphanumeric() {
                SEPISH
            } else if c.is_ascii_uppercase() && inner[c.to_ascii_lowercase() as usize] {
                ALWAYS
                    | if self.heads.may_begin_with(c) {
                        HEAD
                    } else {
                        0
                    }
            } else if self.heads.may_begin_with(c) {
                HEAD
            } else {
                0
            };
        }
        flags[0xC0..].fill(SEPISH | ALWAYS);
        // Every word the full scan would look at has a flagged byte: its
        // first (`HEAD` after `SEPISH`), or one inside (`ALWAYS`); the
        // words between flagged bytes are passed over unread. A run's end
        // is never inside a character, so the scan goes on from there.
        let b = text.as_bytes();
        let mut out = Vec::with_capacity(32);
        let mut lower = String::new();
        let mut i = 0;
        while let Some(hit) = next_flagged(b, &flags, i) {
            i = self.look_at_run(text, hit, &inner, &mut lower, &mut out);
        }
        out
    }

    /// The run (letters and digits) at byte `i` of `text`, looked at as
    /// [`Marker::matched`] says: its matched spans into `out` when its
    /// first letters may begin a term (`Heads`), an upper-case letter inside it
    /// may (`inner`: the first letters, lowercase), or it has a character
    /// beyond ASCII. Returns where the run ends (past `i` when `i` is not
    /// in one).
    fn look_at_run(
        &mut self,
        text: &str,
        i: usize,
        inner: &[bool; 128],
        lower: &mut String,
        out: &mut Vec<Span>,
    ) -> usize {
        let c = text[i..].chars().next().unwrap_or(' ');
        if !c.is_alphanumeric() {
            return i + c.len_utf8();
        }
        let b = text.as_bytes();
        let at = |k: usize| b.get(k).copied().unwrap_or(b' ');
        let start = run_start(text, i);
        let c = b[start];
        let mut ascii = c.is_ascii();
        let first = ascii && self.heads.may_begin(c, at(start + 1), at(start + 2));
        let mut has_inner = false;
        let mut end = start;
        for (k, c) in text[start..].char_indices() {
            if !c.is_alphanumeric() {
                break;
            }
            if k > 0 && c.is_ascii_uppercase() {
                has_inner |= inner[c.to_ascii_lowercase() as usize];
            }
            ascii &= c.is_ascii();
            end = start + k + c.len_utf8();
        }
        // A run with a letter beyond ASCII is looked at in full.
        if first || has_inner || !ascii {
            let run = &text[start..end];
            let upper = run.chars().skip(1).any(char::is_uppercase);
            self.run_spans(run, start, upper, lower, out, true);
        }
        end
    }

    /// The window of `text` around its matched word `matched[first]` (the
    /// matches in it centred; the text's start when nothing matched), as
    /// escaped HTML with the matches marked. Only the words near the window
    /// are split and looked up (`region`), with the same result as over the
    /// whole text.
    fn render(&mut self, text: &str, matched: &[Span], first: usize) -> String {
        let (a, last) = match matched.get(first) {
            Some(f) => {
                // The last match that fits in the window with the first.
                let last = matched[first..]
                    .iter()
                    .filter(|s| s.end - f.start <= WINDOW)
                    .map(|s| s.end)
                    .max()
                    .unwrap_or(f.end);
                (f.start, last)
            }
            None => (0, 0),
        };
        let pad = WINDOW.saturating_sub(last - a) / 2;
        let want = if matched.is_empty() {
            0
        } else {
            a.saturating_sub(pad)
        };
        // Every word that can be in the window, and the first after it: the
        // window starts at or after `want` and ends before `a + WINDOW`.
        let r0 = run_start(text, want);
        let r1 = run_end_beyond(text, a.max(want) + WINDOW);
        let spans = self.region(text, r0, r1);
        if spans.is_empty() {
            // No word in the whole text (a region ends past the first
            // word's end).
            return escape(cut(text.trim(), WINDOW));
        }
        // Start at a word: the first whose start is at or after `want`.
        let from = spans.iter().position(|s| s.start >= want).unwrap_or(0);
        let first_word = from == 0 && !has_word(&text[..r0]);
        let begin = if first_word { 0 } else { spans[from].start };
        let limit = begin + WINDOW;
        let to = spans[from..]
            .iter()
            .take_while(|s| s.end <= limit)
            .count()
            .max(1)
            + from;
        if spans[from].end > limit {
            // One word longer than the window: its start.
            return format!("{}…", escape(cut(&text[begin..], WINDOW)));
        }
        // More words after the window: the region ends with a word that
        // ends past `limit`, or at the text's end.
        let more = to < spans.len();
        let end = if more { spans[to - 1].end } else { text.len() };
        let mut out = String::with_capacity(2 * (end - begin) + 16);
        if begin > 0 {
            out.push('…');
        }
        let mut at = begin;
        for s in &spans[from..to] {
            escape_into(&mut out, &text[at..s.start]);
            if s.term.is_some() {
                out.push_str("<mark>");
                escape_into(&mut out, &text[s.start..s.end]);
                out.push_str("</mark>");
            } else {
                escape_into(&mut out, &text[s.start..s.end]);
            }
            at = s.end;
        }
        escape_into(&mut out, &text[at..end]);
        if more {
            out.push('…');
        }
        out.trim().to_string()
    }

    /// [`Marker::spans`] of `text[r0..r1]`, in `text`'s offsets; `r0` and
    /// `r1` are word boundaries, so the words are the whole text's.
    fn region(&mut self, text: &str, r0: usize, r1: usize) -> Vec<Span> {
        let mut spans = self.spans(&text[r0..r1]);
        for s in &mut spans {
            s.start += r0;
            s.end += r0;
        }
        spans
    }
}

/// [`Marker::matched`]'s byte flags: an ASCII separator, or a byte beyond
/// ASCII (what may come before a word that begins with [`HEAD`]).
const SEPISH: u8 = 1;
/// An ASCII letter or digit a word worth a look may begin with
/// (`SEPISH << 1`, for [`next_flagged`]'s arithmetic).
const HEAD: u8 = SEPISH << 1;
/// An upper-case letter that may begin a match inside a word, or the first
/// byte of a character beyond ASCII.
const ALWAYS: u8 = 4;

/// The first flagged byte of `b` at or after `from`: [`ALWAYS`], or
/// [`HEAD`] after a [`SEPISH`] byte (or at the start). A loop of its own,
/// so that it keeps its state in registers.
fn next_flagged(b: &[u8], flags: &[u8; 256], from: usize) -> Option<usize> {
    let mut before = match from {
        0 => SEPISH,
        _ => flags[*b.get(from - 1)? as usize],
    };
    for (k, &c) in b.get(from..)?.iter().enumerate() {
        let f = flags[c as usize];
        // Bit arithmetic, not `||`: one branch a byte, rarely taken.
        if (f & ALWAYS) | (f & HEAD & (before << 1)) != 0 {
            return Some(from + k);
        }
        before = f;
    }
    None
}

/// Whether `text` has a word (an alphanumeric character).
fn has_word(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_alphanumeric())
    } else {
        text.chars().any(char::is_alphanumeric)
    }
}

/// The start of the word `text[i..]` begins in (`i` when it is not in a
/// word): a word boundary at or before `i`.
fn run_start(text: &str, i: usize) -> usize {
    let mut i = floor_char(text, i.min(text.len()));
    while let Some(c) = text[..i].chars().next_back() {
        if !c.is_alphanumeric() {
            break;
        }
        i -= c.len_utf8();
    }
    i
}

/// The end of the first word that ends after `x` (the text's end when there
/// is none): a word boundary.
fn run_end_beyond(text: &str, x: usize) -> usize {
    if x >= text.len() {
        return text.len();
    }
    let x = floor_char(text, x);
    let mut in_word = false;
    for (k, c) in text[x..].char_indices() {
        if c.is_alphanumeric() {
            in_word = true;
        } else if in_word {
            return x + k;
        }
    }
    text.len()
}

/// The largest character boundary at or before `i`.
fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The stem of a lowercase word under the text analyzer, remembered
/// across searches (stemming is a pure function of the word, and running
/// the analyzer was a large part of marking): at most [`STEM_CACHE`]
/// words, forgotten all at once when full.
fn cached_stem(word: &str) -> String {
    with_stem(word, str::to_string)
}

/// `f` of the stem of `word` ([`cached_stem`] without a copy of the stem).
fn with_stem<R>(word: &str, f: impl FnOnce(&str) -> R) -> R {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<FxHashMap<String, String>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(word) {
        return f(s);
    }
    let s = stem(word);
    let r = f(&s);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= STEM_CACHE {
        c.clear();
    }
    c.insert(word.to_string(), s);
    r
}

/// The stem of a lowercase word under the text analyzer (one analyzer
/// per thread).
fn stem(word: &str) -> String {
    text_tokens(word)
        .into_iter()
        .next()
        .unwrap_or_else(|| word.to_string())
}

/// Words whose stems [`cached_stem`] keeps.
const STEM_CACHE: usize = 100_000;

/// A word of the text and the term it matched.
#[derive(Debug, Clone)]
struct Span {
    start: usize,
    end: usize,
    /// The matched term (an index into the marker's terms).
    term: Option<u32>,
}

/// The best window: the index of its first matched span (0 when nothing
/// matched) and its score (distinct terms, matches).
struct Window {
    first: usize,
    score: (usize, usize),
}

/// Slide a window of [`WINDOW`] bytes over the matched spans, starting at
/// each: the most distinct terms, then the most matches, then the earliest.
fn best_window(spans: &[Span]) -> Window {
    let matched: Vec<usize> = (0..spans.len())
        .filter(|&i| spans[i].term.is_some())
        .collect();
    let mut best = Window {
        first: 0,
        score: (0, 0),
    };
    // The distinct terms of a window (a query has few: a list is cheaper
    // than a set).
    let mut terms: Vec<Option<u32>> = Vec::new();
    for (k, &i) in matched.iter().enumerate() {
        terms.clear();
        let mut n = 0;
        for &j in &matched[k..] {
            if spans[j].end - spans[i].start > WINDOW {
                break;
            }
            if !terms.contains(&spans[j].term) {
                terms.push(spans[j].term);
            }
            n += 1;
        }
        let score = (terms.len(), n);
        if score > best.score {
            best = Window { first: i, score };
        }
    }
    best
}

/// HTML-escape every character that could start markup or end an
/// attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// [`escape`] `s` onto the end of `out`: runs without such a character are
/// copied at once.
fn escape_into(out: &mut String, s: &str) {
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&s[from..]);
}

/// The runs of alphanumeric characters of `text`, as byte ranges.
fn words_of(text: &str) -> Vec<(usize, usize)> {
    if text.is_ascii() {
        let bytes = text.bytes().enumerate();
        runs(
            text.len(),
            bytes.map(|(i, c)| (i, c.is_ascii_alphanumeric())),
        )
    } else {
        let chars = text.char_indices();
        runs(text.len(), chars.map(|(i, c)| (i, c.is_alphanumeric())))
    }
}

/// The byte ranges of the runs of characters that are in a word, given
/// each character's offset and whether it is, in a text of `len` bytes.
fn runs(len: usize, chars: impl Iterator<Item = (usize, bool)>) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(len / 5);
    let mut start = None;
    for (i, in_word) in chars {
        match (in_word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, len));
    }
    out
}

/// A run's parts split at case changes, as the index splits identifiers
/// (`XLMRobertaModel` -> `XLM`, `Roberta`, `Model`), byte ranges in the run.
fn case_parts(run: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = run.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..chars.len() {
        let (i, c) = chars[k];
        let prev = chars[k - 1].1;
        let next_lower = chars.get(k + 1).is_some_and(|(_, n)| n.is_lowercase());
        let split = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_uppercase() && c.is_uppercase() && next_lower);
        if split {
            out.push((start, i));
            start = i;
        }
    }
    out.push((start, run.len()));
    out
}

#[path = "snippet_heads.rs"]
mod heads;
use heads::Heads;

#[cfg(test)]
#[path = "snippet_tests.rs"]
mod tests;
