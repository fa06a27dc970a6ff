//! Vocabulary that bridges how people ask and how cards are written: identifier
//! splitting (`Helsinki-NLP/opus-mt-en-de` -> `helsinki nlp opus mt en de`),
//! language names <-> ISO codes, and plain-word aliases of pipeline tasks.
//!
//! Cards say `de`, people type `german`; cards say
//! `automatic-speech-recognition`, people type `asr` or `transcribe`. Both sides
//! are expanded at index time, so the query path stays a plain BM25 lookup.

/// Split an identifier on `/ - _ .`, whitespace, and lower->upper case changes
/// (`wav2vec2`, `XLMRoberta` -> `xlm roberta`), lowercased.
pub fn split_identifier(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            // fooBar -> foo bar; XMLParser -> xml parser
            let boundary = (p.is_lowercase() && c.is_uppercase())
                || (p.is_uppercase() && c.is_uppercase() && next_lower);
            if boundary && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_lowercase());
        prev = Some(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// ISO 639-1 codes (and a few hub conventions) with their English names.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("af", "afrikaans"),
    ("am", "amharic"),
    ("ar", "arabic"),
    ("as", "assamese"),
    ("az", "azerbaijani"),
    ("be", "belarusian"),
    ("bg", "bulgarian"),
    ("bn", "bengali bangla"),
    ("br", "breton"),
    ("bs", "bosnian"),
    ("ca", "catalan"),
    ("cs", "czech"),
    ("cy", "welsh"),
    ("da", "danish"),
    ("de", "german deutsch"),
    ("el", "greek"),
    ("en", "english"),
    ("eo", "esperanto"),
    ("es", "spanish espanol castilian"),
    ("et", "estonian"),
    ("eu", "basque"),
    ("fa", "persian farsi"),
    ("fi", "finnish"),
    ("fr", "french francais"),
    ("ga", "irish"),
    ("gl", "galician"),
    ("gu", "gujarati"),
    ("ha", "hausa"),
    ("he", "hebrew"),
    ("hi", "hindi"),
    ("hr", "croatian"),
    ("hu", "hungarian"),
    ("hy", "armenian"),
    ("id", "indonesian"),
    ("ig", "igbo"),
    ("is", "icelandic"),
    ("it", "italian"),
    ("ja", "japanese"),
    ("ka", "georgian"),
    ("kk", "kazakh"),
    ("km", "khmer"),
    ("kn", "kannada"),
    ("ko", "korean"),
    ("ky", "kyrgyz"),
    ("la", "latin"),
    ("lt", "lithuanian"),
    ("lv", "latvian"),
    ("mk", "macedonian"),
    ("ml", "malayalam"),
    ("mn", "mongolian"),
    ("mr", "marathi"),
    ("ms", "malay"),
    ("mt", "maltese"),
    ("my", "burmese"),
    ("ne", "nepali"),
    ("nl", "dutch flemish"),
    ("no", "norwegian"),
    ("nb", "norwegian bokmal"),
    ("or", "odia oriya"),
    ("pa", "punjabi"),
    ("pl", "polish"),
    ("ps", "pashto"),
    ("pt", "portuguese"),
    ("ro", "romanian"),
    ("ru", "russian"),
    ("rw", "kinyarwanda"),
    ("si", "sinhala"),
    ("sk", "slovak"),
    ("sl", "slovenian"),
    ("so", "somali"),
    ("sq", "albanian"),
    ("sr", "serbian"),
    ("sv", "swedish"),
    ("sw", "swahili"),
    ("ta", "tamil"),
    ("te", "telugu"),
    ("th", "thai"),
    ("tl", "tagalog filipino"),
    ("tr", "turkish"),
    ("uk", "ukrainian"),
    ("ur", "urdu"),
    ("uz", "uzbek"),
    ("vi", "vietnamese"),
    ("wo", "wolof"),
    ("xh", "xhosa"),
    ("yo", "yoruba"),
    ("zh", "chinese mandarin"),
    ("zu", "zulu"),
];

/// English name(s) of a language code (`de` -> `german deutsch`).
pub fn language_names(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    let base = code.split(['-', '_']).next().unwrap_or("");
    LANGUAGES
        .iter()
        .find(|(c, _)| *c == base)
        .map(|(_, names)| *names)
}

/// The ISO code of an English language name (`german` -> `de`).
pub fn language_code(word: &str) -> Option<&'static str> {
    let word = word.trim().to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|(_, names)| names.split(' ').any(|n| n == word))
        .map(|(c, _)| *c)
}

/// Plain words people use for a pipeline task, added to the task field at index
/// time so `asr`, `transcribe` or `ner` find the task.
pub fn task_aliases(task: &str) -> &'static str {
    match task {
        "automatic-speech-recognition" => "asr speech-to-text stt transcription transcribe audio",
        "text-to-speech" => "tts speech synthesis voice",
        "token-classification" => "ner named entity recognition tagging pos",
        "text-classification" => "classifier classification",
        "translation" => "translate machine translation mt",
        "summarization" => "summary summarize summaries",
        "question-answering" => "qa extractive answers",
        "table-question-answering" => "table qa tabular",
        "fill-mask" => "masked language model mlm",
        "text-generation" => "causal language model lm generate",
        "text2text-generation" => "seq2seq generate",
        "conversational" => "dialogue chatbot chat conversation",
        "feature-extraction" => "embeddings features",
        "sentence-similarity" => "sentence embeddings semantic similarity search",
        "zero-shot-classification" => "zero shot nli",
        "image-classification" => "vision image classifier",
        "object-detection" => "vision detector detection",
        "image-segmentation" => "vision segmentation",
        "audio-classification" => "audio classifier sound",
        "voice-activity-detection" => "vad speech detection",
        "audio-to-audio" => "speech enhancement separation",
        "text-to-image" => "image generation diffusion",
        "image-to-text" => "captioning caption ocr",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hub_ids() {
        assert_eq!(
            split_identifier("Helsinki-NLP/opus-mt-en-de"),
            ["helsinki", "nlp", "opus", "mt", "en", "de"]
        );
        assert_eq!(
            split_identifier("XLMRobertaModel"),
            ["xlm", "roberta", "model"]
        );
        assert_eq!(split_identifier("bert_base.v2"), ["bert", "base", "v2"]);
        assert_eq!(split_identifier("wav2vec2"), ["wav2vec2"]);
        assert!(split_identifier("--/").is_empty());
    }

    #[test]
    fn languages_both_ways() {
        assert_eq!(language_code("German"), Some("de"));
        assert_eq!(language_names("de-CH"), Some("german deutsch"));
        assert_eq!(language_code("klingon"), None);
    }
}
