//! The test hub shared by the API tests and the fuzz test: the project's
//! fixture cards, hash vectors, a persistent ledger, an admin key and the
//! key of builder `acme`; and one request through its router.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hubsearch_core::Config;
use hubsearch_engine::progress::silent;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_server::keys::Principal;
use hubsearch_server::{app, AppState};
use serde_json::Value;
use tower::ServiceExt;

pub struct Hub {
    pub _dir: tempfile::TempDir,
    pub state: AppState,
    pub admin: String,
    pub acme: String,
}

pub fn hub() -> Hub {
    hub_with(|_| {})
}

/// The test hub with a changed configuration.
pub fn hub_with(change: impl FnOnce(&mut Config)) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.index.dir = dir.path().join("index");
    config.embedding.model = hubsearch_core::EmbeddingModel::Hash;
    change(&mut config);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    {
        let e = Engine::open_or_create(config.clone()).unwrap();
        e.import(
            &[fixtures.join("cards.jsonl"), fixtures.join("cards_md")],
            &silent,
        )
        .unwrap();
    }
    let engine = Engine::open_with(config, LedgerMode::Persistent, false).unwrap();
    let state = AppState::new(Arc::new(engine));
    let admin = state
        .keys
        .create(Principal {
            builder: None,
            admin: true,
        })
        .unwrap();
    let acme = state
        .keys
        .create(Principal {
            builder: Some("acme".into()),
            admin: false,
        })
        .unwrap();
    Hub {
        _dir: dir,
        state,
        admin,
        acme,
    }
}

/// A replica that stands still: its status says 40 served pages were sent
/// and `lost` given up on; nothing else is called.
#[allow(dead_code)]
pub struct LostPages {
    pub lost: u64,
}

impl hubsearch_engine::Replicator for LostPages {
    fn card_version(&self, _: &str) -> hubsearch_engine::Result<u64> {
        unreachable!()
    }
    fn card(&self, _: &hubsearch_core::ModelCard, _: Option<u64>) -> hubsearch_engine::Result<()> {
        unreachable!()
    }
    fn delete(&self, _: &str, _: Option<u64>) -> hubsearch_engine::Result<()> {
        unreachable!()
    }
    fn keys(&self, _: &[hubsearch_engine::keys::KeyChange]) -> hubsearch_engine::Result<()> {
        unreachable!()
    }
    fn call(
        &self,
        _: &hubsearch_engine::CallRecord,
    ) -> hubsearch_engine::Result<hubsearch_engine::CallOutcome> {
        unreachable!()
    }
    fn page(
        &self,
        _: hubsearch_engine::ledger::PageLog,
        _: u64,
        _: u64,
    ) -> hubsearch_engine::Result<u64> {
        unreachable!()
    }
    fn status(&self) -> hubsearch_engine::replica::ReplicaStatus {
        hubsearch_engine::replica::ReplicaStatus {
            replica: "r1".into(),
            pages_sent: 40,
            pages_lost: self.lost,
            pages_failed: self.lost,
            ..Default::default()
        }
    }
}

/// One request through `app(h.state)` (`oneshot`, no socket): `key` as a
/// bearer token, `headers` added, `body` as JSON. The status, the headers
/// and the body (JSON, else its text as a JSON string).
#[allow(dead_code)]
pub async fn request(
    h: &Hub,
    method: Method,
    uri: &str,
    key: Option<&str>,
    headers: &[(HeaderName, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = app(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, v)
}
