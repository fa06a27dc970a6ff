//! [`ModelCard`]: one model as a hub publishes it, with the marketplace fields a
//! pay-per-call hub needs.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use std::cell::Cell;

/// One model on a hub.
///
/// Serialised as one JSON object per line; this is the schema `hubsearch
/// generate` writes and the first one `hubsearch import` reads (see
/// [`crate::record`] for the others it accepts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct ModelCard {
    /// Unique id, `author/name` on Hugging Face (`author/name/version` on TF Hub,
    /// a bare `name` for Hugging Face's canonical models).
    pub id: String,
    /// Display name: the id's last path segment unless the record says otherwise.
    pub name: String,
    /// Who publishes the model and is paid for its calls (the id's author).
    pub builder: String,
    /// Pipeline task, e.g. `automatic-speech-recognition`.
    #[serde(default)]
    pub task: Option<String>,
    /// Library, e.g. `transformers`.
    #[serde(default)]
    pub library: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Language codes as the card gives them (`de`, `en`, `multilingual`).
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub datasets: Vec<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    /// First paragraph of the card.
    #[serde(default)]
    pub description: String,
    /// The card body (Markdown).
    #[serde(default, deserialize_with = "card_text")]
    pub card_text: String,
    /// RFC 3339 time of the last change on the source hub.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Downloads in the source hub's window (30 days on Hugging Face).
    #[serde(default)]
    pub downloads: u64,
    #[serde(default)]
    pub likes: u64,
    /// Price of one call in US dollars; `None` means the model is free.
    #[serde(default)]
    pub price_usd: Option<f64>,
    /// Paid calls recorded for this model so far.
    #[serde(default)]
    pub paid_calls: u64,
    /// RFC 3339 time the model was published on this hub.
    #[serde(default)]
    pub created_at: Option<String>,
    /// RFC 3339 time of the last update on this hub.
    #[serde(default)]
    pub updated_at: Option<String>,
}

thread_local! {
    /// Set while [`ModelCard::from_json_without_text`] reads a card.
    static SKIP_TEXT: Cell<bool> = const { Cell::new(false) };
}

/// `card_text` as written, or skipped unread (left empty) inside
/// [`ModelCard::from_json_without_text`].
fn card_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    if SKIP_TEXT.with(Cell::get) {
        IgnoredAny::deserialize(d)?;
        Ok(String::new())
    } else {
        String::deserialize(d)
    }
}

impl ModelCard {
    /// The card in `json` with an empty `card_text`: the body is skipped
    /// as it is read, neither unescaped nor copied (a search hit shows a
    /// snippet, never the body; a body is ~60% of a stored card).
    pub fn from_json_without_text(json: &str) -> serde_json::Result<ModelCard> {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                SKIP_TEXT.with(|s| s.set(false));
            }
        }
        SKIP_TEXT.with(|s| s.set(true));
        let _reset = Reset;
        serde_json::from_str(json)
    }

    /// A content hash over every field: re-importing an unchanged card is a no-op.
    pub fn content_hash(&self) -> u64 {
        let bytes = serde_json::to_vec(self).expect("a card always serialises");
        let hash = blake3::hash(&bytes);
        u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// Price as shown to people: `free` or `$0.0020/call`.
    pub fn price_label(&self) -> String {
        match self.price_usd {
            None => "free".to_string(),
            Some(0.0) => "free".to_string(),
            Some(p) => format!("${p:.4}/call"),
        }
    }

    /// The card's tags as the Hugging Face Hub writes them: its own tags,
    /// then its pipeline tag, library, language codes, `license:<id>` and
    /// `dataset:<id>`, each once, in that order (docs/api.md, Tags).
    pub fn hub_tags(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.tags.len() + 8);
        let mut add = |t: String| {
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        };
        self.tags.iter().cloned().for_each(&mut add);
        self.task.iter().cloned().for_each(&mut add);
        self.library.iter().cloned().for_each(&mut add);
        self.languages.iter().cloned().for_each(&mut add);
        if let Some(l) = &self.license {
            add(format!("license:{l}"));
        }
        self.datasets
            .iter()
            .for_each(|d| add(format!("dataset:{d}")));
        out
    }

    /// The short text a card is summarised by (name words, task, tags,
    /// description), used for embeddings and snippets.
    pub fn short_text(&self) -> String {
        let mut out = crate::lang::split_identifier(&self.id).join(" ");
        if let Some(task) = &self.task {
            out.push_str(". ");
            out.push_str(&task.replace('-', " "));
        }
        if !self.tags.is_empty() {
            out.push_str(". ");
            out.push_str(&self.tags.join(", "));
        }
        if !self.description.is_empty() {
            out.push_str(". ");
            out.push_str(&self.description);
        }
        out
    }
}

/// A stable 64-bit key of a string (model id, builder): the first 8 bytes of
/// its BLAKE3 hash. Fast fields hold these so ranking can group and break ties
/// per candidate without reading strings from the index.
pub fn key_of(s: &str) -> u64 {
    let hash = blake3::hash(s.as_bytes());
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Parse an RFC 3339 time to unix seconds (`None` when absent or unparsable).
pub fn unix_seconds(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Format unix seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_content() {
        let a = ModelCard {
            id: "a/b".into(),
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(a.content_hash(), b.content_hash());
        b.downloads = 1;
        assert_ne!(a.content_hash(), b.content_hash());
    }

    /// Reading without the text gives the card with an empty text and
    /// every other field as `serde_json` reads them; ordinary reads after
    /// it, and after a failed one, keep the text.
    #[test]
    fn a_card_read_without_its_text() {
        let card = ModelCard {
            id: "a/b".into(),
            name: "b".into(),
            builder: "a".into(),
            task: Some("fill-mask".into()),
            tags: vec!["x".into(), "y \"z\"".into()],
            description: "A model.".into(),
            card_text: "# B\n\n\"quoted\" \\ \u{e9}\u{1F600} {\"card_text\": 1}".into(),
            last_modified: Some("2022-01-20T12:13:34Z".into()),
            downloads: 7,
            price_usd: Some(0.002),
            updated_at: Some("2022-01-21T00:00:00Z".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&card).unwrap();
        let read = ModelCard::from_json_without_text(&json).unwrap();
        assert_eq!(read.card_text, "");
        let whole: ModelCard = serde_json::from_str(&json).unwrap();
        assert_eq!(whole, card);
        assert_eq!(
            read,
            ModelCard {
                card_text: String::new(),
                ..whole
            }
        );
        assert!(ModelCard::from_json_without_text("{\"id\": 1}").is_err());
        let again: ModelCard = serde_json::from_str(&json).unwrap();
        assert_eq!(again.card_text, card.card_text);
    }

    #[test]
    fn times_round_trip() {
        let s = unix_seconds("2022-01-20T12:13:34.000Z").unwrap();
        assert_eq!(rfc3339(s), "2022-01-20T12:13:34Z");
        assert!(unix_seconds("yesterday").is_none());
    }
}
