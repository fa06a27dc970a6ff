//! Cluster mode's import: cards appended to the log, applied by every
//! replica.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use hubsearch_core::config::ClusterConfig;
use hubsearch_core::ModelCard;
use hubsearch_engine::LogEvent;

use crate::connection::connect;
use crate::error::{nats, ClusterError};
use crate::event::{card_subject, EVENT_VERSION_HEADER};

/// What an import through the log did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LogImport {
    pub records: usize,
    /// Cards the log took.
    pub appended: usize,
    /// Cards the log already had, unchanged (same id and content within
    /// JetStream's deduplication window).
    pub duplicates: usize,
    /// Records that are not cards: (file:line, reason).
    pub rejected: Vec<(String, String)>,
}

/// Cluster mode's import: append every card of `paths` to the log (message
/// id: the card's id and content hash, so a re-run within the window adds
/// nothing); every replica applies them, a run of cards per index commit.
/// Bad records are reported with their place and reason, never dropped
/// silently. `progress` is told the records read so far.
pub fn import_to_log(
    cfg: &ClusterConfig,
    paths: &[std::path::PathBuf],
    progress: &dyn Fn(usize),
) -> Result<LogImport, ClusterError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Log(e.to_string()))?;
    let (_client, js) = rt.block_on(connect(cfg, Duration::from_secs(30), 1))?;
    let prefix = cfg.stream.to_ascii_lowercase();
    let mut out = LogImport::default();
    let mut batch: Vec<ModelCard> = Vec::new();
    let mut failed: Option<ClusterError> = None;
    let flush = |batch: &mut Vec<ModelCard>, out: &mut LogImport| -> Result<(), ClusterError> {
        rt.block_on(async {
            let mut acks = Vec::with_capacity(batch.len());
            for card in batch.drain(..) {
                let json = serde_json::to_vec(&card).unwrap_or_default();
                // Content ids here: re-running an import within the window
                // appends nothing twice.
                let id = format!("card:{}:{}", card.id, blake3::hash(&json).to_hex());
                let card_id = card.id.clone();
                let event = LogEvent::Card {
                    card: Box::new(card),
                };
                let payload =
                    serde_json::to_vec(&event).map_err(|e| ClusterError::Log(e.to_string()))?;
                acks.push(
                    js.send_publish(
                        card_subject(&prefix, &card_id),
                        PublishMessage::build()
                            .header(EVENT_VERSION_HEADER, "1")
                            .payload(payload.into())
                            .message_id(id),
                    )
                    .await
                    .map_err(nats)?,
                );
            }
            for ack in acks {
                let ack = ack.await.map_err(nats)?;
                if ack.duplicate {
                    out.duplicates += 1;
                } else {
                    out.appended += 1;
                }
            }
            Ok(())
        })
    };
    let read = hubsearch_engine::source::read_all(paths, &mut |(loc, parsed)| {
        out.records += 1;
        if out.records % 1024 == 0 {
            progress(out.records);
        }
        match parsed {
            Ok(card) => {
                batch.push(card);
                if batch.len() >= 256 && failed.is_none() {
                    if let Err(e) = flush(&mut batch, &mut out) {
                        failed = Some(e);
                    }
                }
            }
            Err(reason) => out.rejected.push((loc.to_string(), reason)),
        }
        Ok(())
    });
    read.map_err(|e| ClusterError::Log(e.to_string()))?;
    if let Some(e) = failed {
        return Err(e);
    }
    flush(&mut batch, &mut out)?;
    progress(out.records);
    Ok(out)
}
