//! Ledger durability: a process records pages and paid calls, is killed with
//! SIGKILL (no clean shutdown) after they were acknowledged, and a new
//! process finds every acknowledged record.
//!
//! The child is this same test binary, re-run with an environment variable
//! that makes `child_writer` do the writing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hubsearch_core::{BuilderKey, Group, ModelKey};
use hubsearch_engine::Ledger;
use hubsearch_ledger::{CallRecord, Impression, PageRecord};
use hubsearch_rank::{Account, PageDelta};

const CHILD_ENV: &str = "HUBSEARCH_LEDGER_CHILD";

fn call(i: u64) -> CallRecord {
    CallRecord {
        model: ModelKey(i % 13),
        builder: BuilderKey(1000 + i % 5),
        model_id: format!("b{}/m{}", i % 5, i % 13).into(),
        builder_name: format!("b{}", i % 5),
        amount_usd: 0.01,
        amount_stated: true,
        idempotency_key: Some(format!("call-{i}")),
        origin: None,
    }
}

/// A page's delta for one group: exposure 1, merit 1, one round.
const ONE: Account = Account {
    exposure: 1.0,
    merit: 1.0,
    rounds: 1,
    impact: 0.0,
};

fn page(i: u64) -> PageRecord {
    PageRecord {
        impressions: vec![Impression {
            model: ModelKey(i % 13),
            builder: BuilderKey(1000 + i % 5),
            rank: 1,
            exposure: 1.0,
        }],
        model_delta: PageDelta::from([(i % 13, ONE)]),
        builder_delta: PageDelta::from([(1000 + i % 5, ONE)]),
        names: vec![],
        log: None,
        book: Default::default(),
        query: None,
    }
}

/// Runs only as the child: write forever, acknowledging as it goes.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ledger = Ledger::open(std::path::Path::new(&path)).unwrap();
    let mut i = 0u64;
    loop {
        for _ in 0..50 {
            ledger.record_page(page(i)).unwrap();
            ledger.record_call(call(i)).unwrap();
            i += 1;
        }
        ledger.flush().unwrap();
        // Everything up to i is acknowledged now.
        println!("ACK {i}");
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0u64;
    let mut acks = 0;
    while acks < 5 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            acked = n.trim().parse().unwrap();
            acks += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(acked >= 250);

    let ledger = Ledger::open(&path).unwrap();
    assert!(
        ledger.pages() >= acked,
        "pages: {} < acknowledged {acked}",
        ledger.pages()
    );
    let calls: u64 = ledger
        .earnings(Group::Model)
        .values()
        .map(|e| e.calls)
        .sum();
    assert!(calls >= acked, "calls: {calls} < acknowledged {acked}");
    for i in 0..acked {
        let again = ledger.record_call(call(i)).unwrap();
        assert!(!again.recorded, "acknowledged call {i} was lost");
    }
    let t = ledger.tally_of(0, Group::Model);
    assert!(t.exposure >= (acked / 13) as f64 && t.merit == t.exposure);
}

const RACE_ENV: &str = "HUBSEARCH_LEDGER_RACE_CHILD";

/// Runs only as the child of the race test: every call is sent by two
/// threads at once with the same idempotency key; a call is printed as
/// acknowledged as soon as either thread's `record_call` returns.
#[test]
fn child_racer() {
    let Ok(path) = std::env::var(RACE_ENV) else {
        return;
    };
    let ledger = Ledger::open(std::path::Path::new(&path)).unwrap();
    let offset: u64 = std::env::var("HUBSEARCH_RACE_OFFSET")
        .unwrap()
        .parse()
        .unwrap();
    for i in offset.. {
        let (a, b) = (ledger.clone(), ledger.clone());
        let first = std::thread::spawn(move || a.record_call(call(i)).unwrap());
        let second = b.record_call(call(i)).unwrap();
        // The duplicate answered: the call must be durable by now.
        println!("ACK {i}");
        let first = first.join().unwrap();
        assert_eq!(first.seq, second.seq);
        assert!(first.recorded != second.recorded, "counted twice or never");
    }
}

/// Duplicate idempotency keys raced against SIGKILL, over several rounds on
/// one ledger: every call acknowledged to either of its two senders is there
/// after the restart, and each key is counted once.
#[test]
fn raced_duplicate_calls_survive_sigkill_counted_once() {
    if std::env::var(CHILD_ENV).is_ok() || std::env::var(RACE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let mut next = 0u64;
    for round in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_racer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(RACE_ENV, &path)
            .env("HUBSEARCH_RACE_OFFSET", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        // Kill at a different point each round.
        while acked.len() < 40 + 37 * round {
            let line = lines.next().expect("child ended early").unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.push(n.trim().parse::<u64>().unwrap());
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let ledger = Ledger::open(&path).unwrap();
        let last = *acked.last().unwrap();
        let calls: u64 = ledger
            .earnings(Group::Model)
            .values()
            .map(|e| e.calls)
            .sum();
        // Keys 0..=last were all sent; some after `last` may be stored too.
        assert!(
            calls > last,
            "round {round}: {calls} calls for {} acknowledged keys",
            last + 1
        );
        for i in 0..=last {
            let again = ledger.record_call(call(i)).unwrap();
            assert!(
                !again.recorded,
                "round {round}: acknowledged call {i} was lost"
            );
        }
        let after: u64 = ledger
            .earnings(Group::Model)
            .values()
            .map(|e| e.calls)
            .sum();
        assert_eq!(after, calls, "round {round}: a duplicate was counted");
        ledger.close().unwrap();
        next = calls;
    }
}
