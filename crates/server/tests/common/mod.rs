//! The test hub shared by the API tests and the fuzz test: the project's
//! fixture cards, hash vectors, a persistent ledger, an admin key and the
//! key of builder `acme`.

use std::path::Path;
use std::sync::Arc;

use hubsearch_core::Config;
use hubsearch_engine::progress::silent;
use hubsearch_engine::{Engine, LedgerMode};
use hubsearch_server::keys::Principal;
use hubsearch_server::AppState;

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
