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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use hubsearch_core::ModelCard;
use hubsearch_index::analyzer::{text_analyzer, tokens};

/// About how many bytes of text a snippet shows.
pub const WINDOW: usize = 240;
/// How much of a card's text is read for a snippet (a longer body is cut
/// here, at a character boundary).
pub const MAX_TEXT: usize = 64 * 1024;

/// Function words never marked (they match nearly every card).
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "that", "the", "this", "to", "with",
];

/// What a query matched, to mark in a card's text.
///
/// Marking reads every word of a hit's text, so the per-word path does no
/// allocation and no hashing for a word that cannot match: a word matches
/// only if its first letter begins one of the query's stems (stemming
/// changes a word's end, never its first letter) or it starts with the
/// word being typed; only those words are lowercased into a buffer and
/// looked up, once per distinct word (`memo`).
pub struct Marker {
    /// Lowercase words matched as written (the query's words, corrections).
    exact: HashSet<String>,
    /// Their stems under the text analyzer.
    stems: HashSet<String>,
    /// The first letters of the stems and of the exact words.
    firsts: Vec<char>,
    /// The last word while it is being typed: words starting with it match.
    prefix: Option<String>,
    /// The terms a word may match (stems, and `prefix*`); a span holds an
    /// index into it.
    terms: Vec<String>,
    /// The term each lowercase text word matched (or none), once computed.
    memo: HashMap<String, Option<u32>>,
    stem: Box<dyn FnMut(&str) -> String + Send>,
}

impl Marker {
    /// A marker for the query's `words` (lowercase, as the index split
    /// them), the `corrections` of its unknown words, and the `typing`
    /// last word (being typed: words that start with it match).
    pub fn new(words: &[String], corrections: &[String], typing: Option<&str>) -> Marker {
        let mut analyzer = text_analyzer();
        let stem = Box::new(move |w: &str| {
            tokens(&mut analyzer, w)
                .into_iter()
                .next()
                .unwrap_or_else(|| w.to_string())
        });
        let mut m = Marker {
            exact: HashSet::new(),
            stems: HashSet::new(),
            firsts: Vec::new(),
            prefix: typing
                .filter(|w| w.chars().count() >= 2)
                .map(str::to_lowercase),
            terms: Vec::new(),
            memo: HashMap::new(),
            stem,
        };
        for w in words.iter().chain(corrections) {
            let w = w.to_lowercase();
            if STOPWORDS.contains(&w.as_str()) {
                continue;
            }
            let s = (m.stem)(&w);
            m.firsts.extend(s.chars().next());
            m.firsts.extend(w.chars().next());
            m.stems.insert(s);
            m.exact.insert(w);
        }
        m.firsts.sort_unstable();
        m.firsts.dedup();
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
        if STOPWORDS.contains(&word) {
            return None;
        }
        if self.exact.contains(word) {
            let s = cached_stem(word, &mut self.stem);
            return Some(self.term(s));
        }
        if self.firsts.contains(&first) {
            let s = cached_stem(word, &mut self.stem);
            if self.stems.contains(&s) {
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
            if let Some(term) = self.run_matches(run, &mut lower) {
                out.push(Span {
                    start,
                    end,
                    term: Some(term),
                });
                continue;
            }
            // `XLMRobertaModel`: its parts may match on their own. A run
            // without an upper-case letter is one part, already looked at.
            let upper = if run.is_ascii() {
                run.bytes().skip(1).any(|c| c.is_ascii_uppercase())
            } else {
                run.chars().skip(1).any(char::is_uppercase)
            };
            let parts = if upper { case_parts(run) } else { Vec::new() };
            if parts.len() <= 1 {
                out.push(Span {
                    start,
                    end,
                    term: None,
                });
                continue;
            }
            for (s, e) in parts {
                let term = self.run_matches(&run[s..e], &mut lower);
                out.push(Span {
                    start: start + s,
                    end: start + e,
                    term,
                });
            }
        }
        out
    }

    /// The card's snippet as safe HTML (see the module doc): from the card
    /// body or the description, whichever has the better window (the
    /// description on a tie), the description's start when neither has a
    /// match.
    pub fn formatted(&mut self, card: &ModelCard) -> String {
        let desc = plain_text(cut(&card.description, MAX_TEXT));
        if self.exact.is_empty() && self.prefix.is_none() && !desc.is_empty() {
            // Nothing to mark (browsing): the description's start.
            return render(&desc, &self.spans(&desc), 0);
        }
        let body = plain_text(cut(&card.card_text, MAX_TEXT));
        let bs = self.spans(&body);
        let ds = self.spans(&desc);
        let (bw, dw) = (best_window(&bs), best_window(&ds));
        let use_body = if bw.score == (0, 0) && dw.score == (0, 0) {
            desc.trim().is_empty()
        } else {
            bw.score > dw.score
        };
        if use_body {
            render(&body, &bs, bw.first)
        } else {
            render(&desc, &ds, dw.first)
        }
    }
}

/// The stem of a lowercase word under the text analyzer, remembered
/// across searches (stemming is a pure function of the word, and running
/// the analyzer was a large part of marking): at most [`STEM_CACHE`]
/// words, forgotten all at once when full.
fn cached_stem(word: &str, stem: &mut impl FnMut(&str) -> String) -> String {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<String, String>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(word) {
        return s.clone();
    }
    let s = stem(word);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= STEM_CACHE {
        c.clear();
    }
    c.insert(word.to_string(), s.clone());
    s
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
    for (k, &i) in matched.iter().enumerate() {
        let mut terms = HashSet::new();
        let mut n = 0;
        for &j in &matched[k..] {
            if spans[j].end - spans[i].start > WINDOW {
                break;
            }
            terms.insert(spans[j].term);
            n += 1;
        }
        let score = (terms.len(), n);
        if score > best.score {
            best = Window { first: i, score };
        }
    }
    best
}

/// The window of `text` around its matched span `first` (the matches in it
/// centred; the text's start when nothing matched), as escaped HTML with
/// the matches marked.
fn render(text: &str, spans: &[Span], first: usize) -> String {
    if spans.is_empty() {
        return escape(cut(text.trim(), WINDOW));
    }
    let matched = spans[first].term.is_some();
    // The last match that fits in the window with the first.
    let a = spans[first].start;
    let last = if matched {
        spans[first..]
            .iter()
            .filter(|s| s.term.is_some() && s.end - a <= WINDOW)
            .map(|s| s.end)
            .max()
            .unwrap_or(spans[first].end)
    } else {
        a
    };
    let pad = WINDOW.saturating_sub(last - a) / 2;
    let want = if matched { a.saturating_sub(pad) } else { 0 };
    // Start at a word: the first whose start is at or after `want`.
    let from = spans
        .iter()
        .position(|s| s.start >= want)
        .unwrap_or(first)
        .min(first);
    let begin = if from == 0 { 0 } else { spans[from].start };
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
    let end = if to == spans.len() {
        text.len()
    } else {
        spans[to - 1].end
    };
    let mut out = String::new();
    if begin > 0 {
        out.push('…');
    }
    let mut at = begin;
    for s in &spans[from..to] {
        out.push_str(&escape(&text[at..s.start]));
        if s.term.is_some() {
            out.push_str("<mark>");
            out.push_str(&escape(&text[s.start..s.end]));
            out.push_str("</mark>");
        } else {
            out.push_str(&escape(&text[s.start..s.end]));
        }
        at = s.end;
    }
    out.push_str(&escape(&text[at..end]));
    if to < spans.len() {
        out.push('…');
    }
    out.trim().to_string()
}

/// HTML-escape every character that could start markup or end an
/// attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// The runs of alphanumeric characters of `text`, as byte ranges.
fn words_of(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(text.len() / 5);
    let mut start = None;
    if text.is_ascii() {
        for (i, c) in text.bytes().enumerate() {
            match (c.is_ascii_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, text.len()));
        }
        return out;
    }
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
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

/// A card's Markdown reduced to plain text (see the module doc).
pub fn plain_text(markdown: &str) -> String {
    let text = strip_front_matter(markdown);
    // Each step copies the text only when it has something to remove.
    let text: Cow<'_, str> = if text.contains("<!--") {
        Cow::Owned(remove_between(text, "<!--", "-->"))
    } else {
        Cow::Borrowed(text)
    };
    let text = match find_ignore_case(&text, 0, "<script") {
        Some(_) => Cow::Owned(remove_elements(&text, "script")),
        None => text,
    };
    let text = match find_ignore_case(&text, 0, "<style") {
        Some(_) => Cow::Owned(remove_elements(&text, "style")),
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim();
        let marker = ["```", "~~~"].into_iter().find(|m| t.starts_with(m));
        if let Some(m) = marker {
            match fence {
                None => fence = Some(m),
                Some(open) if open == m => fence = None,
                Some(_) => {}
            }
            continue;
        }
        // Code keeps its characters (they are text, escaped on output).
        if fence.is_some() {
            if !t.is_empty() {
                out.push_str(t);
                out.push(' ');
            }
            continue;
        }
        let reduced = block_line(t);
        if !reduced.is_empty() {
            out.push_str(&reduced);
            out.push(' ');
        }
    }
    if out.contains('&') {
        collapse(&decode_entities(&out))
    } else {
        collapse(&out)
    }
}

/// Text without its leading YAML front matter (`---` lines around it).
fn strip_front_matter(text: &str) -> &str {
    let t = text.trim_start_matches('\u{feff}');
    let Some(rest) = t.strip_prefix("---") else {
        return text;
    };
    let Some(rest) = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
    else {
        return text;
    };
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        at += line.len();
        let l = line.trim_end();
        if l == "---" || l == "..." {
            return &rest[at..];
        }
    }
    text
}

/// `text` without every `open ... close` (unclosed: to the end).
fn remove_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        out.push_str(&rest[..i]);
        match rest[i + open.len()..].find(close) {
            Some(j) => rest = &rest[i + open.len() + j + close.len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// `text` without the elements `<name ...>...</name>` (ASCII case
/// ignored), content and all; an unclosed one runs to the end.
fn remove_elements(text: &str, name: &str) -> String {
    let open = format!("<{name}");
    let close = format!("</{name}");
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = find_ignore_case(text, at, &open) {
        // `<scriptx` is another tag; in a code span it is text.
        let after = text.as_bytes().get(i + open.len());
        if after.is_some_and(u8::is_ascii_alphanumeric) || in_code_span(text, i) {
            out.push_str(&text[at..i + open.len()]);
            at = i + open.len();
            continue;
        }
        out.push_str(&text[at..i]);
        let Some(j) = find_ignore_case(text, i, &close) else {
            return out;
        };
        at = text[j..].find('>').map_or(text.len(), |k| j + k + 1);
    }
    out.push_str(&text[at..]);
    out
}

/// The first byte position at or after `from` where `pat` (ASCII, starting
/// with `<`) occurs in `text`, ASCII case ignored.
fn find_ignore_case(text: &str, from: usize, pat: &str) -> Option<usize> {
    let (b, p) = (text.as_bytes(), pat.as_bytes());
    let mut at = from;
    while let Some(k) = text[at..].find(char::from(p[0])) {
        let i = at + k;
        if b.len() >= i + p.len() && b[i..i + p.len()].eq_ignore_ascii_case(p) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// Whether `text[i]` is inside a code span: an odd number of backticks
/// before it on its line.
fn in_code_span(text: &str, i: usize) -> bool {
    let line = text[..i].rfind('\n').map_or(0, |n| n + 1);
    text[line..i].matches('`').count() % 2 == 1
}

/// One line of Markdown outside code blocks, as text.
fn block_line(line: &str) -> String {
    let mut t = line;
    // Horizontal rules and table rules.
    if t.len() >= 3 && t.chars().all(|c| matches!(c, '-' | '*' | '_' | ' ')) {
        return String::new();
    }
    if t.starts_with('|') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
        return String::new();
    }
    // Link reference definitions: `[x]: http://...`.
    if t.starts_with('[') && t.contains("]:") && !t.contains("](") {
        return String::new();
    }
    loop {
        let before = t;
        t = t.trim_start_matches('>').trim_start();
        let hashes = t.len() - t.trim_start_matches('#').len();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with([' ', '\t']) {
            t = t[hashes..].trim().trim_end_matches('#').trim_end();
        }
        for m in ["- ", "* ", "+ "] {
            if let Some(r) = t.strip_prefix(m) {
                t = r.trim_start();
            }
        }
        let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && (t[digits..].starts_with(". ") || t[digits..].starts_with(") ")) {
            t = t[digits + 2..].trim_start();
        }
        if t == before {
            break;
        }
    }
    let t = inline(t);
    // Table cells: their text, apart.
    if t.contains('|') {
        t.replace('|', " ")
    } else {
        t
    }
}

/// Inline Markdown as text: code spans literal, images dropped, links
/// their text, autolinks their address, tags and emphasis marks dropped.
fn inline(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = b[i];
        match c {
            b'`' => {
                let ticks = s[i..].len() - s[i..].trim_start_matches('`').len();
                let fence = &s[i..i + ticks];
                match s[i + ticks..].find(fence) {
                    Some(j) => {
                        out.push_str(s[i + ticks..i + ticks + j].trim());
                        i += ticks + j + ticks;
                    }
                    None => i += ticks,
                }
                continue;
            }
            b'!' if b.get(i + 1) == Some(&b'[') => {
                if let Some((_, next)) = link_at(s, i + 1) {
                    i = next;
                    continue;
                }
            }
            b'[' => {
                if let Some((label, next)) = link_at(s, i) {
                    out.push_str(&inline(label));
                    i = next;
                    continue;
                }
            }
            b'<' => {
                if let Some(next) = tag_end(s, i) {
                    if let Some(url) = autolink(&s[i + 1..next - 1]) {
                        out.push_str(url);
                    } else {
                        out.push(' ');
                    }
                    i = next;
                    continue;
                }
            }
            b'*' | b'~' => {
                i += 1;
                continue;
            }
            b'_' => {
                let prev = s[..i]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric);
                let next = s[i + 1..].chars().next().is_some_and(char::is_alphanumeric);
                if !(prev && next) {
                    i += 1;
                    continue;
                }
            }
            _ => {
                // A run of ordinary characters, copied at once.
                let run = b[i..]
                    .iter()
                    .position(|c| matches!(c, b'`' | b'!' | b'[' | b'<' | b'*' | b'~' | b'_'))
                    .map_or(b.len(), |k| i + k);
                if run > i {
                    out.push_str(&s[i..run]);
                    i = run;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A link or image at `s[i] == '['`: its label and where it ends
/// (`[label](url)`, `[label][ref]`; a bare `[x]` is no link).
fn link_at(s: &str, i: usize) -> Option<(&str, usize)> {
    let close = matching(s, i, '[', ']')?;
    let label = &s[i + 1..close];
    let rest = &s[close + 1..];
    if rest.starts_with('(') {
        let end = matching(s, close + 1, '(', ')')?;
        return Some((label, end + 1));
    }
    if rest.starts_with('[') {
        let end = s[close + 1..].find(']')? + close + 1;
        return Some((label, end + 1));
    }
    None
}

/// The index of the bracket closing the one at `s[i]`, nesting counted.
fn matching(s: &str, i: usize, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (k, c) in s[i..].char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + k);
            }
        }
    }
    None
}

/// Where an HTML tag (or autolink) starting at `s[i] == '<'` ends (one past
/// its `>`): `<` then a letter, `/` or `!`, and a `>` before the next `<`.
fn tag_end(s: &str, i: usize) -> Option<usize> {
    let next = s[i + 1..].chars().next()?;
    if !(next.is_ascii_alphabetic() || next == '/' || next == '!') {
        return None;
    }
    let rest = &s[i + 1..];
    let gt = rest.find('>')?;
    if rest[..gt].contains('<') {
        return None;
    }
    Some(i + 1 + gt + 1)
}

/// The address of an autolink's inside (`https://x`, `mailto:a@b`).
fn autolink(inside: &str) -> Option<&str> {
    let scheme = inside.split(':').next()?;
    let ok = !inside.contains(' ')
        && inside.contains(':')
        && (scheme.eq_ignore_ascii_case("http")
            || scheme.eq_ignore_ascii_case("https")
            || scheme.eq_ignore_ascii_case("mailto"));
    ok.then_some(inside)
}

/// The common named and numeric HTML entities decoded (the output is
/// escaped again).
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let semi = after.find(';').filter(|&j| j <= 10);
        let decoded = semi.and_then(|j| entity(&after[1..j]).map(|c| (c, j)));
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &after[j + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let n = name.strip_prefix('#')?;
            let code = match n.strip_prefix(['x', 'X']) {
                Some(h) => u32::from_str_radix(h, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code).filter(|c| !c.is_control() || c.is_whitespace())?
        }
    })
}

/// Whitespace runs as single spaces, trimmed.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        // `char::is_whitespace`, with ASCII answered without a table.
        let white = if c.is_ascii() {
            matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
        } else {
            c.is_whitespace()
        };
        if white {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "snippet_tests.rs"]
mod tests;
