//! The fingerprint of the code a study run's outcome depends on, for the
//! run cache (`src/market/cache.rs`, docs/study.md, The run cache): FNV-1a
//! (128 bits) over every file under `src/` but those that only orchestrate
//! the study or write its report (`EXCLUDED`: a changed report is rendered
//! again from cached runs), over the one `hubsearch-rank` file the figures
//! use (Gini, Lorenz, top shares), and over the `Cargo.lock` entries of the
//! random-number crates (and the LP solver) this crate draws its worlds
//! with and solves the upper bound with.
//! Exported as `HUBSEARCH_SIM_SOURCE`.

use std::path::{Path, PathBuf};

/// Files under `src/` that cannot change a run's outcome or the upper
/// bound: the design and its orchestration (every run's inputs are in its
/// key), the statistics over outcomes, the report and its plots, and the
/// other simulations.
const EXCLUDED: &[&str] = &[
    "lib.rs",
    "market/study",
    "market/sensitivity.rs",
    "market/stats.rs",
    "market/report.rs",
    "market/answer.rs",
    "market/plots.rs",
    "svg.rs",
    "synth.rs",
    "longrun.rs",
    "fairco",
];

/// Other files the outcome depends on, from the crate's directory.
const OTHERS: &[&str] = &["../rank/src/concentration.rs"];

/// `Cargo.lock` packages whose versions decide the draws and the LP.
const LOCKED: &[&str] = &["rand", "rand_core", "rand_chacha", "rand_distr", "microlp"];

struct Fnv(u128);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u128;
            self.0 = self
                .0
                .wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
        // A field separator: no two sequences of fields hash alike by
        // moving bytes from one field to the next.
        self.0 ^= bytes.len() as u128;
        self.0 = self
            .0
            .wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// One `[[package]]` of `Cargo.lock`: name, version, dependencies (each
/// `name` or `name version`), its text.
struct Package<'a> {
    name: &'a str,
    version: &'a str,
    deps: Vec<&'a str>,
    text: &'a str,
}

/// The value of a `key = "value"` line.
fn value(l: &str) -> &str {
    l.split_once('=')
        .map_or("", |(_, v)| v.trim().trim_matches('"'))
}

fn packages(lock: &str) -> Vec<Package<'_>> {
    lock.split("[[package]]")
        .skip(1)
        .map(|text| {
            let text = text.trim();
            let mut p = Package {
                name: "",
                version: "",
                deps: Vec::new(),
                text,
            };
            let mut in_deps = false;
            for l in text.lines() {
                let l = l.trim();
                if l.starts_with("name = ") {
                    p.name = value(l);
                } else if l.starts_with("version = ") {
                    p.version = value(l);
                } else if l.starts_with("dependencies = [") {
                    in_deps = true;
                } else if in_deps {
                    if l.starts_with(']') {
                        in_deps = false;
                    } else {
                        p.deps.push(l.trim_end_matches(',').trim_matches('"'));
                    }
                }
            }
            p
        })
        .collect()
}

/// The texts of the `LOCKED` packages this crate depends on, directly or
/// through one another (a new version some other crate brings in is not
/// one of them).
fn locked_blocks(lock: &str) -> Vec<&str> {
    let pkgs = packages(lock);
    let find = |dep: &str| -> Option<usize> {
        let (name, version) = dep.split_once(' ').unwrap_or((dep, ""));
        pkgs.iter()
            .position(|p| p.name == name && (version.is_empty() || p.version == version))
    };
    let mut todo: Vec<usize> = pkgs
        .iter()
        .filter(|p| p.name == "hubsearch-sim")
        .flat_map(|p| p.deps.iter().filter_map(|d| find(d)))
        .collect();
    let mut seen = vec![false; pkgs.len()];
    while let Some(i) = todo.pop() {
        if seen[i] || !LOCKED.contains(&pkgs[i].name) {
            continue;
        }
        seen[i] = true;
        todo.extend(pkgs[i].deps.iter().filter_map(|d| find(d)));
    }
    (0..pkgs.len())
        .filter(|&i| seen[i])
        .map(|i| pkgs[i].text)
        .collect()
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let src = root.join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut hashed: Vec<(String, PathBuf)> = all
        .into_iter()
        .filter_map(|p| {
            let rel = p
                .strip_prefix(&src)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            let excluded = EXCLUDED
                .iter()
                .any(|x| rel == *x || rel.starts_with(&format!("{x}/")));
            (!excluded && rel.ends_with(".rs")).then_some((rel, p))
        })
        .collect();
    for o in OTHERS {
        hashed.push((o.to_string(), root.join(o)));
    }
    hashed.sort();
    let mut h = Fnv(0x6C62_272E_07BB_0142_62B8_2175_6295_C58D);
    for (rel, p) in &hashed {
        h.write(rel.as_bytes());
        h.write(&std::fs::read(p).unwrap_or_default());
    }
    // The locked versions (and checksums) of the random-number crates this
    // crate uses (directly, or through one another).
    let lock = root.join("../../Cargo.lock");
    if let Ok(text) = std::fs::read_to_string(&lock) {
        for block in locked_blocks(&text) {
            h.write(block.as_bytes());
        }
    }
    h.write(std::env::var("TARGET").unwrap_or_default().as_bytes());
    println!("cargo:rustc-env=HUBSEARCH_SIM_SOURCE={:032x}", h.0);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");
    for o in OTHERS {
        println!("cargo:rerun-if-changed={o}");
    }
    println!("cargo:rerun-if-changed={}", lock.display());
}
