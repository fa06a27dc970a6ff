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
d=${DURATION:-10}
ulimit -n 65536 2>/dev/null || true
MODE=text
. eval/bench/serve.sh
serve_index "$index"
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
