#!/usr/bin/env bash
# Hostile-client floods on loopback (issue "No client can crash, rig or
# starve the hub"): search throughput with wrk alone, then under (a) a
# slowloris flood of thousands of half-open connections from 40 loopback
# addresses and (b) 16 clients polling /v1/stats/exposure, with /healthz
# latency sampled throughout. Bounded: each phase runs DURATION seconds.
#   eval/bench/flood.sh INDEX_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
index=${1:?usage: eval/bench/flood.sh INDEX_DIR}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet -p hubsearch
d=${DURATION:-10}
port=$((20000 + RANDOM % 20000))
tmp=$(mktemp -d)
ulimit -n 65536 2>/dev/null || true
target/release/hubsearch --index "$index" serve --addr "127.0.0.1:$port" 2>"$tmp/server.log" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
cut -f2 "${QUERIES:-../shared/eval/dev/queries.tsv}" | sed 's/ /+/g' > "$tmp/q.txt"
while read -r q; do curl -sf "http://127.0.0.1:$port/v1/search?q=$q&mode=text" >/dev/null; done < "$tmp/q.txt"
cat > "$tmp/rotate.lua" <<LUA
local qs = {}
for line in io.lines("$tmp/q.txt") do qs[#qs + 1] = line end
local i = 0
request = function()
  i = i % #qs + 1
  return wrk.format("GET", "/v1/search?mode=text&q=" .. qs[i])
end
LUA
search() { wrk -t2 -c8 -d"${d}s" -s "$tmp/rotate.lua" "http://127.0.0.1:$port" | grep -E "Requests/sec|Non-2xx"; }
healthz() {  # max and p99 of /healthz over the phase, in ms
  local end=$((SECONDS + d)); : > "$tmp/h.txt"
  while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -m 5 -w '%{time_total}\n' "http://127.0.0.1:$port/healthz" >> "$tmp/h.txt" || echo 5 >> "$tmp/h.txt"
    sleep 0.05
  done
  sort -n "$tmp/h.txt" | awk '{a[NR]=$1*1000} END {printf "healthz: %d probes, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR*0.5)+1], a[int(NR*0.99)+1], a[NR]}'
}
echo "machine: $(nproc) cores; index: $index; phases of ${d}s"
echo "== search alone (8 connections)"
search
echo "== search under a slowloris flood"
python3 eval/bench/flood.py --port "$port" --seconds $((d + 5)) > "$tmp/flood.txt" &
flood=$!
sleep 2
healthz & hz=$!
search
wait $hz; wait $flood; cat "$tmp/flood.txt"
echo "== search under 16 clients polling /v1/stats/exposure"
wrk -t1 -c16 -d"$((d + 2))s" "http://127.0.0.1:$port/v1/stats/exposure" > "$tmp/stats.txt" &
poll=$!
sleep 1
healthz & hz=$!
search
wait $hz; wait $poll
grep -E "Requests/sec" "$tmp/stats.txt" | sed 's/^/stats polls: /'
