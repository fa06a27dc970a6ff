//! Layered configuration: compiled-in defaults, then a TOML file, then
//! `HUBSEARCH_<SECTION>__<KEY>` environment variables, then CLI flags (applied
//! by the binary). Validated once, at start-up. Every knob and its trade-off is
//! documented in the checked-in `config/hubsearch.toml`, which equals the
//! defaults (a test keeps the two in step).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::choice::{
    AttentionKind, EmbeddingModel, EmbeddingRuntime, Fusion, Group, Impact, Mode, PolicyKind,
    Rounds, WordScoring,
};
use crate::error::{Error, Result};

/// All settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub index: IndexConfig,
    pub search: SearchConfig,
    pub ranking: RankingConfig,
    pub embedding: EmbeddingConfig,
    pub server: ServerConfig,
    pub cluster: ClusterConfig,
}

/// Cluster mode (docs/cluster.md): replicas that share one log of card
/// changes, served pages and paid calls through NATS JetStream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Off (the default): one node with its embedded ledger, no NATS.
    pub enabled: bool,
    /// NATS servers to connect to (any of them; the client follows the
    /// cluster).
    pub nats_urls: Vec<String>,
    /// This replica's name, unique in the cluster (letters, digits, `-`).
    pub replica: String,
    /// The JetStream stream holding the log; its subjects are
    /// `<stream lower-cased>.cards|pages|calls`.
    pub stream: String,
    /// Copies of the stream JetStream keeps (3 = R3, Raft; 1 for a single
    /// NATS server).
    pub stream_replicas: usize,
    /// JetStream's deduplication window for message ids, seconds: a retried
    /// publish or call within it is stored once.
    pub duplicate_window_s: u64,
    /// How long a served page the log does not take is tried again,
    /// seconds, before it is counted as lost; 0 = half of
    /// `duplicate_window_s`. Longer rides out a longer outage but holds
    /// more pages in memory meanwhile (at most 4,096); it must stay below
    /// `duplicate_window_s`, so that a retry of a page the log did store
    /// (only its acknowledgement was lost) is still dropped as a duplicate
    /// rather than counted twice (docs/cluster.md, Served pages are retried).
    pub page_retry_s: u64,
    /// How long a write waits for this replica to apply it before the
    /// answer (read-your-writes), milliseconds; the write is durable in the
    /// log either way.
    pub apply_wait_ms: u64,
    /// Where this replica writes snapshots of its index and ledger at a log
    /// position (a new replica starts from one); empty = none.
    pub snapshot_dir: String,
    /// Seconds between snapshots.
    pub snapshot_every_s: u64,
    /// Snapshots kept (the oldest are removed).
    pub snapshots_kept: usize,
    /// The JetStream object store bucket snapshots are published to and
    /// restored from; empty = `<stream, lower-cased>-snapshots`. Every
    /// replica of one cluster (and `hubsearch backup`) must name the same.
    pub snapshot_bucket: String,
    /// After each snapshot round, truncate the log up to the oldest
    /// snapshot kept in the bucket (never past a live replica). Off: the
    /// snapshots are still published, and the log is bounded only by
    /// `log_max_age_s` and `log_max_bytes` (docs/cluster.md, Snapshots and
    /// truncation).
    pub truncate_log: bool,
    /// The log keeps events this many seconds (JetStream `max_age`; 0 =
    /// forever). A replica whose position the log has trimmed past must
    /// start from a snapshot (docs/cluster.md, Retention).
    pub log_max_age_s: u64,
    /// The log keeps at most this many bytes per copy, dropping the oldest
    /// events (JetStream `max_bytes`; 0 = no limit).
    pub log_max_bytes: u64,
    /// The newest event version this replica writes (docs/cluster.md,
    /// Upgrades): 3 sends served pages as compact page logs (models by
    /// their ordinal in the ledger's dictionary); 2 as self-contained
    /// binary logs, for the time of a rolling upgrade from version 2; 1 as
    /// version 1 replicas read them (JSON), for one from version 1.
    pub event_version: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            nats_urls: vec!["nats://127.0.0.1:4222".into()],
            replica: "r1".into(),
            stream: "HUBSEARCH".into(),
            stream_replicas: 3,
            duplicate_window_s: 600,
            page_retry_s: 0,
            apply_wait_ms: 5000,
            snapshot_dir: String::new(),
            snapshot_every_s: 3600,
            snapshots_kept: 2,
            snapshot_bucket: String::new(),
            truncate_log: true,
            log_max_age_s: 7 * 24 * 3600,
            log_max_bytes: 0,
            event_version: 3,
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub addr: String,
    /// Searches running at once; 0 = one per core. CPU-bound work beyond
    /// this only queues.
    pub max_concurrent_searches: usize,
    /// How long a search may wait for a slot before it is shed with 503.
    pub queue_timeout_ms: u64,
    /// Deadline of one search (waiting included); past it: 503.
    pub search_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time a client has to send a whole request body, in milliseconds
    /// (from when the route starts reading it; else 408 body_timeout and
    /// the connection is closed). Bodies are read only after the key is
    /// checked.
    pub body_read_timeout_ms: u64,
    /// Results per page when the request does not say.
    pub default_per_page: usize,
    /// Seconds frontends may cache a listing page.
    pub listing_max_age: u64,
    /// Writes running at once (admitted apart from reads).
    pub max_concurrent_writes: usize,
    /// Open connections at most; past it new ones are closed at once.
    pub max_connections: usize,
    /// Open connections from one client IP at most.
    pub max_connections_per_ip: usize,
    /// Time a client has to send a request's headers (and an idle
    /// kept-alive connection lives), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Longest request URI accepted, in bytes (else 414).
    pub max_uri_bytes: usize,
    /// Largest total of request headers accepted, in bytes (else 431).
    pub max_header_bytes: usize,
    /// How long computed exposure statistics are reused, in milliseconds.
    pub stats_cache_ms: u64,
    /// Origins browser apps may call the API from (CORS): `["*"]` = any,
    /// `[]` = none (no CORS headers), else exact origins
    /// (`https://hub.example.org`).
    pub cors_origins: Vec<String>,
    /// Requests a minute one client (an API key, else an IP address) may
    /// make; 0 = no limit.
    pub rate_limit_per_minute: u32,
    /// Pages one client (an API key, else an IP address) may have recorded
    /// as exposure a minute; past it pages are served but not recorded
    /// (docs/ledger.md, Gaming resistance). 0 = no budget.
    pub recorded_pages_per_minute: u32,
    /// The same page to the same client within this many seconds is
    /// recorded once. 0 = every page.
    pub repeat_window_seconds: u64,
    /// Record the Hugging Face compatible API's search pages as exposure.
    /// Off: its callers are tools and scripts, not people looking at a page.
    pub record_hf_api: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:8080".into(),
            max_concurrent_searches: 0,
            queue_timeout_ms: 100,
            search_timeout_ms: 2000,
            max_body_bytes: 1 << 20,
            body_read_timeout_ms: 10_000,
            default_per_page: 10,
            listing_max_age: 10,
            max_concurrent_writes: 2,
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_read_timeout_ms: 5000,
            max_uri_bytes: 8192,
            max_header_bytes: 32768,
            stats_cache_ms: 1000,
            cors_origins: vec!["*".into()],
            rate_limit_per_minute: 0,
            recorded_pages_per_minute: 30,
            repeat_window_seconds: 600,
            record_hf_api: false,
        }
    }
}

/// The embedding model and the vector index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    /// minilm (all-MiniLM-L6-v2), hash (fast stand-in for scale tests), none.
    pub model: EmbeddingModel,
    /// Directory with config.json, tokenizer.json, model.safetensors (and
    /// model.onnx, model-int8.onnx from scripts/setup-onnx).
    pub model_dir: PathBuf,
    /// What runs the model: candle, onnx (fp32), onnx-int8.
    pub runtime: EmbeddingRuntime,
    /// The ONNX Runtime library (from the PyPI wheel, by scripts/setup-onnx).
    pub onnxruntime_lib: PathBuf,
    /// Cards embedded per batch.
    pub batch_size: usize,
    /// Query vectors kept in the LRU cache.
    pub query_cache: usize,
    /// HNSW neighbours per node.
    pub hnsw_m: usize,
    /// HNSW candidates explored while inserting.
    pub hnsw_ef_construction: usize,
    /// HNSW candidates explored per query.
    pub hnsw_ef_search: usize,
    /// Exact search below this many (allowed) vectors.
    pub exact_below: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            model: EmbeddingModel::MiniLm,
            model_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            runtime: EmbeddingRuntime::Onnx,
            onnxruntime_lib: PathBuf::from("models/onnxruntime/libonnxruntime.so.1.32.0"),
            batch_size: 8,
            query_cache: 4096,
            hnsw_m: 16,
            hnsw_ef_construction: 200,
            hnsw_ef_search: 200,
            exact_below: 5000,
        }
    }
}

/// On-disk index and import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Index directory (relative paths are relative to the working directory).
    pub dir: PathBuf,
    /// Cards per commit during import: a crash loses at most this many.
    pub commit_every: usize,
    /// Memory budget of the index writer in MiB (tantivy splits it among threads).
    pub writer_memory_mb: usize,
    /// Indexing threads; 0 = one per core.
    pub threads: usize,
    /// The call log's Ed25519 key file (docs/transparency.md); empty = its
    /// own `transparency.key` beside the ledger, created on first start. A
    /// cluster gives every replica the same file (which must exist).
    pub transparency_key: String,
    /// Served pages' logs kept in the ledger for off-policy research, the
    /// newest first; 0 = all (docs/ledger.md, Retention). The books keep
    /// every page's effect whatever this is.
    pub page_log_keep: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dir: PathBuf::from("index/default"),
            commit_every: 50_000,
            writer_memory_mb: 256,
            threads: 0,
            transparency_key: String::new(),
            page_log_keep: 0,
        }
    }
}

/// Query-time limits and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Results per page when the request does not say.
    pub default_limit: usize,
    /// Most results one request may ask for.
    pub max_limit: usize,
    /// Candidates each retriever hands to ranking.
    pub candidates: usize,
    /// Nearest neighbours the vector side adds in hybrid mode (every text
    /// candidate gets its exact cosine besides); vector mode retrieves
    /// `candidates`.
    pub vector_candidates: usize,
    /// Longest query accepted, in characters.
    pub max_query_chars: usize,
    /// Retrieval mode when a request names none: text, vector, hybrid.
    pub default_mode: Mode,
    /// Hybrid fusion: cosine (text min-max + raw cosine), weighted (both
    /// min-max normalised) or rrf.
    pub fusion: Fusion,
    /// RRF constant k.
    pub rrf_k: f64,
    /// Weight of the vector side in weighted fusion (text gets 1 - this).
    pub vector_weight: f64,
    /// How a query word is scored over the text fields: bm25f or dismax
    /// (docs/retrieval.md, BM25F).
    pub scoring: WordScoring,
    /// BM25 field boosts (see config/hubsearch.toml).
    pub boost_id: f32,
    pub boost_id_stem: f32,
    pub boost_task: f32,
    pub boost_languages: f32,
    pub boost_tags: f32,
    pub boost_datasets: f32,
    pub boost_architectures: f32,
    pub boost_description: f32,
    pub boost_card_text: f32,
    /// Boost of the exact phrase of the query's words in the id (names
    /// first, docs/retrieval.md).
    pub boost_phrase: f32,
    /// Exponent of the shared-IDF factors on the field boosts
    /// (docs/retrieval.md, Shared IDF): 0 = each field's own IDF, 1 = the
    /// word's IDF where it is most common.
    pub shared_idf: f32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            default_limit: 10,
            max_limit: 100,
            candidates: 200,
            vector_candidates: 50,
            max_query_chars: 512,
            default_mode: Mode::Hybrid,
            fusion: Fusion::Cosine,
            rrf_k: 60.0,
            vector_weight: 0.35,
            scoring: WordScoring::Bm25f,
            boost_id: 1.0,
            boost_id_stem: 1.0,
            boost_task: 13.0,
            boost_languages: 13.0,
            boost_tags: 1.0,
            boost_datasets: 1.0,
            boost_architectures: 0.7,
            boost_description: 0.7,
            boost_card_text: 0.7,
            boost_phrase: 0.25,
            shared_idf: 0.75,
        }
    }
}

/// Ranking policy defaults (docs/ranking.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankingConfig {
    /// Default policy: relevance, popularity, tail_boost, fair, stochastic.
    pub policy: PolicyKind,
    /// Attention model: log, trec, rbp, cascade.
    pub attention: AttentionKind,
    /// `popularity`: weight of ln(1 + calls).
    pub alpha: f64,
    /// `tail_boost`: strength of the long-tail prior.
    pub beta: f64,
    /// `fair` (FairCo, exposure): weight of the error term.
    pub lambda: f64,
    /// `fair_impact` (FairCo, impact): weight of the error term. Tuned with
    /// simulated calls (`hubsearch eval --calls`): the largest value keeping
    /// 95% of relevance's nDCG@10 over both dev sets (docs/ranking.md).
    pub impact_lambda: f64,
    /// `fair_bounded` (fixed-gain controller): weight of the deficit.
    pub bounded_lambda: f64,
    /// `fair`, `fair_impact`: what multiplies FairCo's disparity: nothing
    /// (`average`, so lambda means the same at any traffic), all served
    /// pages (`global`, the paper's form) or the rounds the group was a
    /// candidate (`group`).
    pub rounds: Rounds,
    /// `fair_impact`: what counts as impact, calls or income.
    pub impact: Impact,
    /// Impressions after which a model's logged calls weigh as much as its
    /// retrieval relevance in its merit (docs/ranking.md, Merit); 0 = merit
    /// is the retrieval relevance alone.
    pub ips_impressions: u64,
    /// Impressions of a model under one query after which the calls that
    /// query's pages gave it weigh as much as its merit without them
    /// (docs/ranking.md, Merit: calls by query); 0 = off.
    pub ips_query_impressions: u64,
    /// `stochastic`: Plackett-Luce temperature.
    pub temperature: f64,
    /// `rbp` patience.
    pub gamma: f64,
    /// `fair` groups: model or builder.
    pub group: Group,
    /// Merit: candidates whose best retriever rank is deeper than this earn
    /// no merit (their estimated probability of satisfying the query is 0);
    /// merit is invariant to `search.candidates` while it is at least this.
    pub merit_depth: usize,
    /// Merit: the calibrated probability that a card satisfies the query,
    /// per retrieval mode (docs/ranking.md, Merit; fitted by `hubsearch
    /// calibrate` on the judged dev sets).
    pub merit_text: MeritCalibration,
    pub merit_vector: MeritCalibration,
    pub merit_hybrid: MeritCalibration,
}

/// A logistic (Platt) model of the probability that a candidate satisfies
/// the query: `sigmoid(intercept + text * t + cosine * c + log_rank *
/// ln(rank) + named * [named])`, where `t` is the candidate's BM25 over the
/// query's best, `c` its cosine to the query (0 when absent), `rank` its best
/// 1-based rank in a retriever's own list and `named` whether the query names
/// it (docs/ranking.md, Merit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeritCalibration {
    pub intercept: f64,
    pub text: f64,
    pub cosine: f64,
    pub log_rank: f64,
    pub named: f64,
    pub breadth: f64,
}

impl Default for MeritCalibration {
    fn default() -> Self {
        MeritCalibration::HYBRID
    }
}

impl MeritCalibration {
    /// Fitted by `hubsearch calibrate` on dev + natural-dev, hybrid mode,
    /// the real corpus with MiniLM vectors (docs/ranking.md, Merit).
    pub const HYBRID: MeritCalibration = MeritCalibration {
        intercept: -1.0056,
        text: 3.1212,
        cosine: 3.0962,
        log_rank: -0.2115,
        named: -0.2446,
        breadth: -1.8959,
    };
    /// The same, text mode.
    pub const TEXT: MeritCalibration = MeritCalibration {
        intercept: -0.2696,
        text: 2.4891,
        cosine: 0.0,
        log_rank: -0.7632,
        named: 0.0906,
        breadth: 0.5399,
    };
    /// The same, vector mode.
    pub const VECTOR: MeritCalibration = MeritCalibration {
        intercept: -0.536,
        text: 0.0,
        cosine: 1.6884,
        log_rank: -0.1146,
        named: -0.1178,
        breadth: 0.0,
    };

    /// The coefficients, in the order of [`MeritCalibration::from_slice`].
    pub fn to_vec(&self) -> Vec<f64> {
        vec![
            self.intercept,
            self.text,
            self.cosine,
            self.log_rank,
            self.named,
            self.breadth,
        ]
    }

    /// From `[intercept, text, cosine, log_rank, named, breadth]`.
    pub fn from_slice(b: &[f64; 6]) -> MeritCalibration {
        MeritCalibration {
            intercept: b[0],
            text: b[1],
            cosine: b[2],
            log_rank: b[3],
            named: b[4],
            breadth: b[5],
        }
    }
}

impl Default for RankingConfig {
    fn default() -> Self {
        RankingConfig {
            policy: PolicyKind::Relevance,
            attention: AttentionKind::Log,
            alpha: 1.0,
            beta: 0.5,
            lambda: 0.6,
            impact_lambda: 0.1,
            bounded_lambda: 0.4,
            rounds: Rounds::Average,
            impact: Impact::Calls,
            ips_impressions: 200,
            ips_query_impressions: 3,
            temperature: 0.1,
            gamma: 0.5,
            group: Group::Model,
            merit_depth: 10,
            merit_text: MeritCalibration::TEXT,
            merit_vector: MeritCalibration::VECTOR,
            merit_hybrid: MeritCalibration::HYBRID,
        }
    }
}

impl Config {
    /// Load defaults, then `file` (if given, or `HUBSEARCH_CONFIG`, or
    /// `./hubsearch.toml` if present), then environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut value = toml::Value::try_from(Config::default()).map_err(|e| Error::Config {
            origin: "defaults".into(),
            message: e.to_string(),
        })?;
        let env_file = std::env::var_os("HUBSEARCH_CONFIG").map(PathBuf::from);
        let local = PathBuf::from("hubsearch.toml");
        let path = file
            .map(Path::to_path_buf)
            .or(env_file)
            .or(local.exists().then_some(local));
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let file_value: toml::Value = toml::from_str(&text).map_err(|e| Error::Config {
                origin: path.display().to_string(),
                message: e.to_string(),
            })?;
            merge(&mut value, file_value);
        }
        for (key, val) in std::env::vars() {
            if let Some(rest) = key.strip_prefix("HUBSEARCH_") {
                if let Some((section, field)) = rest.split_once("__") {
                    set(&mut value, section, field, &val, &key)?;
                }
            }
        }
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config {
                origin: "merged settings".into(),
                message: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Reject values that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.validate_index_and_search()?;
        self.validate_ranking()?;
        self.validate_cluster()
    }

    fn validate_index_and_search(&self) -> Result<()> {
        if self.index.commit_every == 0 {
            return bad("index.commit_every", "must be at least 1");
        }
        if self.index.writer_memory_mb < 16 {
            return bad("index.writer_memory_mb", "must be at least 16");
        }
        if self.search.max_limit == 0 || self.search.default_limit > self.search.max_limit {
            return bad(
                "search.default_limit",
                "must be between 1 and search.max_limit",
            );
        }
        if self.search.candidates < self.search.max_limit {
            return bad("search.candidates", "must be at least search.max_limit");
        }
        let s = &self.search;
        for (k, v) in [
            ("boost_id", s.boost_id),
            ("boost_id_stem", s.boost_id_stem),
            ("boost_task", s.boost_task),
            ("boost_languages", s.boost_languages),
            ("boost_tags", s.boost_tags),
            ("boost_datasets", s.boost_datasets),
            ("boost_architectures", s.boost_architectures),
            ("boost_description", s.boost_description),
            ("boost_card_text", s.boost_card_text),
            ("boost_phrase", s.boost_phrase),
            ("shared_idf", s.shared_idf),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(&format!("search.{k}"), "must be a finite number >= 0");
            }
        }
        Ok(())
    }

    fn validate_ranking(&self) -> Result<()> {
        let r = &self.ranking;
        for (k, v) in [
            ("alpha", r.alpha),
            ("beta", r.beta),
            ("lambda", r.lambda),
            ("impact_lambda", r.impact_lambda),
            ("bounded_lambda", r.bounded_lambda),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(&format!("ranking.{k}"), "must be a finite number >= 0");
            }
        }
        if !(r.temperature.is_finite() && r.temperature > 0.0) {
            return bad("ranking.temperature", "must be > 0");
        }
        if !(r.gamma > 0.0 && r.gamma < 1.0) {
            return bad("ranking.gamma", "must be in (0, 1)");
        }
        if r.merit_depth == 0 {
            return bad("ranking.merit_depth", "must be at least 1");
        }
        for (k, m) in [
            ("merit_text", &r.merit_text),
            ("merit_vector", &r.merit_vector),
            ("merit_hybrid", &r.merit_hybrid),
        ] {
            if m.to_vec().iter().any(|v| !v.is_finite()) {
                return bad(
                    &format!("ranking.{k}"),
                    "coefficients must be finite numbers",
                );
            }
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<()> {
        let c = &self.cluster;
        if c.log_max_age_s > 0 && c.duplicate_window_s > c.log_max_age_s {
            // JetStream refuses such a stream.
            return bad(
                "cluster.duplicate_window_s",
                "must not exceed cluster.log_max_age_s",
            );
        }
        if c.page_retry_s > 0 && c.page_retry_s >= c.duplicate_window_s {
            return bad(
                "cluster.page_retry_s",
                "must be less than cluster.duplicate_window_s (a retried page must reach the log within the deduplication window to be stored once); 0 = half of it",
            );
        }
        if !(1..=3).contains(&c.event_version) {
            return bad(
                "cluster.event_version",
                "must be 1, 2 or 3 (the versions this build writes)",
            );
        }
        if !c.enabled {
            return Ok(());
        }
        if c.nats_urls.is_empty() {
            return bad("cluster.nats_urls", "must name at least one NATS server");
        }
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 64
                && n.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        };
        if !name_ok(&c.replica) {
            return bad("cluster.replica", "must be 1-64 letters, digits or -");
        }
        if !name_ok(&c.stream) {
            return bad("cluster.stream", "must be 1-64 letters, digits or -");
        }
        let bucket_ok = c.snapshot_bucket.len() <= 64
            && c.snapshot_bucket
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
        if !bucket_ok {
            return bad(
                "cluster.snapshot_bucket",
                "must be empty (<stream, lower-cased>-snapshots) or 1-64 letters, digits, - or _",
            );
        }
        if !(1..=5).contains(&c.stream_replicas) {
            return bad("cluster.stream_replicas", "must be between 1 and 5");
        }
        if !c.snapshot_dir.is_empty() && (c.snapshot_every_s == 0 || c.snapshots_kept == 0) {
            return bad(
                "cluster.snapshot_every_s",
                "snapshots need snapshot_every_s >= 1 and snapshots_kept >= 1",
            );
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn set(value: &mut toml::Value, section: &str, field: &str, raw: &str, key: &str) -> Result<()> {
    let section = section.to_ascii_lowercase();
    let field = field.to_ascii_lowercase();
    let table = value
        .get_mut(&section)
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| Error::Config {
            origin: key.to_string(),
            message: format!("no config section [{section}]"),
        })?;
    let old = table.get(&field).ok_or_else(|| Error::Config {
        origin: key.to_string(),
        message: format!("no key `{field}` in [{section}]"),
    })?;
    let parsed = match old {
        toml::Value::String(_) => Some(toml::Value::String(raw.to_string())),
        toml::Value::Integer(_) => raw.parse().ok().map(toml::Value::Integer),
        toml::Value::Float(_) => raw.parse().ok().map(toml::Value::Float),
        toml::Value::Boolean(_) => raw.parse().ok().map(toml::Value::Boolean),
        _ => None,
    };
    let parsed = parsed.ok_or_else(|| Error::Config {
        origin: key.to_string(),
        message: format!("{raw:?} is not a valid {}", old.type_str()),
    })?;
    table.insert(field, parsed);
    Ok(())
}

/// A configuration error naming `key`.
fn bad(key: &str, msg: &str) -> Result<()> {
    Err(Error::Config {
        origin: key.to_string(),
        message: msg.to_string(),
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
