//! The tantivy schema of a card, and how a [`ModelCard`] becomes a document.
//!
//! Every card is stored whole (`source`, JSON) so the index is the system of
//! record for cards: no second store to keep in step. Searchable text is
//! split by field so BM25 can weigh a match in the id above one in the body.

use hubsearch_core::card::{key_of, unix_seconds};
use hubsearch_core::config::SearchConfig;
use hubsearch_core::lang;
use hubsearch_core::ModelCard;
use hubsearch_core::WordScoring;
use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED, STORED, STRING,
};
use tantivy::TantivyDocument;

use crate::analyzer::{HUB_ID, HUB_TEXT};

/// Handles of every field.
#[derive(Clone, Debug)]
pub struct Fields {
    pub id: Field,
    pub id_text: Field,
    /// The id's words stemmed like prose (`invoice-extraction` is found by
    /// `invoices` and `extract`; docs/retrieval.md, Stemmed id words).
    pub id_stem: Field,
    pub task: Field,
    pub tags: Field,
    pub languages: Field,
    pub datasets: Field,
    pub architectures: Field,
    pub description: Field,
    pub card_text: Field,
    pub f_task: Field,
    pub f_library: Field,
    pub f_language: Field,
    pub f_license: Field,
    pub f_builder: Field,
    /// Tags as the Hugging Face Hub writes them (`ModelCard::hub_tags`).
    pub f_tag: Field,
    pub downloads: Field,
    pub likes: Field,
    pub paid_calls: Field,
    pub price: Field,
    pub last_modified: Field,
    pub created_at: Field,
    pub content_hash: Field,
    pub id_key: Field,
    pub builder_key: Field,
    /// The card as JSON; then its snippet texts (`plain::snippet_texts`:
    /// description, body), in indexes built since snippets were stored.
    pub source: Field,
}

/// The facet fields, by the name the API and CLI use.
pub const FACETS: [&str; 5] = ["task", "library", "language", "license", "builder"];

/// BM25 boosts of the searchable text fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boosts {
    pub id: f32,
    pub id_stem: f32,
    pub task: f32,
    pub languages: f32,
    pub tags: f32,
    pub datasets: f32,
    pub architectures: f32,
    pub description: f32,
    pub card_text: f32,
    /// Boost of the exact phrase of the query's words in the id.
    pub phrase: f32,
    /// Exponent of the shared-IDF factors (docs/retrieval.md, Shared IDF;
    /// 0 = each field's own IDF). `DisMax` scoring only.
    pub shared_idf: f32,
    /// How a word is scored over the fields (docs/retrieval.md, BM25F).
    pub scoring: WordScoring,
}

impl From<&SearchConfig> for Boosts {
    fn from(s: &SearchConfig) -> Self {
        Boosts {
            id: s.boost_id,
            id_stem: s.boost_id_stem,
            task: s.boost_task,
            languages: s.boost_languages,
            tags: s.boost_tags,
            datasets: s.boost_datasets,
            architectures: s.boost_architectures,
            description: s.boost_description,
            card_text: s.boost_card_text,
            phrase: s.boost_phrase,
            shared_idf: s.shared_idf,
            scoring: s.scoring,
        }
    }
}

impl Default for Boosts {
    /// The configuration's defaults (config/hubsearch.toml).
    fn default() -> Self {
        Boosts::from(&SearchConfig::default())
    }
}

/// How many text fields a query word is searched in.
pub const TEXT_FIELDS: usize = 9;

/// Searchable text fields with their boosts and whether the id analyzer
/// (unstemmed) applies.
pub fn boosts(f: &Fields, b: &Boosts) -> [(Field, f32, bool); TEXT_FIELDS] {
    [
        (f.id_text, b.id, true),
        (f.id_stem, b.id_stem, false),
        (f.task, b.task, false),
        (f.languages, b.languages, false),
        (f.tags, b.tags, false),
        (f.datasets, b.datasets, false),
        (f.architectures, b.architectures, false),
        (f.description, b.description, false),
        (f.card_text, b.card_text, false),
    ]
}

/// Build the schema.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tokenizer: &str, positions: bool| {
        let opt = if positions {
            IndexRecordOption::WithFreqsAndPositions
        } else {
            IndexRecordOption::WithFreqs
        };
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(opt),
        )
    };
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED | FAST),
        id_text: b.add_text_field("id_text", text(HUB_ID, true)),
        id_stem: b.add_text_field("id_stem", text(HUB_TEXT, false)),
        task: b.add_text_field("task", text(HUB_TEXT, false)),
        tags: b.add_text_field("tags", text(HUB_TEXT, false)),
        languages: b.add_text_field("languages", text(HUB_TEXT, false)),
        datasets: b.add_text_field("datasets", text(HUB_TEXT, false)),
        architectures: b.add_text_field("architectures", text(HUB_TEXT, false)),
        description: b.add_text_field("description", text(HUB_TEXT, false)),
        card_text: b.add_text_field("card_text", text(HUB_TEXT, false)),
        f_task: b.add_facet_field("f_task", FacetOptions::default()),
        f_library: b.add_facet_field("f_library", FacetOptions::default()),
        f_language: b.add_facet_field("f_language", FacetOptions::default()),
        f_license: b.add_facet_field("f_license", FacetOptions::default()),
        f_builder: b.add_facet_field("f_builder", FacetOptions::default()),
        f_tag: b.add_facet_field("f_tag", FacetOptions::default()),
        downloads: b.add_u64_field("downloads", FAST),
        likes: b.add_u64_field("likes", FAST),
        paid_calls: b.add_u64_field("paid_calls", FAST),
        price: b.add_f64_field("price", INDEXED | FAST),
        last_modified: b.add_i64_field("last_modified", INDEXED | FAST),
        created_at: b.add_i64_field("created_at", INDEXED | FAST),
        content_hash: b.add_u64_field("content_hash", FAST),
        id_key: b.add_u64_field("id_key", INDEXED | FAST),
        builder_key: b.add_u64_field("builder_key", FAST),
        source: b.add_text_field("source", STORED),
    };
    (b.build(), fields)
}

impl Fields {
    /// The facet field behind an API facet name.
    pub fn facet(&self, name: &str) -> Option<Field> {
        Some(match name {
            "task" => self.f_task,
            "library" => self.f_library,
            "language" => self.f_language,
            "license" => self.f_license,
            "builder" => self.f_builder,
            _ => return None,
        })
    }

    /// The tantivy document of a card.
    pub fn document(&self, card: &ModelCard) -> TantivyDocument {
        let mut d = TantivyDocument::default();
        d.add_text(self.id, &card.id);
        d.add_text(self.id_text, &card.id);
        d.add_text(self.id_stem, &card.id);
        if !card.id.ends_with(&card.name) {
            d.add_text(self.id_text, &card.name);
            d.add_text(self.id_stem, &card.name);
        }
        if let Some(task) = &card.task {
            d.add_text(self.task, task);
            let aliases = lang::task_aliases(task);
            if !aliases.is_empty() {
                d.add_text(self.task, aliases);
            }
            d.add_facet(self.f_task, Facet::from_path([task.as_str()]));
        }
        for t in &card.tags {
            d.add_text(self.tags, t);
        }
        for l in &card.languages {
            match lang::language_names(l) {
                Some(names) => d.add_text(self.languages, format!("{l} {names}")),
                None => d.add_text(self.languages, l),
            }
            d.add_facet(self.f_language, Facet::from_path([l.as_str()]));
        }
        for ds in &card.datasets {
            d.add_text(self.datasets, ds);
        }
        for a in &card.architectures {
            d.add_text(self.architectures, a);
        }
        if let Some(m) = &card.model_type {
            d.add_text(self.architectures, m);
        }
        d.add_text(self.description, &card.description);
        d.add_text(self.card_text, &card.card_text);
        if let Some(lib) = &card.library {
            d.add_facet(self.f_library, Facet::from_path([lib.as_str()]));
        }
        if let Some(lic) = &card.license {
            d.add_facet(self.f_license, Facet::from_path([lic.as_str()]));
        }
        if !card.builder.is_empty() {
            d.add_facet(self.f_builder, Facet::from_path([card.builder.as_str()]));
        }
        for t in card.hub_tags() {
            d.add_facet(self.f_tag, Facet::from_path([t.as_str()]));
        }
        d.add_u64(self.downloads, card.downloads);
        d.add_u64(self.likes, card.likes);
        d.add_u64(self.paid_calls, card.paid_calls);
        // `+ 0.0` stores -0 as 0 (it would sort below free models).
        d.add_f64(self.price, card.price_usd.unwrap_or(0.0) + 0.0);
        let t = |s: &Option<String>| s.as_deref().and_then(unix_seconds).unwrap_or(0);
        d.add_i64(self.last_modified, t(&card.last_modified));
        d.add_i64(self.created_at, t(&card.created_at));
        d.add_u64(self.content_hash, card.content_hash());
        d.add_u64(self.id_key, key_of(&card.id));
        d.add_u64(self.builder_key, key_of(&card.builder));
        d.add_text(
            self.source,
            serde_json::to_string(card).expect("a card always serialises"),
        );
        // More values of `source` (not a new field: indexes built before
        // keep opening, and versions before read the first value only).
        for text in crate::plain::snippet_texts(card) {
            d.add_text(self.source, text);
        }
        d
    }
}
