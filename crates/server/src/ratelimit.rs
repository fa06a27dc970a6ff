//! Rate limits per client (`server.rate_limit_per_minute`, off at 0): a
//! token bucket per API key, or per IP address for requests without one,
//! with the IETF `RateLimit` and `RateLimit-Policy` headers
//! (draft-ietf-httpapi-ratelimit-headers) on every answer and `429
//! rate_limited` with `Retry-After` when a bucket is empty.
//! `/healthz`, `/readyz` and `/metrics` are never limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, Code};
use crate::AppState;

/// The client's address, put on each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Buckets kept at most; past this the full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every client's bucket.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// What one request's check decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Whole requests left in the bucket.
    pub remaining: u64,
    /// Seconds until the next request is allowed (0 when one is).
    pub retry_after: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

impl Limiter {
    /// Take one token from `client`'s bucket (`per_minute` tokens, refilled
    /// evenly over a minute) at `now`.
    pub fn check(&self, client: &str, per_minute: u32, now: Instant) -> Decision {
        let cap = f64::from(per_minute.max(1));
        let rate = cap / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < cap);
        }
        let b = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
        b.at = now;
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        }
        Decision {
            allowed,
            remaining: b.tokens.floor() as u64,
            retry_after: if allowed {
                0
            } else {
                ((1.0 - b.tokens) / rate).ceil() as u64
            },
            reset: ((cap - b.tokens) / rate).ceil() as u64,
        }
    }
}

/// The middleware: limit, and say so in the headers.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let per_minute = state.config.rate_limit_per_minute;
    let path = req.uri().path();
    if per_minute == 0 || matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    // A key's holder is one client wherever it calls from; others by IP.
    let ip = req.extensions().get::<ClientIp>().map(|c| c.0);
    let client = crate::gate::client_of(req.headers(), ip);
    let d = state.limiter.check(&client, per_minute, Instant::now());
    let mut resp = if d.allowed {
        next.run(req).await
    } else {
        let msg = format!(
            "over {per_minute} requests a minute for this client; retry in {} s",
            d.retry_after
        );
        let mut r = ApiError::new(Code::RateLimited, msg).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after));
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("\"default\";q={per_minute};w=60")) {
        h.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"default\";r={};t={}", d.remaining, d.reset)) {
        h.insert("ratelimit", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_empty_and_refill() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let d = l.check("a", 3, t0);
            assert!(d.allowed && d.remaining == 2 - i, "{d:?}");
        }
        let d = l.check("a", 3, t0);
        assert!(!d.allowed && d.retry_after == 20, "{d:?}");
        // Another client has its own bucket.
        assert!(l.check("b", 3, t0).allowed);
        // One token back after 20 s (3 a minute).
        assert!(l.check("a", 3, t0 + Duration::from_secs(20)).allowed);
        assert!(!l.check("a", 3, t0 + Duration::from_secs(21)).allowed);
        // Full again after a minute, never more than full.
        let d = l.check("a", 3, t0 + Duration::from_secs(600));
        assert!(d.allowed && d.remaining == 2, "{d:?}");
    }
}
