//! `hubsearch verify`: check a hub's call log from outside
//! (docs/transparency.md). Against a hub URL it checks the signed tree
//! head's signature, each receipt's inclusion in it, the consistency of the
//! head with the last one saved, and with `--builder NAME` audits a
//! builder's income: every entry fetched, the tree rebuilt and its root
//! compared with the signed one, the builder's entries summed and compared
//! with the hub's reported totals. `--monitor` repeats the head checks
//! every `--interval` seconds, saving each head it accepts.
//!
//! Exit codes: 0 all verified, 2 a check failed (the log misbehaved, or a
//! receipt is not in it), 1 anything else (the hub cannot be reached, a
//! file cannot be read; a monitor past its first round reports those and
//! goes on).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Args;
use hubsearch_ledger::transparency::{
    hash_from_hex, leaf_hash, verify_consistency, verify_inclusion, ConsistencyProof, Entries,
    Entry, InclusionProof, PublicKey, Receipt, SignedHead, Tree, VerifyingKey, MAX_ENTRIES,
};
use hubsearch_server::percent_encode;
use serde::{Deserialize, Serialize};

use crate::cli::AnyError;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The hub's base URL (plain http)
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub hub: String,
    /// Receipts to check: answers of POST /v1/calls or their `receipt`
    /// objects, as JSON lines or one JSON array
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,
    /// The heads seen so far (created if missing): the current head must be
    /// consistent with the last one, and is added once verified
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The log's public key (base64), pinned: a hub signing with another
    /// key fails
    #[arg(long, value_name = "BASE64")]
    pub key: Option<String>,
    /// Audit this builder: fetch every entry, rebuild the tree, sum the
    /// builder's calls and income and compare with /v1/builders/NAME
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// Keep watching: check a new head every --interval seconds
    #[arg(long)]
    pub monitor: bool,
    /// Seconds between a monitor's checks
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// Stop the monitor after this many checks (0: never)
    #[arg(long, default_value_t = 0)]
    pub rounds: u64,
}

/// What the state file keeps: the log's key and the heads accepted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    ed25519_public_key: Option<String>,
    heads: Vec<SignedHead>,
    /// Heads that failed a check: signed evidence of a misbehaving log.
    #[serde(default)]
    evidence: Vec<serde_json::Value>,
}

/// Heads a state file keeps (the oldest are dropped).
const KEPT_HEADS: usize = 10_000;

/// A check that did not hold.
#[derive(Debug)]
struct Failed(String);

type Checked<T> = Result<T, Failed>;

fn fail<T>(msg: impl Into<String>) -> Checked<T> {
    Err(Failed(msg.into()))
}

/// The hub's transparency API over plain HTTP.
struct Hub {
    base: String,
    agent: ureq::Agent,
}

impl Hub {
    fn new(base: &str) -> Hub {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Hub {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// GET `path`: the status and the body.
    fn get_raw(&self, path: &str) -> Result<(u16, String), AnyError> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| format!("GET {url}: {e}"))?;
        Ok((status, body))
    }

    /// GET `path` as JSON; any status but 200 is an error.
    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, AnyError> {
        let (status, body) = self.get_raw(path)?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {body}").into());
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}").into())
    }
}

/// What one round found.
#[derive(Default)]
struct Round {
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Round {
    fn ok(&mut self, msg: String) {
        self.lines.push(format!("ok: {msg}"));
    }

    fn check(&mut self, r: Checked<String>) {
        match r {
            Ok(msg) => self.ok(msg),
            Err(Failed(msg)) => {
                self.lines.push(format!("FAIL: {msg}"));
                self.failures.push(msg);
            }
        }
    }
}

pub fn run(args: VerifyArgs) -> Result<ExitCode, AnyError> {
    let hub = Hub::new(&args.hub);
    let mut saved = match &args.state {
        Some(p) => read_state(p)?,
        None => Saved::default(),
    };
    let mut n = 0u64;
    loop {
        n += 1;
        let receipts = if n == 1 {
            args.receipts.as_deref()
        } else {
            None
        };
        let failed = match round(&hub, &args, &mut saved, receipts) {
            Ok(failed) => failed,
            // A monitor outlives a hub that is down for a while.
            Err(e) if args.monitor && n > 1 => {
                eprintln!("error: {e} (the monitor goes on)");
                false
            }
            Err(e) => return Err(e),
        };
        if let Some(p) = &args.state {
            write_state(p, &saved)?;
        }
        if failed {
            return Ok(ExitCode::from(2));
        }
        if !args.monitor || (args.rounds > 0 && n >= args.rounds) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(args.interval));
    }
}

/// One round: key, head, consistency with the last saved head, receipts,
/// the builder audit; prints what held and what did not. Whether any
/// check failed.
fn round(
    hub: &Hub,
    args: &VerifyArgs,
    saved: &mut Saved,
    receipts: Option<&Path>,
) -> Result<bool, AnyError> {
    let mut r = Round::default();
    let key: PublicKey = hub.get("/v1/transparency/key")?;
    let pinned = args.key.as_ref().or(saved.ed25519_public_key.as_ref());
    if let Some(p) = pinned.filter(|p| **p != key.ed25519_public_key) {
        r.check(fail(format!(
            "the hub signs with key {}, not the pinned {p}",
            key.ed25519_public_key
        )));
        return Ok(finish(r));
    }
    let vk = key.key().map_err(|e| format!("the hub's key: {e}"))?;
    let head: SignedHead = hub.get("/v1/transparency/sth")?;
    let root = match head.verify(&vk) {
        Ok(root) => root,
        Err(e) => {
            saved
                .evidence
                .push(serde_json::json!({"bad_signature": head}));
            r.check(fail(e));
            return Ok(finish(r));
        }
    };
    r.ok(format!(
        "tree head signed: {} entries, root {}, at {} ms",
        head.tree_size, head.root_hash, head.timestamp_ms
    ));
    if let Some(last) = saved.heads.last().cloned() {
        let c = consistent(hub, &last, &head, &root);
        if c.is_err() {
            saved
                .evidence
                .push(serde_json::json!({"inconsistent": [last, head.clone()]}));
        }
        r.check(c);
    }
    if let Some(path) = receipts {
        for check in check_receipts(hub, path, &head, &root)? {
            r.check(check);
        }
    }
    if let Some(b) = &args.builder {
        r.check(audit_builder(hub, b, &vk, &head, &root)?);
    }
    if r.failures.is_empty() {
        saved.ed25519_public_key = Some(key.ed25519_public_key);
        if saved.heads.last() != Some(&head) {
            saved.heads.push(head);
        }
        let over = saved.heads.len().saturating_sub(KEPT_HEADS);
        saved.heads.drain(..over);
    }
    Ok(finish(r))
}

/// Print a round; whether it failed.
fn finish(r: Round) -> bool {
    for l in &r.lines {
        println!("{l}");
    }
    !r.failures.is_empty()
}

/// The new head extends the last saved one (RFC 9162 2.1.4.2).
fn consistent(hub: &Hub, last: &SignedHead, head: &SignedHead, root: &[u8; 32]) -> Checked<String> {
    let Some(last_root) = hash_from_hex(&last.root_hash) else {
        return fail("the saved head's root is not a hash");
    };
    if head.tree_size < last.tree_size {
        return fail(format!(
            "the log shrank: {} entries, after a signed head of {}",
            head.tree_size, last.tree_size
        ));
    }
    if last.tree_size == 0 {
        return Ok("consistent with the saved head (it was empty)".into());
    }
    if head.tree_size == last.tree_size {
        if &last_root != root {
            return fail(format!(
                "two signed heads of {} entries with different roots",
                head.tree_size
            ));
        }
        return Ok(format!(
            "same tree as the saved head ({} entries)",
            head.tree_size
        ));
    }
    let path = format!(
        "/v1/transparency/consistency?first={}&second={}",
        last.tree_size, head.tree_size
    );
    let proof: ConsistencyProof = match hub.get(&path) {
        Ok(p) => p,
        Err(e) => return fail(format!("no consistency proof: {e}")),
    };
    let Some(hashes) = hashes(&proof.proof) else {
        return fail("the consistency proof holds a value that is not a hash");
    };
    if proof.first != last.tree_size
        || proof.second != head.tree_size
        || !verify_consistency(last.tree_size, head.tree_size, &last_root, root, &hashes)
    {
        return fail(format!(
            "the head of {} entries is NOT consistent with the saved head of {}: the log rewrote its history",
            head.tree_size, last.tree_size
        ));
    }
    Ok(format!(
        "consistent with the saved head: {} -> {} entries",
        last.tree_size, head.tree_size
    ))
}

fn hashes(hex: &[String]) -> Option<Vec<[u8; 32]>> {
    hex.iter().map(|h| hash_from_hex(h)).collect()
}

/// A receipt as the file gives it, with the call's answer if it was one.
#[derive(Deserialize)]
#[serde(untagged)]
enum ReceiptLine {
    Answer {
        model: String,
        builder: String,
        amount_usd: f64,
        receipt: Receipt,
    },
    Bare(Receipt),
}

/// Read a receipts file: JSON lines, or one JSON array.
fn read_receipts(path: &Path) -> Result<Vec<ReceiptLine>, AnyError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()).into());
    }
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        out.push(
            serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Each receipt's entry is in the signed tree.
fn check_receipts(
    hub: &Hub,
    path: &Path,
    head: &SignedHead,
    root: &[u8; 32],
) -> Result<Vec<Checked<String>>, AnyError> {
    let lines = read_receipts(path)?;
    let mut out = Vec::new();
    for line in lines {
        out.push(check_receipt(hub, &line, head, root));
    }
    Ok(out)
}

fn check_receipt(
    hub: &Hub,
    line: &ReceiptLine,
    head: &SignedHead,
    root: &[u8; 32],
) -> Checked<String> {
    let receipt = match line {
        ReceiptLine::Answer { receipt, .. } | ReceiptLine::Bare(receipt) => receipt,
    };
    let i = receipt.leaf_index;
    let Ok(bytes) = B64.decode(&receipt.entry_b64) else {
        return fail(format!("receipt {i}: the entry is not base64"));
    };
    let entry = match Entry::parse(&bytes) {
        Ok(e) => e,
        Err(e) => return fail(format!("receipt {i}: {e}")),
    };
    if entry.leaf_index != i {
        return fail(format!(
            "receipt {i}: its entry says leaf {}",
            entry.leaf_index
        ));
    }
    if let ReceiptLine::Answer {
        model,
        builder,
        amount_usd,
        ..
    } = line
    {
        if (&entry.model, &entry.builder, entry.amount_usd) != (model, builder, *amount_usd) {
            return fail(format!("receipt {i}: the entry is not the call answered"));
        }
    }
    if i >= head.tree_size {
        return fail(format!(
            "receipt {i}: not in the signed head of {} entries",
            head.tree_size
        ));
    }
    let path = format!(
        "/v1/transparency/proof?leaf_index={i}&tree_size={}",
        head.tree_size
    );
    let proof: InclusionProof = match hub.get(&path) {
        Ok(p) => p,
        Err(e) => return fail(format!("receipt {i}: no inclusion proof: {e}")),
    };
    let Some(path) = hashes(&proof.audit_path) else {
        return fail(format!(
            "receipt {i}: the audit path holds a value that is not a hash"
        ));
    };
    if !verify_inclusion(i, head.tree_size, &leaf_hash(&bytes), &path, root) {
        return fail(format!(
            "receipt {i} ({} {} USD): NOT included in the signed tree of {} entries",
            entry.model, entry.amount_usd, head.tree_size
        ));
    }
    Ok(format!(
        "receipt {i} ({} {} USD) is in the signed tree",
        entry.model, entry.amount_usd
    ))
}

/// A builder's calls and income in the log.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sum {
    calls: u64,
    income_usd: f64,
}

/// The builder's figures as the hub reports them (0 when it has none).
fn reported(hub: &Hub, builder: &str) -> Result<Sum, AnyError> {
    let path = format!("/v1/builders/{}", percent_encode(builder));
    let (status, body) = hub.get_raw(&path)?;
    if status == 404 {
        return Ok(Sum::default());
    }
    if status != 200 {
        return Err(format!("GET {path}: {status} {body}").into());
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    Ok(Sum {
        calls: v["calls"].as_u64().unwrap_or(0),
        income_usd: v["income_usd"].as_f64().unwrap_or(0.0),
    })
}

/// The log as an audit has read it so far: the tree of the entries
/// fetched and the builder's sum over them.
struct Audit<'a> {
    hub: &'a Hub,
    builder: &'a str,
    tree: Tree,
    sum: Sum,
}

impl Audit<'_> {
    /// Fetch entries up to `size`, checking each names its own leaf.
    fn read_to(&mut self, size: u64) -> Result<Checked<()>, AnyError> {
        while self.tree.size() < size {
            let start = self.tree.size();
            let end = (start + MAX_ENTRIES).min(size);
            let path = format!("/v1/transparency/entries?start={start}&end={end}");
            let got: Entries = self.hub.get(&path)?;
            if got.entries.len() as u64 != end - start {
                let n = got.entries.len();
                return Ok(fail(format!("entries {start}..{end}: {n} returned")));
            }
            for b64 in &got.entries {
                let i = self.tree.size();
                let Ok(bytes) = B64.decode(b64) else {
                    return Ok(fail(format!("entry {i} is not base64")));
                };
                let entry = match Entry::parse(&bytes) {
                    Ok(e) if e.leaf_index == i => e,
                    Ok(e) => return Ok(fail(format!("entry {i} says leaf {}", e.leaf_index))),
                    Err(e) => return Ok(fail(format!("entry {i}: {e}"))),
                };
                if entry.builder == self.builder {
                    self.sum.calls += 1;
                    self.sum.income_usd += entry.amount_usd;
                }
                self.tree.push(leaf_hash(&bytes));
            }
        }
        Ok(Ok(()))
    }

    /// The entries read hash to `root` at `size`.
    fn check_root(&self, size: u64, root: &[u8; 32]) -> Checked<()> {
        if &self.tree.root(size) != root {
            return fail(format!(
                "the {size} entries the hub serves do NOT hash to its signed root"
            ));
        }
        Ok(())
    }
}

/// Every entry of the signed tree: fetched, checked to hash to the signed
/// root (`head`'s, and each later head's), and the builder's summed, then
/// compared with what the hub reports. The totals are read before and
/// after a head: when they did not move, the head holds every call they
/// count (a call is counted only once its entry is in the tree) and no
/// other of the builder's, so the log's sum must equal them; when calls
/// arrive meanwhile, the audit goes on with a newer head (a few times).
fn audit_builder(
    hub: &Hub,
    builder: &str,
    vk: &VerifyingKey,
    head: &SignedHead,
    root: &[u8; 32],
) -> Result<Checked<String>, AnyError> {
    let mut a = Audit {
        hub,
        builder,
        tree: Tree::new(),
        sum: Sum::default(),
    };
    if let Err(f) = a
        .read_to(head.tree_size)?
        .and_then(|()| a.check_root(head.tree_size, root))
    {
        return Ok(Err(f));
    }
    for _ in 0..5 {
        let before = reported(hub, builder)?;
        let now: SignedHead = hub.get("/v1/transparency/sth")?;
        let now_root = match now.verify(vk) {
            Ok(r) => r,
            Err(e) => return Ok(fail(e)),
        };
        let after = reported(hub, builder)?;
        let read = a.read_to(now.tree_size)?;
        if let Err(f) = read.and_then(|()| a.check_root(now.tree_size, &now_root)) {
            return Ok(Err(f));
        }
        if before != after {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let (s, size) = (a.sum, now.tree_size);
        if before.calls == s.calls && close(before.income_usd, s.income_usd) {
            return Ok(Ok(format!(
                "audit: all {size} entries hash to the signed root; {builder}: {} calls, {:.6} USD in the log = the hub's totals",
                s.calls, s.income_usd
            )));
        }
        return Ok(fail(format!(
            "audit: {builder} has {} calls, {:.6} USD in the signed log of {size} entries but the hub reports {} calls, {:.6} USD",
            s.calls, s.income_usd, before.calls, before.income_usd
        )));
    }
    Err(format!(
        "audit of {builder}: the hub's totals moved on every try (calls are arriving); audit again later"
    )
    .into())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn read_state(path: &Path) -> Result<Saved, AnyError> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", path.display()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

/// Write the state file (a temporary file renamed over it).
fn write_state(path: &Path, saved: &Saved) -> Result<(), AnyError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(saved)?)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}
