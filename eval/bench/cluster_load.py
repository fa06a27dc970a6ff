#!/usr/bin/env python3
"""Cluster figures (docs/cluster.md), against running replicas.

- publish -> searchable: POST a card on the first replica, poll the last one
  until GET /v1/models/{id} answers 200; p50/p99 over --publishes cards;
- searches per second with --clients concurrent clients, sent to one
  replica, then spread over all of them (each search recorded: policy fair);
- staleness: each replica's page delay (send -> applied here) p50/p99 and
  its lag, from GET /v1/cluster after the load.

Standard library only. Prints JSON.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.error
import urllib.request

QUERIES = [
    "translation english german", "sentiment analysis", "speech recognition",
    "question answering", "summarization", "text generation", "fill mask bert",
    "named entity recognition", "image classification", "token classification",
]


def req(url, method="GET", body=None, key=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method)
    r.add_header("Content-Type", "application/json")
    if key:
        r.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] if xs else float("nan")


def publish_latency(replicas, key, n):
    first, last = replicas[0], replicas[-1]
    out = []
    stamp = int(time.time())
    for i in range(n):
        mid = f"benchco/cluster-bench-{stamp}-{i}"
        card = {"id": mid, "task": "summarization", "description": f"Bench card {i} for replication latency."}
        t0 = time.perf_counter()
        s, b = req(f"{first}/v1/models", "POST", card, key)
        if s not in (200, 201):
            raise SystemExit(f"publish failed: {s} {b[:200]}")
        while True:
            s, _ = req(f"{last}/v1/models/{mid}")
            if s == 200:
                break
            time.sleep(0.001)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def load(targets, clients, seconds):
    done = [0] * clients
    lat = [[] for _ in range(clients)]
    stop = time.perf_counter() + seconds

    def worker(c):
        i = c
        while time.perf_counter() < stop:
            base = targets[i % len(targets)]
            q = QUERIES[i % len(QUERIES)].replace(" ", "+")
            t0 = time.perf_counter()
            s, _ = req(f"{base}/v1/search?q={q}&policy=fair")
            lat[c].append((time.perf_counter() - t0) * 1000.0)
            if s == 200:
                done[c] += 1
            i += clients

    ts = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    all_lat = [x for l in lat for x in l]
    return {
        "searches_per_s": sum(done) / seconds,
        "p50_ms": pct(all_lat, 0.5),
        "p99_ms": pct(all_lat, 0.99),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", nargs="+", required=True, help="base URLs")
    ap.add_argument("--single", help="base URL of a single node (cluster mode off) on the same index")
    ap.add_argument("--key", required=True, help="an admin API key")
    ap.add_argument("--publishes", type=int, default=50)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    pub = publish_latency(a.replicas, a.key, a.publishes)
    out = {
        "publish_to_searchable_ms": {"p50": pct(pub, 0.5), "p99": pct(pub, 0.99), "n": len(pub)},
        "load_one_replica": load(a.replicas[:1], a.clients, a.seconds),
        "load_all_replicas": load(a.replicas, a.clients, a.seconds),
    }
    if a.single:
        out["load_single_node"] = load([a.single], a.clients, a.seconds)
    time.sleep(2)
    out["replicas"] = [json.loads(req(f"{r}/v1/cluster")[1])["cluster"] for r in a.replicas]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
