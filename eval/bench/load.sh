#!/usr/bin/env bash
# Load benchmark of the release server with wrk (Debian package) on loopback:
# hybrid search with the query vector cached (the dev queries, rotated), at
# 1, 8 and 64 connections, then an overload run at 256 connections with a
# short queue timeout, which must answer 503 (shed) rather than time out.
#   eval/bench/load.sh INDEX_DIR   (an index built from the real corpus)
# MODE=text|vector|hybrid (default hybrid), DURATION=seconds per run,
# HUBSEARCH_BIN=another binary (eval/bench/serve.sh).
# FRESH=1: every request's query is new (a made-up word appended), so every
# search embeds its query; CONNS sets the connection counts (default
# "1 8 64 256"; with FRESH=1 "1 4 16").
set -euo pipefail
cd "$(dirname "$0")/../.."
index=${1:?usage: eval/bench/load.sh INDEX_DIR}
MODE=${MODE:-hybrid} SERVE_ENV="HUBSEARCH_SERVER__QUEUE_TIMEOUT_MS=${QUEUE_TIMEOUT_MS:-100}"
. eval/bench/serve.sh
serve_index "$index"
echo "machine: $(nproc) cores; index: $index; $(wc -l < "$tmp/q.txt") queries rotated"
script=$tmp/rotate.lua conns=${CONNS:-1 8 64 256}
if [ "${FRESH:-0}" = 1 ]; then script=$tmp/fresh.lua conns=${CONNS:-1 4 16}; fi
for c in $conns; do
  echo "== $c connections"
  threads=$(( c < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$c" -d"${DURATION:-10}s" --latency -s "$script" "http://127.0.0.1:$port" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx|Socket errors|requests in"
done
curl -sf "http://127.0.0.1:$port/metrics" | grep -E 'hubsearch_http_requests_total\{route="/v1/search"' || true
