//! The two analyzers of the text index.
//!
//! - `hub_id`: splits identifiers on `/ - _ .`, whitespace and case changes, and
//!   lowercases, so `Helsinki-NLP/opus-mt-en-de` is found by `opus mt en de`
//!   and by `opus-mt` (a phrase of the same tokens). A camel-case run is also
//!   kept whole (`XLMRoberta` -> `xlm`, `roberta` and `xlmroberta`), so both
//!   spellings match. No stemming: ids are names, not prose.
//! - `hub_text`: the same splitting plus English (Porter/Snowball) stemming,
//!   for prose fields and tag-like lists.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name the id analyzer is registered under.
pub const HUB_ID: &str = "hub_id";
/// Name the prose analyzer is registered under.
pub const HUB_TEXT: &str = "hub_text";

/// Build the id analyzer.
pub fn id_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(IdentifierTokenizer)
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .build()
}

/// Build the prose analyzer.
pub fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(IdentifierTokenizer)
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Register both analyzers on an index.
pub fn register(index: &tantivy::Index) {
    index.tokenizers().register(HUB_ID, id_analyzer());
    index.tokenizers().register(HUB_TEXT, text_analyzer());
}

/// Tokens of `text` under `analyzer`, in order.
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(t) = stream.next() {
        out.push(t.text.clone());
    }
    out
}

/// Tokens of `text` under [`text_analyzer`], with one analyzer per thread
/// (made on the thread's first call).
pub fn text_tokens(text: &str) -> Vec<String> {
    thread_local! {
        static ANALYZER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(text_analyzer());
    }
    ANALYZER.with(|a| tokens(&mut a.borrow_mut(), text))
}

/// Splits on non-alphanumeric characters and on case changes inside a word.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentifierTokenizer;

/// Token stream of [`IdentifierTokenizer`]: tokens computed up front (card
/// fields are short; the card body is split the same way, once per document).
pub struct IdentifierTokenStream {
    tokens: Vec<Token>,
    index: usize,
}

impl Tokenizer for IdentifierTokenizer {
    type TokenStream<'a> = IdentifierTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> IdentifierTokenStream {
        IdentifierTokenStream {
            tokens: split(text),
            index: 0,
        }
    }
}

impl TokenStream for IdentifierTokenStream {
    fn advance(&mut self) -> bool {
        self.index += 1;
        self.index <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.index - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.index - 1]
    }
}

fn split(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut position = 0;
    let mut word_start: Option<usize> = None;
    let bytes_end = text.len();
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c.is_alphanumeric() {
            if word_start.is_none() {
                word_start = Some(i);
            }
        } else if let Some(s) = word_start.take() {
            push_word(text, s, i, &mut position, &mut out);
        }
        if iter.peek().is_none() {
            if let Some(s) = word_start.take() {
                push_word(text, s, bytes_end, &mut position, &mut out);
            }
        }
    }
    out
}

/// Push one alphanumeric run, split at case changes; if split, the whole run
/// is also emitted at the first part's position.
fn push_word(text: &str, start: usize, end: usize, position: &mut usize, out: &mut Vec<Token>) {
    let word = &text[start..end];
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut cuts = vec![0];
    for k in 1..chars.len() {
        let p = chars[k - 1].1;
        let c = chars[k].1;
        let next_lower = chars.get(k + 1).is_some_and(|n| n.1.is_lowercase());
        if (p.is_lowercase() && c.is_uppercase())
            || (p.is_uppercase() && c.is_uppercase() && next_lower)
        {
            cuts.push(chars[k].0);
        }
    }
    cuts.push(word.len());
    let first_position = *position;
    for w in cuts.windows(2) {
        out.push(Token {
            offset_from: start + w[0],
            offset_to: start + w[1],
            position: *position,
            text: word[w[0]..w[1]].to_string(),
            position_length: 1,
        });
        *position += 1;
    }
    if cuts.len() > 2 {
        out.push(Token {
            offset_from: start,
            offset_to: end,
            position: first_position,
            text: word.to_string(),
            position_length: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_analyzer_splits_hub_ids() {
        let mut a = id_analyzer();
        assert_eq!(
            tokens(&mut a, "Helsinki-NLP/opus-mt-en-de"),
            ["helsinki", "nlp", "opus", "mt", "en", "de"]
        );
        assert_eq!(tokens(&mut a, "opus-mt"), ["opus", "mt"]);
        assert_eq!(
            tokens(&mut a, "XLMRobertaModel"),
            ["xlm", "roberta", "model", "xlmrobertamodel"]
        );
        assert_eq!(
            tokens(&mut a, "facebook/wav2vec2-large_xlsr.53"),
            ["facebook", "wav2vec2", "large", "xlsr", "53"]
        );
        assert_eq!(tokens(&mut a, "über-Größe"), ["über", "größe"]);
        assert!(tokens(&mut a, " -/_. ").is_empty());
    }

    #[test]
    fn text_analyzer_stems() {
        let mut a = text_analyzer();
        assert_eq!(tokens(&mut a, "Recognizing speeches"), ["recogn", "speech"]);
    }

    #[test]
    fn positions_are_consecutive() {
        let toks = split("a-b c");
        let pos: Vec<usize> = toks.iter().map(|t| t.position).collect();
        assert_eq!(pos, [0, 1, 2]);
    }
}
