//! Tests of the configuration (`config.rs`).
use super::*;

#[test]
fn checked_in_file_equals_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hubsearch.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let file: Config = toml::from_str(&text).unwrap();
    assert_eq!(file, Config::default());
}

#[test]
fn file_then_env_override() {
    let dir = std::env::temp_dir().join(format!("hubsearch-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        "[search]\ndefault_limit = 20\n[ranking]\nlambda = 0.5\n",
    )
    .unwrap();
    // Env vars are process-wide; this is the only test that sets one.
    std::env::set_var("HUBSEARCH_RANKING__LAMBDA", "0.25");
    let c = Config::load(Some(&path)).unwrap();
    std::env::remove_var("HUBSEARCH_RANKING__LAMBDA");
    assert_eq!(c.search.default_limit, 20);
    assert_eq!(c.ranking.lambda, 0.25);
    assert_eq!(c.index, IndexConfig::default());

    std::fs::write(&path, "[search]\ndefualt_limit = 20\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("defualt_limit"), "{err}");
    std::fs::write(&path, "[ranking]\npolicy = \"best\"\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("ranking.policy"), "{err}");
}

/// The cluster keys for the snapshot bucket and the page retry time:
/// each bad value is refused naming its key, and the values next to
/// it are accepted (so each check is the one that refuses).
#[test]
fn cluster_keys_are_checked_naming_the_key() {
    let on = |change: &dyn Fn(&mut ClusterConfig)| {
        let mut c = Config::default();
        c.cluster.enabled = true;
        change(&mut c.cluster);
        c.validate().map_err(|e| e.to_string())
    };
    let refused = |change: &dyn Fn(&mut ClusterConfig), key: &str| {
        let err = on(change).expect_err(key);
        assert!(err.contains(key), "{key}: {err}");
    };
    // The page retry time: below the deduplication window, 0 = half.
    for ok in [0, 1, 599] {
        on(&|c| c.page_retry_s = ok).unwrap();
    }
    // 0 is "derived", never compared with the window.
    on(&|c| {
        c.duplicate_window_s = 0;
        c.page_retry_s = 0;
    })
    .unwrap();
    refused(&|c| c.page_retry_s = 600, "cluster.page_retry_s");
    refused(&|c| c.page_retry_s = 10_000, "cluster.page_retry_s");
    on(&|c| {
        c.duplicate_window_s = 20;
        c.page_retry_s = 19;
    })
    .unwrap();
    refused(
        &|c| {
            c.duplicate_window_s = 20;
            c.page_retry_s = 20;
        },
        "cluster.page_retry_s",
    );
    // The bucket: empty (derived from the stream) or a bucket name.
    for ok in ["", "snaps", "My_snaps-2", &"b".repeat(64)] {
        on(&|c| c.snapshot_bucket = ok.to_string()).unwrap();
    }
    for bad in ["a.b", "a b", "snaps/x", "snäps", "*", &"b".repeat(65)] {
        refused(
            &|c| c.snapshot_bucket = bad.to_string(),
            "cluster.snapshot_bucket",
        );
    }
    // Outside cluster mode the bucket is not read.
    let mut c = Config::default();
    c.cluster.snapshot_bucket = "a.b".into();
    c.validate().unwrap();
    // Truncation is a switch: anything but a boolean names the key.
    let dir = tempfile_dir("truncate");
    let path = dir.join("c.toml");
    std::fs::write(&path, "[cluster]\ntruncate_log = \"no\"\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("truncate_log"), "{err}");
    std::fs::write(
        &path,
        "[cluster]\ntruncate_log = false\npage_retry_s = 30\nsnapshot_bucket = \"snaps\"\n",
    )
    .unwrap();
    let c = Config::load(Some(&path)).unwrap().cluster;
    assert!(!c.truncate_log);
    assert_eq!((c.page_retry_s, c.snapshot_bucket.as_str()), (30, "snaps"));
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hubsearch-cfg-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
