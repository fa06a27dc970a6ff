//! Reading one record into a [`ModelCard`], whatever format it comes in.
//!
//! Accepted shapes (unknown fields are ignored):
//! - hubsearch JSONL ([`ModelCard`]'s own fields);
//! - the 2022 Hugging Face scrape and TF Hub docs (`author`, `frameworks`, ...);
//! - the Hugging Face Hub API's model JSON (`modelId`/`id`, `pipeline_tag`,
//!   `library_name`, `tags` with `license:`/`dataset:` prefixes, `downloads`,
//!   `likes`, `lastModified`, `createdAt`, `cardData`);
//! - Markdown cards with YAML front matter ([`parse_markdown`]).
//!
//! A field of the wrong type is an error naming the field, never a silent
//! default: an importer reports it and keeps going.

use serde_json::{Map, Value};

use crate::card::{unix_seconds, ModelCard};
use crate::error::{Error, Result};

/// Longest record line accepted (bytes). Real cards in the 2022 scrape are < 30 KB.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Longest id accepted. Hugging Face allows 96 characters per segment today,
/// but the 2022 snapshot holds a 257-character id, so the cap is generous.
pub const MAX_ID_CHARS: usize = 1024;
/// Most entries in one list field (tags, datasets, ...).
pub const MAX_LIST_LEN: usize = 1024;
/// Longest card body accepted (bytes).
pub const MAX_CARD_BYTES: usize = 512 * 1024;
/// Highest price per call accepted (USD).
pub const MAX_PRICE_USD: f64 = 1000.0;

/// Parse one JSON text (a JSONL line, an API response) into a card.
pub fn parse_json(text: &str) -> Result<ModelCard> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(Error::TooLarge {
            what: "record",
            size: text.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Syntax {
        format: "JSON",
        message: e.to_string(),
    })?;
    from_value(&value)
}

/// Build a card from a JSON value in any of the accepted shapes.
pub fn from_value(value: &Value) -> Result<ModelCard> {
    let obj = value.as_object().ok_or(Error::WrongType {
        field: "record",
        expected: "a JSON object",
        got: type_name(value),
    })?;
    let empty = Map::new();
    let card_data = card_data(obj)?.unwrap_or(&empty);
    let id = record_id(obj)?;
    let Facets {
        tags,
        languages,
        datasets,
        license,
    } = facets(obj, card_data)?;

    let name = opt_str(obj, "name")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_name(&id));
    let builder = opt_str(obj, "builder")?
        .or(opt_str(obj, "author")?)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_builder(&id));
    let (card_text, description) = texts(obj)?;
    let architectures = architectures(obj)?;
    let price_usd = price(obj)?;

    let last_modified = time_field(obj, "last_modified")?.or(time_field(obj, "lastModified")?);
    let created_at = time_field(obj, "created_at")?.or(time_field(obj, "createdAt")?);
    let updated_at = time_field(obj, "updated_at")?;

    Ok(ModelCard {
        id,
        name,
        builder,
        task: opt_str(obj, "task")?
            .or(opt_str(obj, "pipeline_tag")?)
            .or(opt_str_lenient(card_data, "pipeline_tag")),
        library: opt_str(obj, "library")?
            .or(opt_str(obj, "library_name")?)
            .or(opt_str_lenient(card_data, "library_name")),
        tags,
        languages,
        datasets,
        license,
        architectures,
        model_type: opt_str(obj, "model_type")?,
        description,
        card_text,
        last_modified,
        downloads: count(obj, "downloads")?,
        likes: count(obj, "likes")?,
        price_usd,
        paid_calls: count(obj, "paid_calls")?,
        created_at,
        updated_at,
    })
}

/// The Hub API's `cardData` object, if the record has one.
fn card_data(obj: &Map<String, Value>) -> Result<Option<&Map<String, Value>>> {
    match obj.get("cardData") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(Error::WrongType {
            field: "cardData",
            expected: "object",
            got: type_name(v),
        }),
    }
}

/// The record's id (`id` or `modelId`), trimmed and checked.
fn record_id(obj: &Map<String, Value>) -> Result<String> {
    let id = opt_str(obj, "id")?
        .or(opt_str(obj, "modelId")?)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or(Error::MissingField { field: "id" })?;
    validate_id(&id)?;
    Ok(id)
}

/// A record's tags, languages, datasets and license, from its own fields,
/// its `cardData` and its Hub API tag prefixes.
struct Facets {
    tags: Vec<String>,
    languages: Vec<String>,
    datasets: Vec<String>,
    license: Option<String>,
}

fn facets(obj: &Map<String, Value>, card_data: &Map<String, Value>) -> Result<Facets> {
    let mut tags = str_list(obj, "tags")?;
    for t in str_list(obj, "frameworks")? {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    // Hub API tags carry facets as prefixes: `license:mit`, `dataset:squad`.
    let mut tag_license = None;
    let mut tag_datasets = Vec::new();
    tags.retain(|t| {
        if let Some(l) = t.strip_prefix("license:") {
            tag_license = Some(l.to_string());
            false
        } else if let Some(d) = t.strip_prefix("dataset:") {
            tag_datasets.push(d.to_string());
            false
        } else {
            true
        }
    });
    for t in str_list(card_data, "tags")? {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }

    let mut languages = str_list(obj, "languages")?;
    if languages.is_empty() {
        languages = str_or_list(card_data, "language")?;
    }
    let mut datasets = str_list(obj, "datasets")?;
    if datasets.is_empty() {
        datasets = str_or_list(card_data, "datasets")?;
    }
    if datasets.is_empty() {
        datasets = tag_datasets;
    }
    let license = opt_str(obj, "license")?
        .or(opt_str_lenient(card_data, "license"))
        .or(tag_license);
    Ok(Facets {
        tags,
        languages,
        datasets,
        license,
    })
}

/// The card's text (`card_text` or `cardText`, size-checked) and its
/// description (given, or the text's first paragraph).
fn texts(obj: &Map<String, Value>) -> Result<(String, String)> {
    let card_text = opt_str(obj, "card_text")?
        .or(opt_str(obj, "cardText")?)
        .unwrap_or_default();
    if card_text.len() > MAX_CARD_BYTES {
        return Err(Error::TooLarge {
            what: "card_text",
            size: card_text.len(),
            limit: MAX_CARD_BYTES,
        });
    }
    let description = opt_str(obj, "description")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| first_paragraph(&card_text));
    Ok((card_text, description))
}

/// `architectures`, or the Hub API's `config.architectures`.
fn architectures(obj: &Map<String, Value>) -> Result<Vec<String>> {
    let mut architectures = str_list(obj, "architectures")?;
    if architectures.is_empty() {
        if let Some(Value::Object(config)) = obj.get("config") {
            architectures = str_list(config, "architectures")?;
        }
    }
    Ok(architectures)
}

/// `price_usd`: USD per call, within 0..=[`MAX_PRICE_USD`], or none.
fn price(obj: &Map<String, Value>) -> Result<Option<f64>> {
    Ok(match obj.get("price_usd") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let p = n.as_f64().unwrap_or(f64::NAN);
            if !(0.0..=MAX_PRICE_USD).contains(&p) {
                return Err(Error::InvalidValue {
                    field: "price_usd",
                    reason: format!("{p} is outside 0..={MAX_PRICE_USD} USD per call"),
                });
            }
            Some(p)
        }
        Some(v) => {
            return Err(Error::WrongType {
                field: "price_usd",
                expected: "number (USD per call) or null",
                got: type_name(v),
            })
        }
    })
}

/// Parse a Markdown model card with optional YAML front matter.
///
/// `fallback_id` (from the file's path, e.g. `author/name`) is used when the
/// front matter has no `id`/`model_id`. Hugging Face card metadata keys
/// (`language`, `license`, `tags`, `datasets`, `pipeline_tag`,
/// `library_name`) are understood, as are all of [`ModelCard`]'s own fields.
pub fn parse_markdown(text: &str, fallback_id: Option<&str>) -> Result<ModelCard> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(Error::TooLarge {
            what: "card file",
            size: text.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    let (front, body) = split_front_matter(text);
    let mut meta = match front {
        None => Map::new(),
        Some(yaml) if yaml.trim().is_empty() => Map::new(),
        Some(yaml) => {
            let v: Value = serde_norway::from_str(yaml).map_err(|e| Error::Syntax {
                format: "YAML front matter",
                message: e.to_string(),
            })?;
            match v {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                other => {
                    return Err(Error::WrongType {
                        field: "front matter",
                        expected: "a YAML mapping",
                        got: type_name(&other),
                    })
                }
            }
        }
    };
    if !meta.contains_key("id") {
        let id = meta
            .get("model_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(fallback_id.map(str::to_string));
        if let Some(id) = id {
            meta.insert("id".into(), Value::String(id));
        }
    }
    // Card metadata keys -> our field names.
    for (from, to) in [
        ("language", "languages"),
        ("pipeline_tag", "task"),
        ("library_name", "library"),
    ] {
        if let Some(v) = meta.remove(from) {
            let v = match v {
                Value::String(s) if to == "languages" => Value::Array(vec![Value::String(s)]),
                v => v,
            };
            meta.entry(to.to_string()).or_insert(v);
        }
    }
    if let Some(Value::String(d)) = meta.get("datasets").cloned() {
        meta.insert("datasets".into(), Value::Array(vec![Value::String(d)]));
    }
    if let Some(Value::Array(l)) = meta.get("license").cloned() {
        // Some cards list several licenses; keep the first.
        if let Some(first) = l.into_iter().next() {
            meta.insert("license".into(), first);
        }
    }
    meta.insert("card_text".into(), Value::String(body.trim().to_string()));
    from_value(&Value::Object(meta))
}

/// Split `---\nyaml\n---\nbody`; `None` front matter when the file has none.
fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let t = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = t.strip_prefix("---") else {
        return (None, t);
    };
    let Some(rest) = rest.strip_prefix('\n').or(rest.strip_prefix("\r\n")) else {
        return (None, t);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, t)
}

/// First prose paragraph of a Markdown body: no headings, code, tables or HTML.
pub fn first_paragraph(body: &str) -> String {
    let mut para = Vec::new();
    let mut in_code = false;
    for line in body.lines() {
        let l = line.trim();
        if l.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let skip =
            l.starts_with('#') || l.starts_with('|') || l.starts_with('<') || l.starts_with("!");
        if l.is_empty() || skip {
            if !para.is_empty() {
                break;
            }
            continue;
        }
        para.push(l);
    }
    let mut s = para.join(" ");
    if s.len() > 1000 {
        let mut cut = 1000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn validate_id(id: &str) -> Result<()> {
    if id.chars().count() > MAX_ID_CHARS {
        return Err(Error::TooLarge {
            what: "id",
            size: id.len(),
            limit: MAX_ID_CHARS,
        });
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidValue {
            field: "id",
            reason: format!("{id:?} contains whitespace or control characters"),
        });
    }
    if id.starts_with('/') || id.ends_with('/') || id.contains("//") {
        return Err(Error::InvalidValue {
            field: "id",
            reason: format!("{id:?} has an empty path segment"),
        });
    }
    Ok(())
}

fn default_name(id: &str) -> String {
    let segs: Vec<&str> = id.split('/').collect();
    // TF Hub ids end in a version number: `publisher/name/1`.
    match segs.as_slice() {
        [.., name, v] if v.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
        [.., last] => last.to_string(),
        [] => id.to_string(),
    }
}

/// The builder of an id without an author field: its first path segment, or
/// `huggingface` for the hub's canonical un-namespaced models (`bert-base-cased`).
fn default_builder(id: &str) -> String {
    match id.split_once('/') {
        Some((author, _)) => author.to_string(),
        None => "huggingface".to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn opt_str(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(Error::WrongType {
            field,
            expected: "string or null",
            got: type_name(v),
        }),
    }
}

/// Card metadata written by people is loose (`license: [mit]`); take a string
/// when there is one and ignore the rest rather than reject the model.
fn opt_str_lenient(obj: &Map<String, Value>, field: &str) -> Option<String> {
    match obj.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn str_list(obj: &Map<String, Value>, field: &'static str) -> Result<Vec<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_LIST_LEN {
                return Err(Error::TooLarge {
                    what: "a list field",
                    size: items.len(),
                    limit: MAX_LIST_LEN,
                });
            }
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    // YAML front matter turns `no` (Norwegian) into false.
                    Value::Bool(b) => Ok(b.to_string()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(Error::WrongType {
                        field,
                        expected: "array of strings",
                        got: type_name(other),
                    }),
                })
                .collect()
        }
        Some(v) => Err(Error::WrongType {
            field,
            expected: "array of strings",
            got: type_name(v),
        }),
    }
}

fn str_or_list(obj: &Map<String, Value>, field: &'static str) -> Result<Vec<String>> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        _ => str_list(obj, field),
    }
}

/// A JSON number as a whole number >= 0, also written with a fraction
/// (`42.0` is 42, as JSON Schema's `integer` reads it); `None` for a
/// negative, fractional or out-of-range one.
pub fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..1.8e19).contains(f))
            .map(|f| f as u64)
    })
}

fn count(obj: &Map<String, Value>, field: &'static str) -> Result<u64> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(0),
        // At most an int64's largest, as the API's document states.
        Some(Value::Number(n)) => whole_number(n)
            .filter(|&c| c <= i64::MAX as u64)
            .ok_or_else(|| Error::InvalidValue {
                field,
                reason: format!("{n} is not an integer in 0..=2^63-1"),
            }),
        Some(v) => Err(Error::WrongType {
            field,
            expected: "non-negative integer",
            got: type_name(v),
        }),
    }
}

fn time_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>> {
    let Some(s) = opt_str(obj, field)? else {
        return Ok(None);
    };
    if s.is_empty() {
        return Ok(None);
    }
    if unix_seconds(&s).is_none() {
        return Err(Error::InvalidValue {
            field,
            reason: format!("{s:?} is not an RFC 3339 time"),
        });
    }
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_2022_scrape_shape() {
        let line = r####"{"id": "Helsinki-NLP/opus-mt-en-de", "name": "opus-mt-en-de", "author": "Helsinki-NLP", "task": "translation", "library": "transformers", "tags": ["translation"], "frameworks": ["pytorch"], "languages": ["en", "de"], "datasets": [], "arxiv": [], "license": "cc-by-4.0", "architectures": ["MarianMTModel"], "model_type": "marian", "downloads": null, "likes": 3, "last_modified": "2021-09-09T21:59:52.000Z", "n_files": 9, "description": "", "card_text": "### opus-mt-en-de\n\nTranslates English to German.", "card_chars": 50, "card_truncated": false, "source": "x"}"####;
        let c = parse_json(line).unwrap();
        assert_eq!(c.builder, "Helsinki-NLP");
        assert_eq!(c.downloads, 0);
        assert_eq!(c.tags, ["translation", "pytorch"]);
        assert_eq!(c.description, "Translates English to German.");
        assert_eq!(c.languages, ["en", "de"]);
    }

    #[test]
    fn reads_the_hub_api_shape() {
        let v = serde_json::json!({
            "_id": "x", "modelId": "bert-base-uncased", "pipeline_tag": "fill-mask",
            "library_name": "transformers", "downloads": 100, "likes": 5,
            "tags": ["pytorch", "en", "dataset:bookcorpus", "license:apache-2.0"],
            "cardData": {"language": "en", "datasets": ["bookcorpus", "wikipedia"]},
            "lastModified": "2024-02-19T11:06:12.000Z", "createdAt": "2022-03-02T23:29:04.000Z"
        });
        let c = from_value(&v).unwrap();
        assert_eq!(c.id, "bert-base-uncased");
        assert_eq!(c.builder, "huggingface");
        assert_eq!(c.task.as_deref(), Some("fill-mask"));
        assert_eq!(c.license.as_deref(), Some("apache-2.0"));
        assert_eq!(c.datasets, ["bookcorpus", "wikipedia"]);
        assert_eq!(c.languages, ["en"]);
        assert_eq!(c.tags, ["pytorch", "en"]);
    }

    #[test]
    fn tfhub_names_drop_the_version() {
        let c =
            parse_json(r#"{"id": "google/imagenet/mobilenet_v2/5", "author": "google"}"#).unwrap();
        assert_eq!(c.name, "mobilenet_v2");
    }

    #[test]
    fn whole_numbers_with_a_fraction_are_counts() {
        let c = parse_json(r#"{"id": "a/b", "likes": 42.0, "downloads": 1e3}"#).unwrap();
        assert_eq!((c.likes, c.downloads), (42, 1000));
    }

    #[test]
    fn bad_records_name_the_problem() {
        let cases = [
            ("{", "invalid JSON"),
            ("[1]", "expected a JSON object"),
            (r#"{"name": "x"}"#, "missing field `id`"),
            (r#"{"id": ""}"#, "missing field `id`"),
            (
                r#"{"id": "a/b", "downloads": "many"}"#,
                "field `downloads`: expected non-negative integer, got string",
            ),
            (r#"{"id": "a/b", "downloads": -3}"#, "field `downloads`"),
            (r#"{"id": "a/b", "downloads": 2.5}"#, "field `downloads`"),
            (
                r#"{"id": "a/b", "likes": 9223372036854775808}"#,
                "field `likes`",
            ),
            (
                r#"{"id": "a/b", "tags": "nlp"}"#,
                "field `tags`: expected array of strings",
            ),
            (r#"{"id": "a b"}"#, "whitespace"),
            (r#"{"id": "a/b", "price_usd": -1}"#, "price_usd"),
            (r#"{"id": "a/b", "last_modified": "yesterday"}"#, "RFC 3339"),
        ];
        for (line, want) in cases {
            let err = parse_json(line).unwrap_err().to_string();
            assert!(err.contains(want), "{line}: got {err:?}, want {want:?}");
        }
        let huge = format!(
            r#"{{"id": "a/b", "card_text": "{}"}}"#,
            "x".repeat(MAX_RECORD_BYTES)
        );
        assert!(parse_json(&huge)
            .unwrap_err()
            .to_string()
            .contains("over the limit"));
    }

    #[test]
    fn markdown_cards() {
        let md = "---\nlanguage:\n- nl\nlicense: apache-2.0\ntags:\n- audio\npipeline_tag: automatic-speech-recognition\nprice_usd: 0.002\n---\n# Dutch ASR\n\nA wav2vec2 model for Dutch.\n\nMore text.";
        let c = parse_markdown(md, Some("someone/dutch-asr")).unwrap();
        assert_eq!(c.id, "someone/dutch-asr");
        assert_eq!(c.languages, ["nl"]);
        assert_eq!(c.task.as_deref(), Some("automatic-speech-recognition"));
        assert_eq!(c.description, "A wav2vec2 model for Dutch.");
        assert_eq!(c.price_usd, Some(0.002));
        let plain = parse_markdown("Just text", Some("a/b")).unwrap();
        assert_eq!(plain.card_text, "Just text");
        assert!(parse_markdown("---\n: : :\n  - [\n---\n", Some("a/b")).is_err());
        assert!(parse_markdown("no id here", None).is_err());
    }
}
