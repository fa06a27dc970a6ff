//! A card's Markdown as plain text, the text its snippets are cut from
//! (docs/retrieval.md, Snippets): YAML front matter, HTML comments,
//! `<script>`/`<style>` elements, images, HTML tags, fence lines, heading
//! and list markers, emphasis and table rules go; links keep their text,
//! code keeps its characters (a `<b>` written in a code span is text, not a
//! tag), the common HTML entities are decoded; whitespace collapses to
//! single spaces. Made once per card when it is indexed (stored beside the
//! card, [`snippet_texts`]) and read back with each hit.

use std::borrow::Cow;

use hubsearch_core::ModelCard;

/// How much of a card's text is read for a snippet (a longer body is cut
/// here, at a character boundary).
pub const MAX_TEXT: usize = 64 * 1024;

/// The texts a card's snippets are cut from: its description's and its
/// body's plain text (each of their first [`MAX_TEXT`] bytes).
pub fn snippet_texts(card: &ModelCard) -> [String; 2] {
    [
        plain_text(cut(&card.description, MAX_TEXT)),
        plain_text(cut(&card.card_text, MAX_TEXT)),
    ]
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
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
