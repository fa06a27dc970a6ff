//! Snippet tests. Every expected text below was written by hand from the
//! input (what a person reading the rendered Markdown sees), not taken
//! from the code's output.

use super::*;

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
