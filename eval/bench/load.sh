#!/usr/bin/env bash
# Load benchmark of the release server with wrk (Debian package) on loopback:
# hybrid search with the query vector cached (the dev queries, rotated), at
# 1, 8 and 64 connections, then an overload run at 256 connections with a
# short queue timeout, which must answer 503 (shed) rather than time out.
#   eval/bench/load.sh INDEX_DIR   (an index built from the real corpus)
set -euo pipefail
cd "$(dirname "$0")/../.."
index=${1:?usage: eval/bench/load.sh INDEX_DIR}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet -p hubsearch
port=$((20000 + RANDOM % 20000))
tmp=$(mktemp -d)
HUBSEARCH_SERVER__QUEUE_TIMEOUT_MS=${QUEUE_TIMEOUT_MS:-100} target/release/hubsearch --index "$index" serve --addr "127.0.0.1:$port" 2>"$tmp/server.log" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
# Rotate through the dev queries (or a default list), warm the query-vector cache.
queries=${QUERIES:-../shared/eval/dev/queries.tsv}
cut -f2 "$queries" | sed 's/ /+/g' > "$tmp/q.txt"
while read -r q; do curl -sf "http://127.0.0.1:$port/v1/search?q=$q&mode=hybrid" >/dev/null; done < "$tmp/q.txt"
cat > "$tmp/rotate.lua" <<LUA
local qs = {}
for line in io.lines("$tmp/q.txt") do qs[#qs + 1] = line end
local i = 0
request = function()
  i = i % #qs + 1
  return wrk.format("GET", "/v1/search?mode=hybrid&q=" .. qs[i])
end
LUA
echo "machine: $(nproc) cores; index: $index; $(wc -l < "$tmp/q.txt") queries rotated"
for c in 1 8 64 256; do
  echo "== $c connections"
  threads=$(( c < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$c" -d"${DURATION:-10}s" --latency -s "$tmp/rotate.lua" "http://127.0.0.1:$port" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx|Socket errors|requests in"
done
curl -sf "http://127.0.0.1:$port/metrics" | grep -E 'hubsearch_http_requests_total\{route="/v1/search"' || true
