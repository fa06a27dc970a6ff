//! The calls service: a verified paid call, as the hub's payment backend
//! states it, checked, priced and recorded (in the ledger, or through the
//! cluster log). The rules live here, not in HTTP code: an idempotency key
//! has 1 to 200 characters, an amount lies in 0..=1000 USD and defaults to
//! the model's price, a call's origin names a recorded page and a rank
//! from 1 (docs/ledger.md, Paid calls).

use hubsearch_core::{BuilderKey, Group, ModelKey};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ledger::transparency::Receipt;
use crate::ledger::{CallOrigin, CallRecord, LedgerError};

/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Largest amount one call may state, in USD.
pub const MAX_CALL_USD: f64 = 1000.0;

/// A verified paid call, as the hub's payment backend reports it (the body
/// of `POST /v1/calls`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CallBody)]
pub struct PaidCall {
    /// The model called.
    #[schema(min_length = 1)]
    pub model: String,
    /// USD paid, 0..=1000; defaults to the model's price (0 when it has
    /// none).
    #[schema(minimum = 0, maximum = 1000)]
    pub amount_usd: Option<f64>,
    /// 1 to 200 characters; a retry with the same key counts once (or the
    /// `Idempotency-Key` header).
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: Option<String>,
    /// The recorded page the call came from and the hit's rank on it: both
    /// or neither.
    #[serde(default, deserialize_with = "whole")]
    pub page_id: Option<u64>,
    /// The hit's rank on that page, from 1.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "whole")]
    pub rank: Option<u64>,
}

/// A recorded (or already recorded) paid call, with the builder's totals
/// after it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = CallAnswer)]
pub struct CallReceipt {
    /// The ledger's sequence number of the call.
    pub seq: u64,
    /// False when the idempotency key was seen before (counted once).
    pub recorded: bool,
    pub model: String,
    pub builder: String,
    pub amount_usd: f64,
    /// The builder's paid calls and income so far.
    pub builder_calls: u64,
    pub builder_income_usd: f64,
    /// The call's entry in the call log (the original's for a retry):
    /// check it with `GET /v1/transparency/proof` (docs/transparency.md).
    pub receipt: Receipt,
}

/// A whole number >= 0, also written with a fraction (`3.0`), as JSON
/// Schema's `integer` reads it; null is none.
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => hubsearch_core::record::whole_number(&n)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number >= 0"))),
    }
}

impl Engine {
    /// Check a paid call's own values (no lookups but the ledger's page
    /// count): the idempotency key, the amount, the origin.
    pub fn check_paid_call(&self, call: &PaidCall) -> Result<Option<CallOrigin>> {
        if call
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY)
        {
            return Err(Error::InvalidIdempotencyKey {
                max: MAX_IDEMPOTENCY_KEY,
            });
        }
        if let Some(a) = call.amount_usd {
            if !(a.is_finite() && (0.0..=MAX_CALL_USD).contains(&a)) {
                return Err(Error::InvalidAmount { max: MAX_CALL_USD });
            }
        }
        match (call.page_id, call.rank) {
            (None, None) => Ok(None),
            // In cluster mode page ids are the serving replica's
            // (docs/cluster.md): another replica cannot check them.
            (Some(page), Some(rank)) if rank >= 1 => {
                if self.replicator().is_none() && page >= self.ledger().pages() {
                    return Err(Error::PageNotFound { page });
                }
                Ok(Some(CallOrigin { page, rank }))
            }
            _ => Err(Error::InvalidCallOrigin),
        }
    }

    /// Check, price and record a paid call; the receipt carries the
    /// builder's totals after it.
    pub fn record_paid_call(&self, call: PaidCall) -> Result<CallReceipt> {
        let origin = self.check_paid_call(&call)?;
        let card = self.get(&call.model)?;
        let amount = call.amount_usd.unwrap_or(card.price_usd.unwrap_or(0.0));
        let builder_key = BuilderKey::of(&card.builder);
        let (out, receipt) = self.record_call_receipt(CallRecord {
            model: ModelKey::of(&card.id),
            builder: builder_key,
            model_id: card.id.clone().into(),
            builder_name: card.builder.clone(),
            amount_usd: amount,
            amount_stated: call.amount_usd.is_some(),
            idempotency_key: call.idempotency_key,
            origin,
        })?;
        let receipt = match receipt {
            Some(r) => r,
            None => self.call_receipt(out.seq)?,
        };
        let income = self.ledger().earnings_of(builder_key.0, Group::Builder);
        Ok(CallReceipt {
            seq: out.seq,
            recorded: out.recorded,
            model: card.id,
            builder: card.builder,
            amount_usd: amount,
            builder_calls: income.calls,
            builder_income_usd: income.income_usd,
            receipt,
        })
    }

    /// The call log entry of call `seq`. Recorded here, it is committed
    /// when recording returns; in cluster mode the call is applied but its
    /// batch may not be committed yet: then flush first.
    fn call_receipt(&self, seq: u64) -> Result<Receipt> {
        if let Some(r) = self.ledger().receipt(seq)? {
            return Ok(r);
        }
        self.ledger().flush()?;
        self.ledger().receipt(seq)?.ok_or_else(|| {
            Error::Ledger(LedgerError::Db(format!(
                "paid call {seq} has no call log entry"
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsearch_core::{Config, ModelCard};

    /// An engine over one priced card, with its persistent ledger.
    fn engine(dir: &std::path::Path) -> Engine {
        let mut config = Config::default();
        config.index.dir = dir.to_path_buf();
        config.embedding.model = hubsearch_core::EmbeddingModel::None;
        let e = Engine::open_or_create(config.clone()).unwrap();
        let card = ModelCard {
            id: "acme/m".into(),
            builder: "acme".into(),
            price_usd: Some(0.25),
            ..Default::default()
        };
        let path = dir.join("cards.jsonl");
        std::fs::write(&path, serde_json::to_string(&card).unwrap() + "\n").unwrap();
        e.import(&[path], &crate::progress::silent).unwrap();
        drop(e);
        Engine::open(config).unwrap()
    }

    #[test]
    fn a_call_is_priced_recorded_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let call = PaidCall {
            model: "acme/m".into(),
            idempotency_key: Some("k1".into()),
            ..Default::default()
        };
        let first = e.record_paid_call(call.clone()).unwrap();
        assert!(first.recorded);
        assert_eq!(first.receipt.leaf_index, 0);
        assert_eq!(first.amount_usd, 0.25, "the model's price by default");
        assert_eq!((first.builder_calls, first.builder.as_str()), (1, "acme"));
        let again = e.record_paid_call(call).unwrap();
        assert!(!again.recorded, "the same key counts once");
        assert_eq!(
            again.receipt, first.receipt,
            "a retry gets the original's entry"
        );
        assert_eq!(again.builder_calls, 1);
        let bad = |c: PaidCall| e.record_paid_call(c).unwrap_err();
        let base = PaidCall {
            model: "acme/m".into(),
            ..Default::default()
        };
        assert!(matches!(
            bad(PaidCall {
                idempotency_key: Some(String::new()),
                ..base.clone()
            }),
            Error::InvalidIdempotencyKey { .. }
        ));
        assert!(matches!(
            bad(PaidCall {
                idempotency_key: Some("x".repeat(201)),
                ..base.clone()
            }),
            Error::InvalidIdempotencyKey { .. }
        ));
        for a in [-0.01, 1000.01, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                bad(PaidCall {
                    amount_usd: Some(a),
                    ..base.clone()
                }),
                Error::InvalidAmount { .. }
            ));
        }
        // A page that was never recorded.
        assert!(matches!(
            bad(PaidCall {
                page_id: Some(5),
                rank: Some(1),
                ..base.clone()
            }),
            Error::PageNotFound { page: 5 }
        ));
        // A rank of 0, half an origin.
        for (page_id, rank) in [(Some(0), Some(0)), (Some(0), None), (None, Some(1))] {
            assert!(matches!(
                bad(PaidCall {
                    page_id,
                    rank,
                    ..base.clone()
                }),
                Error::InvalidCallOrigin
            ));
        }
        assert!(matches!(
            bad(PaidCall {
                model: "acme/none".into(),
                ..base
            }),
            Error::ModelNotFound { .. }
        ));
    }
}
