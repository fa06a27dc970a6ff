#!/usr/bin/env bash
# Cluster figures (docs/cluster.md): a generated hub of $CARDS cards (hash
# stand-in vectors unless HUBSEARCH_EMBEDDING__MODEL says otherwise), 3 NATS
# servers + 3 replicas on loopback (scripts/cluster), and a single node on
# a copy of the same index; then eval/bench/cluster_load.py. Writes the
# JSON to $OUT (default eval/bench/cluster.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
CARDS="${CARDS:-10000}"
OUT="${OUT:-eval/bench/cluster.json}"
export HUBSEARCH_EMBEDDING__MODEL="${HUBSEARCH_EMBEDDING__MODEL:-hash}"
work=$(mktemp -d)
bin=target/release/hubsearch
cargo build --release --quiet -p hubsearch --features cluster ${HUBSEARCH_CARGO_FLAGS:-}
"$bin" generate --models "$CARDS" --seed 7 --out "$work/hub.jsonl" >/dev/null 2>&1
"$bin" --index "$work/seed" import --quiet "$work/hub.jsonl" >/dev/null
key=$("$bin" --index "$work/seed" keys create --admin 2>/dev/null)
cp -r "$work/seed" "$work/single"
export CLUSTER_DIR="$work/cluster"
trap 'CLUSTER_DIR="$work/cluster" scripts/cluster down >/dev/null 2>&1 || true; kill $single_pid 2>/dev/null || true' EXIT
HUBSEARCH_INDEX="$work/seed" scripts/cluster up 3
"$bin" --index "$work/single" serve --addr 127.0.0.1:8090 >"$work/single.log" 2>&1 &
single_pid=$!
for _ in $(seq 1 300); do curl -fsS http://127.0.0.1:8090/readyz >/dev/null 2>&1 && break; sleep 0.2; done
python3 eval/bench/cluster_load.py --key "$key" \
  --replicas http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 \
  --single http://127.0.0.1:8090 | tee "$OUT"
echo "machine: $(nproc) cores" >&2
