//! Live exposure statistics from the ledger: how concentrated exposure,
//! calls and income are over models and builders (docs/metrics.md, Concentration).

use std::collections::HashMap;

use hubsearch_core::Group;
use hubsearch_rank::{share_of, tail_share_of, Concentration};
use serde::Serialize;

use crate::engine::Engine;
use crate::hub::Heads;

/// Concentration of one quantity, with the shares the hub cares about.
/// How concentrated one quantity is over models or builders.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Spread {
    pub total: f64,
    /// Gini over every model (or builder) in the hub, zeros included.
    pub gini: f64,
    /// Share held by the top 1% of models by popularity (downloads).
    pub top_1pct_popular_share: f64,
    /// Share held by the 10 most popular models.
    pub top_10_popular_share: f64,
    /// Share held by models outside the top 10% by popularity.
    pub tail_share: f64,
    /// Share held by the 10 largest holders (whoever they are).
    pub top_10_holders_share: f64,
}

/// `GET /v1/stats/exposure`.
/// Concentration of exposure, calls and income over the hub.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExposureStats {
    pub models: usize,
    pub builders: usize,
    pub pages_served: u64,
    pub ledger_lag: u64,
    pub exposure_models: Spread,
    pub exposure_builders: Spread,
    pub calls_models: Spread,
    pub income_builders: Spread,
    pub window_hours: u64,
    pub recent_exposure_models: Spread,
}

/// One builder's figures.
/// One builder's exposure, calls and income.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BuilderStats {
    pub builder: String,
    pub models: usize,
    pub exposure: f64,
    pub merit: f64,
    pub impressions: u64,
    pub calls: u64,
    pub income_usd: f64,
    /// This builder's share of all exposure served.
    pub exposure_share: f64,
}

impl Engine {
    /// Concentration figures over all time and the last `window_hours`.
    pub fn exposure_stats(&self, window_hours: u64) -> ExposureStats {
        let hub = self.hub();
        let ledger = self.ledger();
        let per_model =
            |values: &HashMap<u64, f64>| spread(hub.downloads.keys(), values, &hub.model_heads);
        let per_builder = |per_model: &HashMap<u64, f64>| {
            spread(
                hub.builders.iter(),
                &hub.by_builder(per_model),
                &hub.builder_heads,
            )
        };
        let exposure = ledger.exposure(Group::Model);
        let earnings = ledger.earnings(Group::Model);
        let calls: HashMap<u64, f64> = earnings.iter().map(|(k, e)| (*k, e.calls as f64)).collect();
        let income: HashMap<u64, f64> = earnings.iter().map(|(k, e)| (*k, e.income_usd)).collect();
        ExposureStats {
            models: hub.len(),
            builders: hub.builders.len(),
            pages_served: ledger.pages(),
            ledger_lag: ledger.lag(),
            exposure_models: per_model(&exposure),
            exposure_builders: per_builder(&exposure),
            calls_models: per_model(&calls),
            income_builders: per_builder(&income),
            window_hours,
            recent_exposure_models: per_model(&ledger.model_exposure_recent(window_hours)),
        }
    }

    /// One builder's exposure, calls and income; `None` if the hub has no
    /// model of theirs and the ledger has never heard of them.
    pub fn builder_stats(&self, builder: &str) -> Option<BuilderStats> {
        let key = hubsearch_core::card::key_of(builder);
        let hub = self.hub();
        let models = hub.builder_of.values().filter(|b| **b == key).count();
        let tally = self.ledger().tally_of(key, Group::Builder);
        let earnings = self.ledger().earnings_of(key, Group::Builder);
        if models == 0 && tally.impressions == 0 && earnings.calls == 0 {
            return None;
        }
        let total: f64 = self.ledger().exposure(Group::Builder).values().sum();
        Some(BuilderStats {
            builder: builder.to_string(),
            models,
            exposure: tally.exposure,
            merit: tally.merit,
            impressions: tally.impressions,
            calls: earnings.calls,
            income_usd: earnings.income_usd,
            exposure_share: if total > 0.0 {
                tally.exposure / total
            } else {
                0.0
            },
        })
    }
}

/// The spread of `values` over the population `keys` (absent keys count as
/// 0), with the shares of its popularity heads.
fn spread<'a>(
    keys: impl Iterator<Item = &'a u64>,
    values: &HashMap<u64, f64>,
    heads: &Heads,
) -> Spread {
    let all: Vec<f64> = keys
        .map(|k| values.get(k).copied().unwrap_or(0.0))
        .collect();
    let c = Concentration::of(&all);
    Spread {
        total: values.values().sum(),
        gini: c.gini,
        top_1pct_popular_share: share_of(values, &heads.top_1pct),
        top_10_popular_share: share_of(values, &heads.top_10),
        tail_share: tail_share_of(values, &heads.head),
        top_10_holders_share: c.top_10_share,
    }
}
