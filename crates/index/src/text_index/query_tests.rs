//! Tests of the text query (`query.rs`).
use hubsearch_core::ModelCard;

use super::*;
use crate::text_index::testing::{card, ids, index};

/// The failure pattern BM25F and stemmed id words address: the word
/// that carries the intent (`invoices`) is only in one card's id, in
/// another form (`invoice`), while the common words match the heavily
/// weighted task field of many cards (`extract` is an alias of
/// question answering, `extractive`) and their descriptions.
#[test]
fn a_rare_word_in_the_id_beats_common_words_in_boosted_fields() {
    let mut cards: Vec<ModelCard> = (0..30)
        .map(|i| {
            card(
                &format!("lab{i}/squad-model-{i}"),
                Some("question-answering"),
                &["en"],
                "extract answers from a context, dates and amounts too",
            )
        })
        .collect();
    cards.extend((0..30).map(|i| {
        card(
            &format!("lab{i}/tagger-{i}"),
            Some("token-classification"),
            &["en"],
            "tags people and places",
        )
    }));
    cards.push(card(
        "someone/invoice-extraction",
        Some("token-classification"),
        &[],
        "",
    ));
    let idx = index(&cards);
    let top = ids(
        &idx,
        "extract dates and amounts from invoices",
        &Filter::default(),
    );
    assert_eq!(top[0], "someone/invoice-extraction", "{top:?}");
    // `extraction` is found by `extract` too, the stems agree.
    let top = ids(&idx, "invoice extract", &Filter::default());
    assert_eq!(top[0], "someone/invoice-extraction", "{top:?}");
}

#[test]
fn id_words_find_the_model() {
    let idx = index(&[
        card(
            "Helsinki-NLP/opus-mt-en-de",
            Some("translation"),
            &["en", "de"],
            "English to German",
        ),
        card(
            "Helsinki-NLP/opus-mt-de-en",
            Some("translation"),
            &["de", "en"],
            "German to English",
        ),
        card(
            "someone/opus-mt-en-de-finetuned-on-legal-text",
            Some("translation"),
            &[],
            "",
        ),
        card(
            "other/mt5-small",
            Some("text2text-generation"),
            &[],
            "multilingual t5",
        ),
    ]);
    let f = Filter::default();
    assert_eq!(
        ids(&idx, "opus mt en de", &f)[0],
        "Helsinki-NLP/opus-mt-en-de"
    );
    assert_eq!(
        ids(&idx, "opus-mt-en-de", &f)[0],
        "Helsinki-NLP/opus-mt-en-de"
    );
    assert_eq!(ids(&idx, "opus-mt", &f).len(), 3);
    assert!(ids(&idx, "zzzz", &f).is_empty());
    assert!(ids(&idx, "  --- ", &f).is_empty());
}

#[test]
fn prefixes_and_typos() {
    let idx = index(&[
        card(
            "facebook/wav2vec2-base-960h",
            Some("automatic-speech-recognition"),
            &["en"],
            "speech",
        ),
        card(
            "org/sentiment-roberta",
            Some("text-classification"),
            &[],
            "sentiment analysis of tweets",
        ),
        card(
            "Helsinki-NLP/opus-mt-en-de",
            Some("translation"),
            &["en", "de"],
            "",
        ),
        card(
            "Helsinki-NLP/opus-mt-fi-mt",
            Some("translation"),
            &["fi", "mt"],
            "",
        ),
    ]);
    let f = Filter::default();
    // The last word as a prefix while typing; not after a separator.
    assert_eq!(ids(&idx, "wav2v", &f), ["facebook/wav2vec2-base-960h"]);
    assert!(ids(&idx, "wav2v ", &f).is_empty());
    // An id being typed: the phrase with a prefix.
    assert_eq!(ids(&idx, "opus-mt-e", &f)[0], "Helsinki-NLP/opus-mt-en-de");
    // One edit (a transposition counts one) on words of 5+ letters,
    // two from 9; digits never change.
    assert_eq!(ids(&idx, "sentimnet", &f), ["org/sentiment-roberta"]);
    assert_eq!(ids(&idx, "wav2vce2", &f), ["facebook/wav2vec2-base-960h"]);
    assert!(ids(&idx, "wav2vec3 ", &f).is_empty());
    assert_eq!(ids(&idx, "sentimxnt", &f), ["org/sentiment-roberta"]);
    assert_eq!(ids(&idx, "sentimxxnt", &f), ["org/sentiment-roberta"]);
    assert!(ids(&idx, "sentimxxxnt", &f).is_empty());
    // Not below 5 letters, and only words of ids.
    assert!(ids(&idx, "robrta ", &f) == ["org/sentiment-roberta"]);
    assert!(ids(&idx, "robta ", &f).is_empty());
    assert!(ids(&idx, "tweat ", &f).is_empty());
    let s = idx.searcher();
    assert_eq!(
        idx.unknown_words(&s, &idx.words("sentimnet tweets"))
            .unwrap(),
        ["sentimnet"]
    );
    assert!(idx
        .unknown_words(&s, &idx.words("speech en"))
        .unwrap()
        .is_empty());
}

/// A word's corrections are the id words within the fewest edits its
/// length tolerates, digits unchanged, most common first: checked
/// against the plain distance of `typos::reference` over every id word
/// the test wrote.
#[test]
fn corrections_are_the_nearest_id_words() {
    let ids_written = [
        "a/small-model",
        "b/small-model",
        "c/smell-detector",
        "d/smalls",
        "e/mall-guide",
        "f/spall-2",
        "g/multilingual-bert",
        "h/multilingal-typo-free",
        "i/roberta2-large",
        "j/roberta3-large",
        "k/discriminator",
        "l/discriminators",
    ];
    let cards: Vec<ModelCard> = ids_written
        .iter()
        .map(|id| card(id, None, &[], ""))
        .collect();
    let idx = index(&cards);
    let s = idx.searcher();
    let mut vocabulary: std::collections::BTreeMap<String, u64> = Default::default();
    for id in ids_written {
        let mut seen = std::collections::HashSet::new();
        for w in id.split(['/', '-']) {
            if seen.insert(w) {
                *vocabulary.entry(w.to_string()).or_default() += 1;
            }
        }
    }
    for word in [
        "smlal",
        "smal",
        "samll",
        "multilinguall",
        "mutlilingal",
        "roberta4",
        "robreta2",
        "discrminator",
        "dscrminatr",
        "xyzzy",
    ] {
        let max = crate::typos::edits_allowed(word);
        let digits = |w: &str| w.chars().filter(char::is_ascii_digit).collect::<String>();
        let mut want: Vec<(String, u64)> = Vec::new();
        for d in 1..=max {
            want = vocabulary
                .iter()
                .filter(|(w, _)| *w != word && digits(w) == digits(word))
                .filter(|(w, _)| crate::typos::reference(word, w) <= d)
                .map(|(w, n)| (w.clone(), *n))
                .collect();
            if !want.is_empty() {
                break;
            }
        }
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(idx.corrections(&s, word).unwrap(), want, "{word}");
    }
    assert_eq!(
        idx.corrections(&s, "smlal").unwrap()[0],
        ("small".to_string(), 2)
    );
    assert!(idx.corrections(&s, "smal").unwrap().is_empty(), "4 letters");
}

/// A language code joined to another word is part of a name
/// (`sentence-tr`), not a language; on its own it is one.
#[test]
fn a_code_in_a_name_is_no_language() {
    let idx = index(&[
        card(
            "acme/sentence-encoder",
            Some("sentence-similarity"),
            &[],
            "",
        ),
        card(
            "b/bert-model",
            Some("fill-mask"),
            &["tr"],
            "a sentence model for sentence tasks",
        ),
    ]);
    let f = Filter::default();
    assert_eq!(ids(&idx, "sentence-tr", &f)[0], "acme/sentence-encoder");
    assert_eq!(ids(&idx, "sentence tr", &f)[0], "b/bert-model");
    assert_eq!(ids(&idx, "tr sentence", &f)[0], "b/bert-model");
}

#[test]
fn language_names_and_task_aliases_match() {
    let idx = index(&[
        card(
            "a/wav2vec2-de",
            Some("automatic-speech-recognition"),
            &["de"],
            "Speech model",
        ),
        card("b/bert-de", Some("fill-mask"), &["de"], "German BERT"),
        card(
            "c/wav2vec2-fr",
            Some("automatic-speech-recognition"),
            &["fr"],
            "Speech model",
        ),
    ]);
    let got = ids(&idx, "german speech recognition", &Filter::default());
    assert_eq!(got[0], "a/wav2vec2-de");
    let got = ids(&idx, "asr", &Filter::default());
    assert_eq!(got.len(), 2);
}

/// Shared IDF by hand: N = 1000; a word in 500 cards' text but 10
/// cards' task field keeps the task boost times idf(500)/idf(10).
#[test]
fn shared_idf_by_hand() {
    let idf = |df: f32| (1.0f32 + (1000.0 - df + 0.5) / (df + 0.5)).ln();
    let mut dfs = [0u64; TEXT_FIELDS];
    dfs[2] = 10; // task
    dfs[8] = 500; // card text
    let f = shared_idf_factors(1000, &dfs, 1.0);
    assert!((f[2] - idf(500.0) / idf(10.0)).abs() < 1e-6, "{f:?}");
    assert_eq!(f[8], 1.0);
    assert_eq!(f[0], 1.0, "a field without the word keeps its boost");
    let half = shared_idf_factors(1000, &dfs, 0.5);
    assert!((half[2] - f[2].sqrt()).abs() < 1e-6);
    assert_eq!(shared_idf_factors(1000, &dfs, 0.0), [1.0; TEXT_FIELDS]);
    // The rare word in the card text now beats a common one in the task
    // field at equal term frequency: the point of sharing.
    assert!(idf(500.0) * 4.3 * f[2] < idf(500.0) * 4.3);
}

/// Corrections found by one search are reused by the next, until the
/// segments change: a card added afterwards with a word one edit away is
/// found, as by an index that never cached (a stale cache fails this).
#[test]
fn cached_corrections_follow_the_segments() {
    let first = [card("a/bert-small", None, &[], "a model")];
    let idx = index(&first);
    let s = idx.searcher();
    let before = idx.corrections(&s, "bertt").unwrap();
    assert_eq!(before, vec![("bert".to_string(), 1)]);
    assert_eq!(
        idx.corrections(&s, "bertt").unwrap(),
        before,
        "from the cache"
    );
    let second = card("b/bertz-large", None, &[], "another model");
    let mut w = idx.writer(32, 1).unwrap();
    w.upsert(&second).unwrap();
    w.commit().unwrap();
    idx.reload().unwrap();
    let after = idx.corrections(&idx.searcher(), "bertt").unwrap();
    let fresh = index(&[first[0].clone(), second]);
    assert_eq!(
        after,
        fresh.corrections(&fresh.searcher(), "bertt").unwrap()
    );
    assert_ne!(after, before);
    // The old searcher still sees its own segments' corrections.
    assert_eq!(idx.corrections(&s, "bertt").unwrap(), before);
}
