#!/usr/bin/env python3
"""Side-by-side benchmark: hubsearch against the tools a hub would pick instead.

Run through eval/bench/compare/run.sh, which installs what this needs, builds
hubsearch, exports the indexed cards with their MiniLM vectors and the embedded
dev queries (`hubsearch export`), and starts nothing it does not stop.

Every system gets the same cards (the export), the same MiniLM vectors, the
same query vectors and the same queries; every run is scored by the same code
(`hubsearch eval --score-run`, itself checked against ir_measures). Latency is
one client in a loop, warm; throughput is N client processes for S seconds.
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------- helpers


def log(msg):
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def pct(values, p):
    v = sorted(values)
    return v[int(round((len(v) - 1) * p))]


def id_words(model_id):
    """A model id split into words, as a person would type them."""
    words = re.split(r"[/\-_.\s]+", model_id)
    out = []
    for w in words:
        out.extend(re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", w) or [w])
    return " ".join(x for x in out if x)


def fields(card):
    """The card's text in four weight classes (A most important)."""
    a = " ".join([card["id"], id_words(card["id"]), (card.get("task") or "").replace("-", " ")])
    b = " ".join(
        card.get("tags", [])
        + card.get("languages", [])
        + card.get("datasets", [])
        + card.get("architectures", [])
        + [card.get("library") or ""]
    )
    c = card.get("description", "")
    d = card.get("card_text", "")[:20000]
    # PostgreSQL text cannot hold NUL; a few scraped cards have one.
    return tuple(x.replace("\x00", " ") for x in (a, b, c, d))


def timed_queries(search, queries, repeat, k):
    """Single client, warm: every query once to warm up, then `repeat` passes."""
    for q in queries:
        search(q, k)
    lat = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            search(q, k)
            lat.append((time.perf_counter() - t) * 1e3)
    return {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "searches": len(lat)}


def client(spec):
    """A search function `(query, k) -> ids` for a system, built from a plain
    (picklable) spec: the same code serves the scoring run, the latency loop
    and every throughput worker process."""
    system = spec["system"]
    if system == "postgres":
        import psycopg

        conn = psycopg.connect(spec["dsn"], autocommit=True)
        conn.prepare_threshold = 0
        sql = spec["sql"]
        return lambda q, k: [r[0] for r in conn.execute(sql, {"q": q, "k": k}).fetchall()]
    if system == "lancedb":
        import lancedb
        from lancedb.rerankers import RRFReranker

        tbl = lancedb.connect(spec["path"]).open_table("cards")
        rrf, kind, vec_of = RRFReranker(), spec["kind"], spec["query_vectors"]

        def search(q, k):
            if kind == "fts":
                r = tbl.search(q, query_type="fts")
            elif kind == "vector":
                r = tbl.search(vec_of[q], query_type="vector")
            else:
                r = tbl.search(query_type="hybrid").vector(vec_of[q]).text(q).rerank(rrf)
            return r.limit(k).select(["id"]).to_arrow()["id"].to_pylist()

        return search
    if system == "bm25s":
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        retriever = bm25s.BM25.load(spec["path"])
        ids = json.loads(Path(spec["ids"]).read_text())

        def search(q, k):
            qt = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
            docs, _ = retriever.retrieve(qt, k=k, show_progress=False, n_threads=1)
            return [ids[d] for d in docs[0]]

        return search
    if system == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=spec["dim"])
        index.load_index(spec["path"])
        index.set_ef(spec["ef"])
        ids = json.loads(Path(spec["ids"]).read_text())
        vec_of = {q: np.asarray([v], dtype=np.float32) for q, v in spec["query_vectors"].items()}

        def search(q, k):
            labels, _ = index.knn_query(vec_of[q], k=k, num_threads=1)
            return [ids[d] for d in labels[0]]

        return search
    raise ValueError(f"unknown system {system}")


def _throughput_worker(args):
    spec, queries, offset, clients, seconds, k = args
    search = client(spec)
    search(queries[offset % len(queries)], k)  # connect / load before the clock
    n, i = 0, offset
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        search(queries[i % len(queries)], k)
        i += clients
        n += 1
    return n


def throughput(spec, queries, clients, seconds, k):
    """`clients` processes (no shared interpreter lock), each with its own
    client, searching round-robin for `seconds`. Spawned, not forked: LanceDB's
    runtime threads do not survive a fork."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(clients) as pool:
        counts = pool.map(
            _throughput_worker,
            [(spec, queries, c, clients, seconds, k) for c in range(clients)],
        )
    return sum(counts) / seconds


def measure(name, spec, a, data, scorer, extra):
    """nDCG of the top 100, single-client latency and throughput of one system."""
    search = client(spec)
    results = [search(q, 100) for q in data["queries"]]
    m = scorer.score(name.replace(" ", "-").replace("(", "").replace(")", ""), data["qids"], results)
    log(f"{name}: nDCG@10 {m['ndcg@10']:.4f}; timing")
    lat = timed_queries(search, data["queries"], a.repeat, 10)
    qps = throughput(spec, data["queries"], a.clients, a.seconds, 10)
    log(f"{name}: p50 {lat['p50_ms']:.3f} ms, {qps:.0f} searches/s")
    return {**m, **lat, "qps": qps, **extra}


class Scorer:
    """Scores TREC runs with `hubsearch eval --score-run` (one scorer for all)."""

    def __init__(self, hubsearch, queries_file, qrels, workdir):
        self.hubsearch, self.queries_file, self.qrels = hubsearch, queries_file, qrels
        self.workdir = Path(workdir)

    def score(self, name, qids, results):
        """Write `results` (ids best first, per query) as a run and score it."""
        run = self.workdir / f"run-{name}.txt"
        with open(run, "w") as f:
            for qid, ids in zip(qids, results):
                for rank, doc in enumerate(ids[:100]):
                    f.write(f"{qid} Q0 {doc} {rank + 1} {100 - rank} {name}\n")
        return self.score_file(name, run)

    def score_file(self, name, run):
        """nDCG@10, nDCG@100, Recall@100 of a TREC run file."""
        out = self.workdir / f"score-{name}.json"
        subprocess.run(
            [
                self.hubsearch, "eval", "--queries", self.queries_file, "--qrels", self.qrels,
                "--score-run", str(run), "--json", str(out),
            ],
            check=True, stdout=subprocess.DEVNULL,
        )
        means = json.loads(out.read_text())["means"]
        return {k: means[k] for k in ("ndcg@10", "ndcg@100", "recall@100")}


# ---------------------------------------------------------------- systems


def run_hubsearch(a, data, scorer, work):
    """Build from the real corpus (vectors reused, so no embedding), score the
    text, hybrid and vector modes, and measure with `hubsearch bench --existing`."""
    out = {}
    idx = Path(work) / "hubsearch-index"
    (idx / "vectors").mkdir(parents=True)
    shutil.copy(Path(a.index) / "vectors" / "vectors.bin", idx / "vectors" / "vectors.bin")
    log("hubsearch: building the index from the corpus (card vectors reused: no embedding)")
    t = time.perf_counter()
    subprocess.run(
        [a.hubsearch, "--index", str(idx), "import", "--quiet", a.corpus],
        check=True, stdout=subprocess.DEVNULL,
    )
    build = time.perf_counter() - t
    size = dir_bytes(idx / "text") + dir_bytes(idx / "vectors")
    bench_json = Path(work) / "hubsearch-bench.json"
    log("hubsearch: latency and throughput (hubsearch bench --existing)")
    subprocess.run(
        [
            a.hubsearch, "--index", str(idx), "bench", "--existing", "--queries", data["queries_file"],
            "--repeat", str(a.repeat), "--clients", str(a.clients), "--seconds", str(a.seconds),
            "--json", str(bench_json),
        ],
        check=True, stdout=subprocess.DEVNULL,
    )
    bench = json.loads(bench_json.read_text())
    for mode in ["text", "hybrid", "vector"]:
        # `--run-out PREFIX` writes PREFIX.<policy>.run.
        prefix = Path(work) / f"run-hubsearch-{mode}"
        run = Path(f"{prefix}.relevance.run")
        subprocess.run(
            [
                a.hubsearch, "--index", str(idx), "eval", "--queries", data["queries_file"],
                "--qrels", a.qrels, "--mode", mode, "--policy", "relevance",
                "--run-out", str(prefix),
            ],
            check=True, stdout=subprocess.DEVNULL,
        )
        m = scorer.score_file(f"hubsearch-{mode}", run)
        s = bench[f"{mode}_search"]
        out[f"hubsearch {mode}"] = {
            **m,
            "build_s": build,
            "index_bytes": size,
            "p50_ms": s["p50_ms"],
            "p99_ms": s["p99_ms"],
            "qps": s["throughput_qps"],
            "notes": "engine-side, in-process (Rust); query vectors precomputed",
        }
    out["_hubsearch_bench"] = bench
    return out


def find_pg_bin():
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists():
            return base
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_postgres(a, data, scorer, work):
    import psycopg

    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise SystemExit("PostgreSQL not found under /usr/lib/postgresql (run.sh installs it)")
    pgdata = Path(tempfile.mkdtemp(prefix="hubsearch-pg-"))
    port = free_port()
    as_user = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as `postgres`
        shutil.chown(pgdata, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    log(f"postgres: initdb and start in {pgdata} on port {port}")
    subprocess.run(
        as_user + [str(pg_bin / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres"],
        check=True, stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        as_user + [
            str(pg_bin / "pg_ctl"), "-D", str(pgdata), "-w", "-l", str(pgdata / "server.log"),
            "-o", f"-p {port} -k {pgdata} -c listen_addresses=127.0.0.1 -c shared_buffers=512MB "
            f"-c max_connections=64 -c fsync=off -c synchronous_commit=off -c jit=off",
            "start",
        ],
        check=True, stdout=subprocess.DEVNULL,
    )
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    out = {}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            t = time.perf_counter()
            conn.execute(
                "CREATE TABLE cards (id text PRIMARY KEY, a text, b text, c text, d text)"
            )
            with conn.cursor().copy("COPY cards (id, a, b, c, d) FROM STDIN") as cp:
                for card in data["cards"]:
                    cp.write_row((card["id"],) + fields(card))
            conn.execute(
                "ALTER TABLE cards ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
                " setweight(to_tsvector('english', a), 'A') ||"
                " setweight(to_tsvector('english', b), 'B') ||"
                " setweight(to_tsvector('english', c), 'C') ||"
                " setweight(to_tsvector('english', d), 'D')) STORED"
            )
            conn.execute("CREATE INDEX cards_tsv ON cards USING GIN (tsv)")
            conn.execute("VACUUM ANALYZE cards")
            build = time.perf_counter() - t
            size = conn.execute("SELECT pg_total_relation_size('cards')").fetchone()[0]
        variants = {
            # All words required (what websearch_to_tsquery does).
            "and": "websearch_to_tsquery('english', %(q)s)",
            # Any word (BM25-like recall), ranked by ts_rank_cd: the stemmed
            # lexemes of plainto_tsquery joined with | ('simple' re-parses
            # them without stemming twice).
            "or": "to_tsquery('simple', replace(plainto_tsquery('english', %(q)s)::text, '&', '|'))",
        }
        for name, tsq in variants.items():
            sql = (
                f"SELECT id FROM cards, {tsq} q WHERE tsv @@ q "
                "ORDER BY ts_rank_cd(tsv, q) DESC, id LIMIT %(k)s"
            )
            spec = {"system": "postgres", "dsn": dsn, "sql": sql}
            out[f"postgres fts ({name})"] = measure(
                f"postgres fts ({name})", spec, a, data, scorer,
                {
                    "build_s": build, "index_bytes": size,
                    "notes": f"PostgreSQL {pg_version(pg_bin)}; setweight A-D, GIN, ts_rank_cd; "
                    "client over loopback (psycopg, prepared)",
                },
            )
    finally:
        subprocess.run(
            as_user + [str(pg_bin / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(pgdata, ignore_errors=True)
    return out


def pg_version(pg_bin):
    try:
        out = subprocess.run(
            [str(pg_bin / "postgres"), "--version"], capture_output=True, text=True
        ).stdout
    except OSError:
        return "?"
    m = re.search(r"\d+(\.\d+)+", out)
    return m.group(0) if m else "?"


def run_lancedb(a, data, scorer, work):
    import lancedb
    import pyarrow as pa

    path = Path(work) / "lancedb"
    vec = data["vectors"]
    texts = [" ".join(fields(c)) for c in data["cards"]]
    log("lancedb: table, native FTS index, IVF_HNSW_SQ vector index")
    t = time.perf_counter()
    db = lancedb.connect(str(path))
    table = db.create_table(
        "cards",
        pa.table(
            {
                "id": [c["id"] for c in data["cards"]],
                "text": texts,
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), vec.shape[1]),
            }
        ),
    )
    from lancedb.index import FTS, HnswSq

    table.create_index("text", config=FTS(with_position=False))
    table.create_index("vector", config=HnswSq(distance_type="cosine"))
    build = time.perf_counter() - t
    size = dir_bytes(path)
    vec_of = {q: data["query_vectors"][i].tolist() for i, q in enumerate(data["queries"])}
    out = {}
    for kind in ["fts", "vector", "hybrid"]:
        spec = {"system": "lancedb", "path": str(path), "kind": kind, "query_vectors": vec_of}
        out[f"lancedb {kind}"] = measure(
            f"lancedb {kind}", spec, a, data, scorer,
            {
                "build_s": build, "index_bytes": size,
                "notes": f"lancedb {lancedb.__version__}, embedded, in-process (Python)"
                + ("; RRF reranker" if kind == "hybrid" else ""),
            },
        )
    return out


def run_bm25s(a, data, scorer, work):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    texts = [" ".join(fields(c)) for c in data["cards"]]
    ids = [c["id"] for c in data["cards"]]
    log("bm25s: tokenise and index")
    t = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    build = time.perf_counter() - t
    save = Path(work) / "bm25s"
    retriever.save(str(save))
    ids_file = Path(work) / "ids.json"
    ids_file.write_text(json.dumps(ids))
    spec = {"system": "bm25s", "path": str(save), "ids": str(ids_file)}
    return {
        "bm25s": measure(
            "bm25s", spec, a, data, scorer,
            {
                "build_s": build, "index_bytes": dir_bytes(save),
                "notes": f"bm25s {bm25s.__version__}, English stemmer + stopwords, one text field, in-process (Python)",
            },
        )
    }


def run_hnswlib(a, data, scorer, work):
    import hnswlib

    vec, qv = data["vectors"], data["query_vectors"]
    ids = [c["id"] for c in data["cards"]]
    log("hnswlib: build (M 16, ef_construction 100, as hubsearch)")
    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=vec.shape[1])
    index.init_index(max_elements=len(vec), ef_construction=100, M=16, random_seed=1)
    index.add_items(vec, np.arange(len(vec)), num_threads=os.cpu_count())
    build = time.perf_counter() - t
    index.set_ef(128)
    save = Path(work) / "hnswlib.bin"
    index.save_index(str(save))
    exact = np.argsort(-(qv @ vec.T), axis=1)[:, :10]
    found = 0
    for i in range(len(qv)):
        labels, _ = index.knn_query(qv[i : i + 1], k=10, num_threads=1)
        found += len(set(labels[0]) & set(exact[i]))
    recall = found / exact.size
    ids_file = Path(work) / "ids.json"
    ids_file.write_text(json.dumps(ids))
    spec = {
        "system": "hnswlib", "path": str(save), "ids": str(ids_file), "dim": vec.shape[1], "ef": 128,
        "query_vectors": {q: qv[i].tolist() for i, q in enumerate(data["queries"])},
    }
    return {
        "hnswlib": measure(
            "hnswlib", spec, a, data, scorer,
            {
                "build_s": build, "index_bytes": save.stat().st_size, "recall@10_vs_exact": recall,
                "notes": "hnswlib, vectors only (M 16, ef_construction 100, ef 128), in-process (Python)",
            },
        )
    }


# ---------------------------------------------------------------- report


def machine():
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_bytes": mem, "cpu": cpu, "os": platform.platform()}


# Which hubsearch mode each system is compared with: the same kind of search.
KIND = {
    "postgres fts (and)": "hubsearch text",
    "postgres fts (or)": "hubsearch text",
    "lancedb fts": "hubsearch text",
    "bm25s": "hubsearch text",
    "lancedb vector": "hubsearch vector",
    "hnswlib": "hubsearch vector",
    "lancedb hybrid": "hubsearch hybrid",
}


def markdown(report):
    rows = report["systems"]
    m = report["machine"]
    lines = [
        "# hubsearch side by side",
        "",
        f"Machine: {m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, {m['cpu']}. "
        f"Corpus: {report['cards']:,} cards ({report['corpus']}), their all-MiniLM-L6-v2 vectors from "
        f"hubsearch; {report['queries']} judged dev queries, query vectors precomputed for every system. "
        f"Latency: one client, warm, {report['repeat']} passes, top 10. Throughput: "
        f"{report['clients']} concurrent clients for {report['seconds']:.0f} s (processes for the Python "
        "systems, threads in one process for hubsearch). "
        f"Written by `eval/bench/compare/run.sh` on {report['date']} (git {report['git']}).",
        "",
        "Ratios compare each system with hubsearch doing the same kind of search "
        "(text with full-text systems, vector with vector ones, hybrid with hybrid): "
        "throughput = hubsearch's searches/s ÷ the system's; nDCG@10 = hubsearch's minus the system's.",
        "",
        "| system | nDCG@10 | nDCG@100 | build s | index MiB | p50 ms | p99 ms | searches/s | compared with | throughput ratio | nDCG@10 Δ | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        ref_name = KIND.get(name)
        ref = rows.get(ref_name) if ref_name else None
        ratio = f"{ref['qps'] / r['qps']:.1f}x" if ref and r.get("qps") else "-"
        delta = f"{ref['ndcg@10'] - r['ndcg@10']:+.3f}" if ref else "-"
        lines.append(
            f"| {name} | {r['ndcg@10']:.4f} | {r['ndcg@100']:.4f} | {r['build_s']:.1f} | "
            f"{r['index_bytes'] / 2**20:.1f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
            f"{r['qps']:.0f} | {ref_name or '-'} | {ratio} | {delta} | {r['notes']} |"
        )
    bench = report.get("_hubsearch_bench") or {}
    if "hnswlib" in rows and bench.get("hnsw_top10"):
        h = bench["hnsw_top10"]
        lines += [
            "",
            "HNSW alone (top 10, same vectors, M 16, ef_construction 100, ef 128; hubsearch timed in Rust, "
            f"hnswlib from Python): hubsearch (its own HNSW) p50 {h['p50_ms']:.3f} ms, recall@10 "
            f"{h['recall_at_10']:.3f}; hnswlib p50 {rows['hnswlib']['p50_ms']:.3f} ms, "
            f"recall@10 {rows['hnswlib']['recall@10_vs_exact']:.3f}.",
        ]
    if bench:
        q = bench.get("hybrid_search", {}).get("embedding_query")
        if q:
            lines += [
                "",
                f"hubsearch hybrid embedding the query itself (MiniLM in the configured runtime, ONNX Runtime by default; uncached): "
                f"p50 {q['p50_ms']:.2f} ms, p99 {q['p99_ms']:.2f} ms.",
            ]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--hubsearch", required=True, help="the hubsearch binary (release build)")
    p.add_argument("--index", required=True, help="a hubsearch index of the corpus with MiniLM vectors")
    p.add_argument("--corpus", required=True, help="the card file the index was built from")
    p.add_argument("--export", required=True, help="output of `hubsearch export --queries`")
    p.add_argument("--qrels", required=True)
    p.add_argument("--systems", default="hubsearch,postgres,lancedb,bm25s,hnswlib")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--clients", type=int, default=os.cpu_count() * 2)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--json", required=True)
    p.add_argument("--markdown", required=True)
    a = p.parse_args()

    exp = Path(a.export)
    manifest = json.loads((exp / "manifest.json").read_text())
    cards = [json.loads(l) for l in open(exp / "cards.jsonl")]
    dim = manifest["dim"]
    vectors = np.fromfile(exp / "vectors.f32", dtype="<f4").reshape(len(cards), dim)
    qlines = [l.split("\t", 1) for l in (exp / "queries.tsv").read_text().splitlines() if "\t" in l]
    data = {
        "cards": cards,
        "vectors": vectors,
        "qids": [q[0] for q in qlines],
        "queries": [q[1] for q in qlines],
        "query_vectors": np.fromfile(exp / "query_vectors.f32", dtype="<f4").reshape(len(qlines), dim),
        "queries_file": str(exp / "queries.tsv"),
    }
    work = tempfile.mkdtemp(prefix="hubsearch-compare-")
    scorer = Scorer(a.hubsearch, data["queries_file"], a.qrels, work)
    runners = {
        "hubsearch": run_hubsearch,
        "postgres": run_postgres,
        "lancedb": run_lancedb,
        "bm25s": run_bm25s,
        "hnswlib": run_hnswlib,
    }
    systems, failed = {}, []
    try:
        for name in a.systems.split(","):
            try:
                systems.update(runners[name](a, data, scorer, work))
            except Exception as e:  # report it, go on with the others, fail at the end
                log(f"{name} failed: {e!r}")
                failed.append(name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench = systems.pop("_hubsearch_bench", None)
    git = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "git": git,
        "machine": machine(),
        "corpus": a.corpus,
        "cards": len(cards),
        "queries": len(data["queries"]),
        "repeat": a.repeat,
        "clients": a.clients,
        "seconds": a.seconds,
        "systems": systems,
        "failed": failed,
    }
    if bench:
        report["_hubsearch_bench"] = bench
    Path(a.json).write_text(json.dumps(report, indent=2))
    Path(a.markdown).write_text(markdown(report))
    log(f"wrote {a.json} and {a.markdown}")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
