//! End-to-end tests of the `hubsearch` binary: the real executable, real files,
//! a real on-disk index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubsearch"));
    // Keep the developer's environment out of the tests.
    c.env_remove("HUBSEARCH_INDEX")
        .env_remove("HUBSEARCH_CONFIG");
    // Vectors from the fast stand-in: these tests are about the CLI, not the
    // model (which has its own tests).
    c.env("HUBSEARCH_EMBEDDING__MODEL", "hash");
    c
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn run(index: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--index")
        .arg(index)
        .args(args)
        .output()
        .expect("run hubsearch")
}

fn ok(index: &Path, args: &[&str]) -> String {
    let out = run(index, args);
    assert!(
        out.status.success(),
        "hubsearch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn search_ids(index: &Path, query: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["search", query, "--json", "-n", "20"];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&ok(index, &args)).unwrap();
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn import_reports_every_bad_record_and_keeps_every_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    let jsonl = fixtures().join("cards.jsonl");
    let md = fixtures().join("cards_md");
    let out = run(
        &index,
        &[
            "import",
            "--quiet",
            jsonl.to_str().unwrap(),
            md.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Each bad line, with its line number and reason.
    for (line, reason) in [
        (3, "invalid JSON"),
        (5, "missing field `id`"),
        (6, "field `downloads`"),
        (9, "field `tags`"),
        (13, "price_usd"),
    ] {
        let want = format!("cards.jsonl:{line}: ");
        let found = stderr
            .lines()
            .any(|l| l.contains(&want) && l.contains(reason));
        assert!(found, "no report of line {line} ({reason}) in:\n{stderr}");
    }
    assert!(
        stderr.contains("broken.md:1: invalid YAML front matter"),
        "{stderr}"
    );
    assert!(
        stderr.contains("duplicate id facebook/bart-large-cnn"),
        "{stderr}"
    );
    assert!(stdout.contains("rejected 6 of 14 records"), "{stdout}");
    assert!(stdout.contains("7 cards"), "{stdout}");

    // Every good record is searchable by its own words.
    for (query, id) in [
        ("opus mt en de", "Helsinki-NLP/opus-mt-en-de"),
        (
            "german speech recognition",
            "jonatasgrosman/wav2vec2-large-xlsr-53-german",
        ),
        (
            "multilingual sentiment",
            "nlptown/bert-base-multilingual-uncased-sentiment",
        ),
        ("news summarization", "facebook/bart-large-cnn"),
        ("all minilm", "sentence-transformers/all-MiniLM-L6-v2"),
        ("table question answering", "solo/tapas-small-finetuned-wtq"),
        ("dutch speech", "acme/dutch-asr"),
    ] {
        let ids = search_ids(&index, query, &[]);
        assert_eq!(
            ids.first().map(String::as_str),
            Some(id),
            "query {query:?} gave {ids:?}"
        );
    }
    // The later duplicate won.
    let v: Value =
        serde_json::from_str(&ok(&index, &["search", "bart large cnn", "--json"])).unwrap();
    assert_eq!(v["hits"][0]["downloads"], 300001);

    // Filters and facets through the CLI.
    assert_eq!(
        search_ids(&index, "", &["--task", "automatic-speech-recognition"]).len(),
        2
    );
    let mut dutch = search_ids(&index, "", &["--language", "nl"]);
    dutch.sort();
    assert_eq!(
        dutch,
        [
            "acme/dutch-asr",
            "nlptown/bert-base-multilingual-uncased-sentiment"
        ]
    );
    let priced = search_ids(&index, "", &["--min-price", "0.0015"]);
    assert_eq!(priced.len(), 2, "{priced:?}");
    let stats: Value = serde_json::from_str(&ok(&index, &["stats", "--json"])).unwrap();
    assert_eq!(stats["models"], 7);
    let tasks = stats["facets"]["task"].as_array().unwrap();
    assert_eq!(tasks[0][0], "automatic-speech-recognition");
    assert_eq!(tasks[0][1], 2);
}

#[test]
fn reimport_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    let hub = dir.path().join("hub.jsonl");
    ok(
        &index,
        &[
            "generate",
            "--models",
            "300",
            "--seed",
            "3",
            "--out",
            hub.to_str().unwrap(),
        ],
    );
    let first: Value =
        serde_json::from_str(&ok(&index, &["import", "--json", hub.to_str().unwrap()])).unwrap();
    assert_eq!(first["imported"], 300);
    let second: Value =
        serde_json::from_str(&ok(&index, &["import", "--json", hub.to_str().unwrap()])).unwrap();
    assert_eq!(second["imported"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["unchanged"], 300);
    assert_eq!(second["total_cards"], 300);
    let before = ok(&index, &["search", "sentiment", "--json"]);
    // `index` rebuilds from scratch and gives the same answers.
    ok(&index, &["index", "--quiet", hub.to_str().unwrap()]);
    let after = ok(&index, &["search", "sentiment", "--json"]);
    let hits = |s: &str| -> Vec<(String, String)> {
        let v: Value = serde_json::from_str(s).unwrap();
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["id"].to_string(), h["score"].to_string()))
            .collect()
    };
    let (b, a) = (hits(&before), hits(&after));
    assert!(
        b.len() == 10 && b == a,
        "the rebuilt index answers differently:\n{b:?}\n{a:?}"
    );
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = run(&missing, &["search", "bert"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no index at"), "{err}");
    let out = run(&missing, &["import", "/definitely/not/a/file.jsonl"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
    let out = run(&missing, &["search", "x", "-n", "100000"]);
    assert!(!out.status.success());
}

/// An index whose text fields differ from this version's (here: one built
/// before the stemmed-id field, made by removing that field from its
/// schema) is refused with its own exit code, 3, which scripts/run reads to
/// rebuild it; other errors exit with 1.
#[test]
fn an_index_of_another_version_exits_with_3() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    let cards = fixtures().join("cards.jsonl");
    let out = run(&index, &["import", "--quiet", cards.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&index, &["stats"]);
    let meta_path = index.join("text/meta.json");
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let fields = meta["schema"]
        .as_array_mut()
        .expect("a schema in meta.json");
    let before = fields.len();
    fields.retain(|f| f["name"] != "id_stem");
    assert_eq!(fields.len(), before - 1, "the schema has an id_stem field");
    std::fs::write(&meta_path, serde_json::to_string(&meta).unwrap()).unwrap();
    for args in [&["stats"][..], &["search", "bert"][..]] {
        let out = run(&index, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("built by another version"), "{err}");
    }
    let out = run(&dir.path().join("nothing-here"), &["stats"]);
    assert_eq!(out.status.code(), Some(1));
}

/// An import killed mid-way (SIGKILL, no clean shutdown) leaves a readable
/// index holding exactly what its last commit held.
#[test]
fn killed_import_leaves_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    let base = fixtures().join("cards.jsonl");
    ok(&index, &["import", "--quiet", base.to_str().unwrap()]);
    let hub = dir.path().join("big.jsonl");
    ok(
        &index,
        &[
            "generate",
            "--models",
            "120000",
            "--seed",
            "9",
            "--out",
            hub.to_str().unwrap(),
        ],
    );

    let batch = 5000u64;
    let mut child = bin()
        .arg("--index")
        .arg(&index)
        .args([
            "import",
            "--quiet",
            "--commit-every",
            &batch.to_string(),
            hub.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let models = |idx: &Path| -> u64 {
        let v: Value = serde_json::from_str(&ok(idx, &["stats", "--json"])).unwrap();
        v["models"].as_u64().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 6;
    while seen <= 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        seen = models(&index);
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(seen > 6, "no commit observed before the deadline");
    assert!(
        !status.success(),
        "the import finished before it was killed; make the hub bigger"
    );
    let after = models(&index);
    assert!(after >= seen, "a commit was lost: saw {seen}, now {after}");
    assert_eq!(
        (after - 6) % batch,
        0,
        "a partial batch is visible: {after} cards"
    );
    assert!(after < 120_006, "the import was not interrupted");
    // Still searchable, and still writable.
    assert!(!search_ids(&index, "opus mt en de", &[]).is_empty());
    ok(&index, &["import", "--quiet", base.to_str().unwrap()]);
}

#[test]
fn export_writes_cards_vectors_and_queries_in_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    ok(
        &index,
        &[
            "import",
            "--quiet",
            fixtures().join("cards.jsonl").to_str().unwrap(),
        ],
    );
    let queries = dir.path().join("q.tsv");
    std::fs::write(
        &queries,
        "q1\tgerman speech recognition\nq2\tsentiment of tweets\n",
    )
    .unwrap();
    let out = dir.path().join("export");
    ok(
        &index,
        &[
            "export",
            "--out",
            out.to_str().unwrap(),
            "--queries",
            queries.to_str().unwrap(),
        ],
    );
    let stats: Value = serde_json::from_str(&ok(&index, &["stats", "--json"])).unwrap();
    let cards: Vec<Value> = std::fs::read_to_string(out.join("cards.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cards.len() as u64, stats["models"].as_u64().unwrap());
    let floats = |name: &str| -> Vec<f32> {
        std::fs::read(out.join(name))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let dim = 384;
    let vectors = floats("vectors.f32");
    let qvs = floats("query_vectors.f32");
    assert_eq!(vectors.len(), cards.len() * dim);
    assert_eq!(qvs.len(), 2 * dim);
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(vectors.chunks(dim).all(|v| (norm(v) - 1.0).abs() < 1e-3));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["cards_without_vector"], 0);
    assert_eq!(manifest["queries"], 2);
    // Rows are in the cards' order: the exported card whose exported vector is
    // nearest the exported query vector is vector search's top hit.
    for (i, q) in ["german speech recognition", "sentiment of tweets"]
        .iter()
        .enumerate()
    {
        let qv = &qvs[i * dim..(i + 1) * dim];
        let best = vectors
            .chunks(dim)
            .map(|v| v.iter().zip(qv).map(|(a, b)| a * b).sum::<f32>())
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0;
        let top = search_ids(&index, q, &["--mode", "vector"]);
        assert_eq!(cards[best]["id"].as_str().unwrap(), top[0], "query {q}");
    }
}
