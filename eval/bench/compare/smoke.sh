#!/usr/bin/env bash
# CI smoke run of the side-by-side benchmark: the same run.sh and compare.py,
# on a generated hub of 3,000 cards with the `hash` stand-in embedder and
# queries judged from the generator's metadata, against the systems that need
# no server (bm25s, hnswlib); figures go to a temporary directory. It checks
# that the pipeline runs end to end and that every system finds relevant
# cards; the real figures come from run.sh on the real corpus.
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet -p hubsearch ${HUBSEARCH_CARGO_FLAGS:-}
target/release/hubsearch generate --models 3000 --seed 7 -o "$work/hub.jsonl"
printf 'q1\tgerman speech recognition\nq2\tspanish text classification\nq3\tfrench translation\n' > "$work/queries.tsv"
# Judgements from the generator's metadata: task and language both right = 2.
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
want = {"q1": ("automatic-speech-recognition", "de"), "q2": ("text-classification", "es"), "q3": ("translation", "fr")}
with open(f"{work}/qrels.txt", "w") as out:
    for line in open(f"{work}/hub.jsonl"):
        c = json.loads(line)
        for q, (task, lang) in want.items():
            if c.get("task") == task and lang in c.get("languages", []):
                out.write(f"{q} 0 {c['id']} 2\n")
PY
export HUBSEARCH_EMBEDDING__MODEL=hash
CORPUS="$work/hub.jsonl" QUERIES="$work/queries.tsv" QRELS="$work/qrels.txt" \
  SYSTEMS=hubsearch,bm25s,hnswlib CLIENTS=2 SECONDS_EACH=1 REPEAT=2 OUT_DIR="$work" \
  eval/bench/compare/run.sh "$work/index" > "$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
python3 - "$work/compare.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert not r["failed"], r["failed"]
want = {"hubsearch text", "hubsearch hybrid", "hubsearch vector", "bm25s", "hnswlib"}
assert want <= set(r["systems"]), set(r["systems"])
for name, s in r["systems"].items():
    assert s["qps"] > 0 and s["p50_ms"] > 0 and s["build_s"] > 0, (name, s)
for name in ("hubsearch text", "hubsearch hybrid", "bm25s"):
    assert r["systems"][name]["ndcg@10"] > 0.3, (name, r["systems"][name]["ndcg@10"])
print("compare smoke: ok;", ", ".join(f"{n} nDCG@10 {s['ndcg@10']:.2f}" for n, s in r["systems"].items()))
PY
