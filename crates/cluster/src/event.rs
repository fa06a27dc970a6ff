//! The log's events as messages: their version header, how a delivered
//! message is read, and the subjects card changes are appended to.

use std::time::{SystemTime, UNIX_EPOCH};

use hubsearch_engine::LogEvent;

/// The newest version of the log's events this build understands
/// (docs/cluster.md, Upgrades). Every message carries its version in the
/// header below; a message without it is version 1 (logs written before
/// it). Version 2 added served pages as self-contained binary logs
/// (`LogEvent::Logged`), version 3 as compact page logs that refer to the
/// ledger's dictionary of models (`LogEvent::Compact`); every other event
/// is as in version 1, and is sent as version 1.
pub const EVENT_VERSION: u32 = 3;
/// The header carrying an event's version.
pub const EVENT_VERSION_HEADER: &str = "Hubsearch-Event-Version";

/// Read one log message: its event, or why this replica cannot apply it. A
/// newer version than [`EVENT_VERSION`] is never skipped: skipping would
/// make this replica's state silently differ from the others'.
pub(crate) fn decode_event(version: Option<&str>, payload: &[u8]) -> Result<LogEvent, String> {
    let v = match version {
        None => 1,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("event version {v:?} does not parse"))?,
    };
    if v > EVENT_VERSION {
        return Err(format!(
            "the event is of version {v}, newer than this replica understands ({EVENT_VERSION}): upgrade this replica (docs/cluster.md, Upgrades)"
        ));
    }
    LogEvent::from_payload(payload)
}

/// The subject of card `id`'s changes under `prefix` (the stream's
/// subjects, lower case): one per card, keyed by its id's key.
pub(crate) fn card_subject(prefix: &str, id: &str) -> String {
    format!("{prefix}.cards.{:016x}", hubsearch_core::card::key_of(id))
}

/// Milliseconds since the Unix epoch (events carry when they were sent).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_events_stop_the_replica_older_ones_apply() {
        let delete = br#"{"delete": {"id": "a/x"}}"#;
        // Version 1, with or without the header (logs from before it).
        for v in [None, Some("1")] {
            let e = decode_event(v, delete).unwrap();
            assert!(matches!(e, LogEvent::Delete { id } if id == "a/x"));
        }
        // This build's newest version reads too.
        assert!(decode_event(Some(&EVENT_VERSION.to_string()), delete).is_ok());
        // A newer version is refused even when its payload would parse.
        let err = decode_event(Some(&(EVENT_VERSION + 1).to_string()), delete).unwrap_err();
        assert!(err.contains("newer than this replica understands"), "{err}");
        assert!(decode_event(Some("x"), delete).is_err());
        // A payload this version cannot read is an error, not a skip.
        let err = decode_event(Some("1"), br#"{"rename": {}}"#).unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
    }
}
