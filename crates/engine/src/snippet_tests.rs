//! Snippet tests. Every expected text below was written by hand from the
//! input (what a person reading the rendered Markdown sees), not taken
//! from the code's output.

use super::*;
use std::collections::HashSet;

fn words(q: &str) -> Vec<String> {
    q.split_whitespace().map(str::to_string).collect()
}

fn card(description: &str, body: &str) -> ModelCard {
    ModelCard {
        id: "a/b".into(),
        description: description.into(),
        card_text: body.into(),
        ..Default::default()
    }
}

#[test]
fn front_matter_goes_and_markdown_becomes_text() {
    let md = "---\nlicense: mit\ntags:\n- translation\n---\n\n# Opus MT *en-de*\n\n\
              This model **translates** [English](https://en.wikipedia.org/wiki/English) \
              to _German_. ![logo](logo.png)\n\n\
              <!-- generated\nautomatically -->\n\
              ## Usage ##\n\n```python\nfrom transformers import pipeline\n```\n\n\
              - fast\n- small\n1. first\n\n> quoted <b>bold</b> text\n\n---\n\n\
              | metric | value |\n|:---|---:|\n| BLEU | 38.2 |\n\n\
              See <https://opus.nlpl.eu> and [the paper][1].\n\n[1]: https://arxiv.org/abs/1\n";
    assert_eq!(
        plain_text(md),
        "Opus MT en-de This model translates English to German. Usage \
         from transformers import pipeline fast small first quoted bold text \
         metric value BLEU 38.2 See https://opus.nlpl.eu and the paper."
    );
}

#[test]
fn what_only_looks_like_markdown_stays() {
    // Intraword underscores are part of names; a `---` not at the start is
    // no front matter; a lone `<` is text; code spans keep their tags as
    // text; entities are decoded.
    assert_eq!(
        plain_text("use bert_base_uncased, a < b, `<b>x</b>` &amp; &lt;i&gt; &#233;t&#xE9;"),
        "use bert_base_uncased, a < b, <b>x</b> & <i> été"
    );
    assert_eq!(
        plain_text("intro\n---\nnot: yaml\n---\n"),
        "intro not: yaml"
    );
    // Unclosed front matter is kept as text.
    assert_eq!(plain_text("---\ntitle: x\nbody"), "title: x body");
}

#[test]
fn scripts_and_styles_go_with_their_content() {
    assert_eq!(
        plain_text("before <script>alert(1)</script> middle <STYLE>p{}</STYLE> after"),
        "before middle after"
    );
    assert_eq!(plain_text("a <scripts>b</scripts> c"), "a b c");
    assert_eq!(plain_text("x <script src=a.js>"), "x");
}

#[test]
fn matched_words_are_marked_by_stem_and_everything_is_escaped() {
    let mut m = Marker::new(&words("german translation"), &[], None);
    let c = card("Translates English to German & more <b>.", "");
    assert_eq!(
        m.formatted(&c),
        "<mark>Translates</mark> English to <mark>German</mark> &amp; more ."
    );
    // A code span's tag is text: escaped, never markup.
    let mut m = Marker::new(&words("alert"), &[], None);
    let c = card("Try `<script>alert(\"x\")</script>` 'here'", "");
    assert_eq!(
        m.formatted(&c),
        "Try &lt;script&gt;<mark>alert</mark>(&quot;x&quot;)&lt;/script&gt; &#39;here&#39;"
    );
}

#[test]
fn parts_of_names_corrections_and_prefixes_match() {
    // `roberta` inside `XLMRobertaModel`; a correction; the word being typed.
    let mut m = Marker::new(
        &words("roberta wav2vce2 spee"),
        &["wav2vec2".into()],
        Some("spee"),
    );
    let c = card("An XLMRobertaModel and wav2vec2 for speech.", "");
    assert_eq!(
        m.formatted(&c),
        "An XLM<mark>Roberta</mark>Model and <mark>wav2vec2</mark> for <mark>speech</mark>."
    );
    // Function words are never marked.
    let mut m = Marker::new(&words("model for the web"), &[], None);
    assert_eq!(
        m.formatted(&card("For the web", "")),
        "For the <mark>web</mark>"
    );
}

#[test]
fn the_window_holds_the_most_distinct_words() {
    // 60 filler words (5 bytes each with the space), then `sentiment` once,
    // 60 more, then `german` and `sentiment` together, 60 more.
    let fill = |w: &str| vec![w; 60].join(" ");
    let body = format!(
        "{} sentiment {} german sentiment {}",
        fill("aaaa"),
        fill("bbbb"),
        fill("cccc")
    );
    let mut m = Marker::new(&words("german sentiment"), &[], None);
    let out = m.formatted(&card("", &body));
    assert!(out.starts_with('…') && out.ends_with('…'), "{out}");
    assert!(
        out.contains("<mark>german</mark> <mark>sentiment</mark>"),
        "{out}"
    );
    // The window is about WINDOW bytes of text and centred on the matches:
    // filler on both sides.
    let text = out.replace("<mark>", "").replace("</mark>", "");
    assert!(text.len() <= WINDOW + 2 * '…'.len_utf8(), "{}", text.len());
    assert!(
        text.contains("bbbb german") && text.contains("sentiment cccc"),
        "{text}"
    );
    assert!(!text.contains("aaaa"), "{text}");
}

#[test]
fn without_a_match_the_description_starts_the_snippet() {
    let mut m = Marker::none();
    let long = "word ".repeat(100);
    let out = m.formatted(&card(&long, "# Body\n\nother"));
    assert!(out.starts_with("word word") && out.ends_with('…'), "{out}");
    assert!(!out.contains("<mark>"));
    // No description: the body's start.
    assert_eq!(m.formatted(&card("", "# Body\n\nother")), "Body other");
    // A match only in the body picks the body.
    let mut m = Marker::new(&words("invoices"), &[], None);
    assert_eq!(
        m.formatted(&card("A model.", "Reads **invoices**.")),
        "Reads <mark>invoices</mark>."
    );
}

#[test]
fn unicode_text_is_cut_at_character_boundaries() {
    let body = "é".repeat(400) + " ziel";
    let mut m = Marker::new(&words("ziel"), &[], None);
    let out = m.formatted(&card("", &body));
    assert!(out.ends_with("<mark>ziel</mark>"), "{out}");
    let mut m = Marker::none();
    // One 600-byte word: cut to the window, with an ellipsis.
    let out = m.formatted(&card(&"ü".repeat(300), ""));
    assert_eq!(out, format!("{}…", "ü".repeat(WINDOW / 2)));
}

/// The snippet as first written, over every word of the text (a span per
/// word, the window chosen and cut from them all): the reference the
/// cheaper path (matched words only, a region split near the window) must
/// equal byte for byte.
fn reference_formatted(m: &mut Marker, card: &ModelCard) -> String {
    fn window(spans: &[Span]) -> (usize, (usize, usize)) {
        let matched: Vec<usize> = (0..spans.len())
            .filter(|&i| spans[i].term.is_some())
            .collect();
        let mut best = (0, (0, 0));
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
            if (terms.len(), n) > best.1 {
                best = (i, (terms.len(), n));
            }
        }
        best
    }
    fn render(text: &str, spans: &[Span], first: usize) -> String {
        if spans.is_empty() {
            return escape(cut(text.trim(), WINDOW));
        }
        let matched = spans[first].term.is_some();
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
        let from = spans
            .iter()
            .position(|s| s.start >= want)
            .unwrap_or(first)
            .min(first);
        let begin = if from == 0 { 0 } else { spans[from].start };
        if spans[from].end > begin + WINDOW {
            return format!("{}…", escape(cut(&text[begin..], WINDOW)));
        }
        // The window's words: the first, then each next one while it ends
        // within the window.
        let mut to = from + 1;
        while spans.get(to).is_some_and(|s| s.end <= begin + WINDOW) {
            to += 1;
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
    let desc = plain_text(cut(&card.description, MAX_TEXT));
    if m.exact.is_empty() && m.prefix.is_none() && !desc.is_empty() {
        let s = m.spans(&desc);
        return render(&desc, &s, 0);
    }
    let body = plain_text(cut(&card.card_text, MAX_TEXT));
    let bs = m.spans(&body);
    let ds = m.spans(&desc);
    let (bw, dw) = (window(&bs), window(&ds));
    let use_body = if bw.1 == (0, 0) && dw.1 == (0, 0) {
        desc.trim().is_empty()
    } else {
        bw.1 > dw.1
    };
    if use_body {
        render(&body, &bs, bw.0)
    } else {
        render(&desc, &ds, dw.0)
    }
}

/// Text made of the words a query is made of, names in camel case, other
/// words, punctuation, Markdown and non-ASCII letters, long enough to be
/// cropped.
fn arbitrary_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let word = prop_oneof![
        Just("bert".to_string()),
        Just("BERT".to_string()),
        Just("translation".to_string()),
        Just("Translate".to_string()),
        Just("XLMRobertaModel".to_string()),
        Just("robertaBase".to_string()),
        Just("wav2vec2".to_string()),
        Just("the".to_string()),
        Just("Überset".to_string()),
        Just("naïve".to_string()),
        Just("ﬁne".to_string()),
        Just("dying".to_string()),
        Just("Lying".to_string()),
        Just("aed".to_string()),
        Just("a100".to_string()),
        Just("using".to_string()),
        Just("Used".to_string()),
        Just("flies".to_string()),
        Just("fly".to_string()),
        Just("skies".to_string()),
        Just("tying".to_string()),
        "[a-z]{1,12}",
        "[A-Za-z0-9]{1,30}",
    ];
    let sep = prop_oneof![
        Just(" ".to_string()),
        Just(", ".to_string()),
        Just("-".to_string()),
        Just("\n\n".to_string()),
        Just(" **".to_string()),
        Just(" `".to_string()),
        Just(" <b> ".to_string()),
        Just(" & ".to_string()),
        Just(" — ".to_string()),
        "[ .:;!?()/]{1,4}",
    ];
    proptest::collection::vec((word, sep), 0..160).prop_map(|parts| {
        parts.into_iter().fold(String::new(), |mut s, (w, p)| {
            s.push_str(&w);
            s.push_str(&p);
            s
        })
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn the_cheap_path_equals_marking_every_word(
        desc in arbitrary_text(),
        body in arbitrary_text(),
        q in 0usize..8,
        ascii in proptest::bool::ANY,
    ) {
        // Texts without a character beyond ASCII take their own path.
        let (desc, body) = if ascii {
            (desc.replace(|c: char| !c.is_ascii(), ""), body.replace(|c: char| !c.is_ascii(), ""))
        } else {
            (desc, body)
        };
        let (words, corrections, typing): (&[&str], &[&str], Option<&str>) = match q {
            0 => (&["bert", "translation"], &[], None),
            1 => (&["roberta", "model"], &[], Some("mod")),
            2 => (&["xlm"], &["wav2vec2"], None),
            3 => (&["the", "fine"], &[], Some("tr")),
            4 => (&[], &[], None),
            5 => (&["die", "lie", "aed"], &["tie"], None),
            6 => (&["use", "flying", "sky", "ai"], &[], Some("fl")),
            _ => (&["übersetzung", "naïve"], &[], Some("be")),
        };
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let corrections: Vec<String> = corrections.iter().map(|w| w.to_string()).collect();
        let c = card(&desc, &body);
        let mut fast = Marker::new(&words, &corrections, typing);
        let mut slow = Marker::new(&words, &corrections, typing);
        proptest::prop_assert_eq!(fast.formatted(&c), reference_formatted(&mut slow, &c));
    }
}

/// The stopword check looks at words no longer than the longest stopword.
#[test]
fn no_stopword_is_longer_than_the_check_allows() {
    assert!(STOPWORDS.iter().all(|w| w.len() <= STOPWORD_LEN));
    assert!(STOPWORDS.iter().any(|w| w.len() == STOPWORD_LEN));
}

/// `Heads` lets through every ASCII word of the real corpus whose stem is
/// a term: for each distinct word, a `Heads` of its stem alone must accept
/// its first letters (the stemmer is the analyzer's; the rule's exceptions
/// are its own, so a word they miss fails here).
#[test]
#[ignore = "needs ../shared/data (run by .ci/run with --include-ignored)"]
fn heads_let_through_every_word_of_the_real_corpus_whose_stem_is_a_term() {
    use std::io::Read;
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/hf_models_2022.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the real-corpus checks need ../shared)",
            path.display()
        )
    });
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    let words: HashSet<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    assert!(words.len() > 50_000, "{} distinct words", words.len());
    let mut missed = Vec::new();
    for w in &words {
        let s = stem(w);
        let mut heads = Heads::default();
        heads.add(&s);
        let b = w.as_bytes();
        let at = |k: usize| b.get(k).copied().unwrap_or(b' ');
        if !heads.may_begin(at(0), at(1), at(2)) || !heads.may_begin_with(at(0)) {
            missed.push(format!("{w} -> {s}"));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of {} words missed: {:?}",
        missed.len(),
        words.len(),
        &missed[..missed.len().min(20)]
    );
}
