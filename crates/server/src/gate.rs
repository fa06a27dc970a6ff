//! Which served pages the exposure ledger records (docs/ledger.md, Gaming
//! resistance). Exposure is what the `fair` policies push against, so a
//! client that can write it at will can push a rival down. Three rules,
//! applied to every page a person could have seen (search and listings):
//!
//! - **HEAD and other non-GET reads are never recorded** (the handlers
//!   check the method).
//! - **A repeat is recorded once**: the same page (query, mode, policy,
//!   seed, filters, offset, size) to the same client within
//!   `server.repeat_window_seconds` counts once; reloading a page is not
//!   seeing it again.
//! - **A budget per client**: at most `server.recorded_pages_per_minute`
//!   recorded pages a minute (a token bucket, bursts up to a minute's
//!   worth). Past it the search is still served, with `page_id: null` and
//!   the `RateLimit` / `RateLimit-Policy` headers of policy `"exposure"`;
//!   only the recording is dropped.
//!
//! A client is its API key (hashed), else its IP address: a frontend that
//! serves many people with one key should be given a larger budget (or
//! the budget turned off with 0). Every decision is counted for
//! `GET /v1/stats/recording`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use serde::Serialize;

use crate::ratelimit::{Decision, Limiter};

/// Remembered pages at most; past it the expired ones are forgotten, then
/// the oldest.
const MAX_SEEN: usize = 200_000;

/// What the gate decided for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Record,
    /// The same page to the same client within the window.
    Repeat,
    /// The client's recording budget is spent.
    OverBudget,
}

/// The gate's counts since start (this server; replicas count their own).
#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct RecordingFigures {
    /// Pages recorded as exposure.
    pub recorded: u64,
    /// Pages served but not recorded: the same page to the same client
    /// within `server.repeat_window_seconds`.
    pub repeats_discarded: u64,
    /// Pages served but not recorded: past the client's
    /// `server.recorded_pages_per_minute`.
    pub over_budget_discarded: u64,
    /// HEAD requests answered (never recorded).
    pub head_requests: u64,
    /// The rules in force.
    pub recorded_pages_per_minute: u32,
    pub repeat_window_seconds: u64,
}

/// The gate: remembered pages, budgets, counts.
#[derive(Debug, Default)]
pub struct ExposureGate {
    seen: Mutex<HashMap<blake3::Hash, Instant>>,
    budgets: Limiter,
    recorded: AtomicU64,
    repeats: AtomicU64,
    over_budget: AtomicU64,
    heads: AtomicU64,
}

impl ExposureGate {
    /// Decide whether `client`'s page `page` (any stable description of
    /// what was shown) is recorded, at `now`, under `per_minute` and
    /// `window`. Also returns the budget's state for the headers (`None`
    /// when there is no budget or the page was not charged).
    pub fn admit(
        &self,
        client: &str,
        page: &str,
        per_minute: u32,
        window: Duration,
        now: Instant,
    ) -> (Verdict, Option<Decision>) {
        let key = blake3::hash(format!("{client}\n{page}").as_bytes());
        if !window.is_zero() {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < window)
            {
                self.repeats.fetch_add(1, Ordering::Relaxed);
                return (Verdict::Repeat, None);
            }
        }
        let decision = (per_minute > 0).then(|| self.budgets.check(client, per_minute, now));
        if decision.is_some_and(|d| !d.allowed) {
            self.over_budget.fetch_add(1, Ordering::Relaxed);
            return (Verdict::OverBudget, decision);
        }
        if !window.is_zero() {
            // Only a recorded page is remembered: one dropped for the
            // budget may be recorded when the client sees it again.
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= MAX_SEEN {
                seen.retain(|_, at| now.duration_since(*at) < window);
                if seen.len() >= MAX_SEEN {
                    seen.clear();
                }
            }
            seen.insert(key, now);
        }
        self.recorded.fetch_add(1, Ordering::Relaxed);
        (Verdict::Record, decision)
    }

    /// Count a HEAD request (served, never recorded).
    pub fn head(&self) {
        self.heads.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, with the rules in force.
    pub fn figures(&self, per_minute: u32, window_seconds: u64) -> RecordingFigures {
        RecordingFigures {
            recorded: self.recorded.load(Ordering::Relaxed),
            repeats_discarded: self.repeats.load(Ordering::Relaxed),
            over_budget_discarded: self.over_budget.load(Ordering::Relaxed),
            head_requests: self.heads.load(Ordering::Relaxed),
            recorded_pages_per_minute: per_minute,
            repeat_window_seconds: window_seconds,
        }
    }
}

/// The `RateLimit` / `RateLimit-Policy` headers of the recording budget
/// (policy `"exposure"`, draft-ietf-httpapi-ratelimit-headers), appended
/// beside any request limit's.
pub fn budget_headers(headers: &mut HeaderMap, per_minute: u32, d: &Decision) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"exposure\";q={per_minute};w=60")) {
        headers.append("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"exposure\";r={};t={}", d.remaining, d.reset)) {
        headers.append("ratelimit", v);
    }
}

/// A client's name: its API key (hashed), else its address.
pub fn client_of(headers: &HeaderMap, ip: Option<std::net::IpAddr>) -> String {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
    {
        Some(key) => format!("key:{}", blake3::hash(key.as_bytes()).to_hex()),
        None => match ip {
            Some(ip) => format!("ip:{ip}"),
            None => "ip:local".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_count_once_and_budgets_cap_distinct_pages() {
        let g = ExposureGate::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(600);
        assert_eq!(g.admit("a", "q1", 3, w, t0).0, Verdict::Record);
        assert_eq!(g.admit("a", "q1", 3, w, t0).0, Verdict::Repeat);
        // Another client's same page is its own.
        assert_eq!(g.admit("b", "q1", 3, w, t0).0, Verdict::Record);
        assert_eq!(g.admit("a", "q2", 3, w, t0).0, Verdict::Record);
        assert_eq!(g.admit("a", "q3", 3, w, t0).0, Verdict::Record);
        assert_eq!(g.admit("a", "q4", 3, w, t0).0, Verdict::OverBudget);
        // After the window the same page counts again (budget refilled).
        let later = t0 + Duration::from_secs(601);
        assert_eq!(g.admit("a", "q1", 3, w, later).0, Verdict::Record);
        let f = g.figures(3, 600);
        assert_eq!(
            (f.recorded, f.repeats_discarded, f.over_budget_discarded),
            (5, 1, 1)
        );
        // No window, no budget: everything is recorded.
        let open = ExposureGate::default();
        for _ in 0..10 {
            assert_eq!(
                open.admit("a", "q", 0, Duration::ZERO, t0).0,
                Verdict::Record
            );
        }
    }
}
