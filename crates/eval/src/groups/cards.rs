//! What the grouping reads besides the pages: cards' builders, downloads
//! and dates, and the export's paid calls.

use std::collections::HashMap;

use hubsearch_core::card::{key_of, unix_seconds};
use hubsearch_core::ModelCard;
use hubsearch_engine::hub::mid_rank_quantile;

/// What a card tells the grouping: its builder, downloads and dates.
#[derive(Debug, Clone, PartialEq)]
pub struct CardFacts {
    pub id: String,
    pub builder: String,
    pub downloads: u64,
    /// Creation time (unix seconds), when the card has one.
    pub created: Option<i64>,
    /// Last modification time (unix seconds), when the card has one.
    pub modified: Option<i64>,
}

impl CardFacts {
    pub fn of(card: &ModelCard) -> CardFacts {
        CardFacts {
            id: card.id.clone(),
            builder: card.builder.clone(),
            downloads: card.downloads,
            created: card.created_at.as_deref().and_then(unix_seconds),
            modified: card.last_modified.as_deref().and_then(unix_seconds),
        }
    }

    /// The date a model's age is counted from: its creation, else its last
    /// modification (a lower bound on its age).
    pub fn date(&self) -> Option<i64> {
        self.created.or(self.modified)
    }
}

/// Card metadata by model key, and the hub's downloads for quantiles.
#[derive(Debug, Clone, Default)]
pub struct Cards {
    by_key: HashMap<u64, CardFacts>,
    /// Every card's downloads, ascending.
    sorted: Vec<u64>,
}

impl Cards {
    /// Cards by model key (`key_of(id)`); an id given twice keeps the
    /// later record, as an import does.
    pub fn new(facts: impl IntoIterator<Item = CardFacts>) -> Cards {
        let mut by_key = HashMap::new();
        for f in facts {
            by_key.insert(key_of(&f.id), f);
        }
        let mut sorted: Vec<u64> = by_key.values().map(|f| f.downloads).collect();
        sorted.sort_unstable();
        Cards { by_key, sorted }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn get(&self, model_key: u64) -> Option<&CardFacts> {
        self.by_key.get(&model_key)
    }

    /// Every card's facts (in no particular order).
    pub(super) fn facts(&self) -> impl Iterator<Item = &CardFacts> {
        self.by_key.values()
    }

    /// Popularity quantile of a download count among these cards, as the
    /// hub computes it (`HubPopularity::quantile`): mid-rank, so ties share
    /// the middle of their run.
    pub fn quantile(&self, downloads: u64) -> f64 {
        mid_rank_quantile(&self.sorted, downloads)
    }
}

/// One paid call of the export (`calls.csv`): the ledger's record of it,
/// as the export writes it.
pub use hubsearch_engine::ledger::LoggedCall as Call;
