//! Handlers, one module per area.

pub mod calls;
pub mod hf;
pub mod keys;
pub mod models;
pub mod ops;
mod responses;
pub mod search;
pub mod stats;
pub mod suggest;
pub mod transparency;
pub mod ui;

use serde::Serialize;

use hubsearch_core::Hit;

/// A hit as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HitDto {
    pub rank: usize,
    pub id: String,
    pub name: String,
    pub builder: String,
    pub task: Option<String>,
    pub library: Option<String>,
    pub languages: Vec<String>,
    pub license: Option<String>,
    pub downloads: u64,
    pub likes: u64,
    pub price_usd: Option<f64>,
    pub price: String,
    pub description: String,
    pub score: f64,
    /// The card's text (its body or description, Markdown reduced to
    /// text) cropped to about 240 characters around the words the query
    /// matched, as HTML: every character of the card's text escaped, the
    /// matched words inside `<mark>`...`</mark>` (the only markup), `…`
    /// where the text was cropped. Safe to insert as HTML. Without a query
    /// (browsing, listings, similar models): the text's start, unmarked.
    #[schema(
        example = "Fine-tuned XLSR-53 for <mark>speech</mark> recognition in <mark>German</mark>."
    )]
    pub formatted: String,
    /// With `explain=true`: every part of the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<hubsearch_core::ScoreParts>,
}

impl HitDto {
    pub fn from_hit(h: Hit, explain: bool) -> HitDto {
        let price = h.card.price_label();
        let c = h.card;
        HitDto {
            rank: h.rank,
            id: h.id,
            name: c.name,
            builder: c.builder,
            task: c.task,
            library: c.library,
            languages: c.languages,
            license: c.license,
            downloads: c.downloads,
            likes: c.likes,
            price_usd: c.price_usd,
            price,
            description: c.description,
            score: h.score,
            formatted: h.formatted,
            explain: explain.then_some(h.parts),
        }
    }
}
