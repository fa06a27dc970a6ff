#!/usr/bin/env python3
"""Collects the per-size figures of eval/bench/scale.sh into one JSON file and
a Markdown table (standard library only)."""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

GOALS = {
    "hybrid_p50_ms_at_30k": 2.0,
    "hybrid_p99_ms_at_1m": 25.0,
    "build_s_100k_excluding_embedding": 30.0,
    "memory_bytes_per_card_beyond_vectors": 2.5 * 1024,
}


def machine():
    mem = cpu = None
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cores": os.cpu_count(), "memory_bytes": mem, "cpu": cpu}


def row(work, n):
    build = json.loads((work / f"build-{n}.json").read_text())
    peak_kb, wall = (work / f"build-{n}.time").read_text().split()[:2]
    bench = json.loads((work / f"bench-{n}.json").read_text())
    v = build.get("vectors") or {}
    cards = bench["cards"]
    vector_floats = bench.get("dim", 0) * 4
    build_ex_embedding = build["seconds"] + v.get("read_seconds", 0) + v.get("graph_seconds", 0)
    serving = bench["peak_rss_bytes"]
    return {
        "cards": cards,
        "build": {
            "wall_s": float(wall),
            "text_s": build["seconds"],
            "vectors_read_s": v.get("read_seconds"),
            "embedding_s": v.get("embed_seconds"),
            "graph_s": v.get("graph_seconds"),
            "excluding_embedding_s": build_ex_embedding,
            "peak_rss_bytes": int(peak_kb) * 1024,
        },
        "disk": {
            "text_bytes": bench["text_index_bytes"],
            "vector_bytes": bench.get("vector_bytes", 0),
            "bytes_per_card": (bench["text_index_bytes"] + bench.get("vector_bytes", 0)) / cards,
        },
        "serving": {
            "start_up_ms": bench["start_up_ms"],
            "peak_rss_bytes": serving,
            "bytes_per_card": serving / cards,
            "bytes_per_card_beyond_vectors": serving / cards - vector_floats,
        },
        "search": {k: bench[k] for k in ("text_search", "vector_search", "hybrid_search") if k in bench},
        "hnsw_top10": bench.get("hnsw_top10"),
        "embedder": bench.get("embedder"),
    }


def markdown(report):
    m = report["machine"]
    out = [
        "# hubsearch scale curve",
        "",
        f"Machine: {m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, {m['cpu']}. "
        f"Generated hubs (`hubsearch generate --seed 42`), vectors from the `{report['rows'][0]['embedder']}` "
        "stand-in embedder (384 dimensions, like MiniLM; same HNSW and search work). "
        f"Written by `eval/bench/scale.sh` on {report['date']} (git {report['git']}).",
        "",
        "| cards | build wall s | text index s | HNSW graph s | build excl. embedding s | build peak RSS MiB | disk B/card | serving peak RSS B/card | of it beyond the 1536 B vector | start-up s | hybrid p50 ms | hybrid p99 ms | hybrid searches/s | text p50 / p99 ms | vector p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        b, d, s, q = r["build"], r["disk"], r["serving"], r["search"]
        h, t, v = q["hybrid_search"], q["text_search"], q["vector_search"]
        out.append(
            f"| {r['cards']:,} | {b['wall_s']:.1f} | {b['text_s']:.1f} | {b['graph_s']:.1f} | "
            f"{b['excluding_embedding_s']:.1f} | {b['peak_rss_bytes'] / 2**20:.0f} | {d['bytes_per_card']:.0f} | "
            f"{s['bytes_per_card']:.0f} | {s['bytes_per_card_beyond_vectors']:.0f} | {s['start_up_ms'] / 1e3:.1f} | "
            f"{h['p50_ms']:.2f} | {h['p99_ms']:.2f} | {h['throughput_qps']:.0f} | "
            f"{t['p50_ms']:.2f} / {t['p99_ms']:.2f} | {v['p50_ms']:.2f} / {v['p99_ms']:.2f} |"
        )
    out += [
        "",
        f"Throughput: {report['rows'][0]['search']['hybrid_search'].get('clients')} concurrent clients in-process, "
        "query vectors cached. Latency: one client, warm, the built-in query set.",
    ]
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("work")
    p.add_argument("sizes", nargs="+")
    p.add_argument("--json", required=True)
    p.add_argument("--markdown", required=True)
    a = p.parse_args()
    work = Path(a.work)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "git": git,
        "machine": machine(),
        "goals": GOALS,
        "rows": [row(work, n) for n in a.sizes],
    }
    Path(a.json).write_text(json.dumps(report, indent=2))
    Path(a.markdown).write_text(markdown(report))


if __name__ == "__main__":
    main()
