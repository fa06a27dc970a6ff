#!/usr/bin/env bash
# The scale curve of issue 7: generated hubs of 10k, 100k and 1M cards, each
# built from scratch and measured: build time (text index; vectors split into
# embedding and HNSW graph), disk and peak memory per card, p50/p99 hybrid
# search latency, throughput.
#
#   eval/bench/scale.sh [SIZES...]        (default: 10000 100000 1000000)
#
# Vectors come from the `hash` embedder: 384-dimensional like MiniLM, so the
# HNSW graph, the vector store and every search do the same work, but it costs
# microseconds per card where MiniLM costs ~18 ms on 2 cores (1M cards would
# take ~5 hours to embed). Its vectors are far less semantic, so the HNSW
# recall figure here is not the real corpus's (see compare.md for that).
# Needs ~3.5 GiB of memory and ~2.5 GiB of disk for 1M, ~7 GiB and ~5 GiB
# for 2M, plus the generated hub files (WORK, default a temp directory;
# KEEP=1 keeps each index there). On 2 cores 10k-2M took 21 minutes
# (scale.md). Writes scale.json and scale.md into OUT_DIR (default eval/bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000 1000000)
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (Debian) for the build's peak memory..." >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null
fi
cargo build --release --quiet -p hubsearch ${HUBSEARCH_CARGO_FLAGS:-}
BIN=$PWD/target/release/hubsearch
WORK=${WORK:-$(mktemp -d)}
KEEP=${KEEP:-0}
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
export HUBSEARCH_EMBEDDING__MODEL=hash
results=()
for n in "${SIZES[@]}"; do
  hub="$WORK/hub-$n.jsonl"
  idx="$WORK/index-$n"
  rm -rf "$idx"
  echo "== $n cards: generating" >&2
  "$BIN" generate --models "$n" --seed 42 -o "$hub"
  echo "== $n cards: building (text index, hash vectors, HNSW graph)" >&2
  /usr/bin/time -f '%M %e' -o "$WORK/build-$n.time" \
    "$BIN" --index "$idx" import --quiet --json "$hub" > "$WORK/build-$n.json"
  echo "== $n cards: searching" >&2
  "$BIN" --index "$idx" bench --existing --repeat "${REPEAT:-20}" --seconds "${SECONDS_EACH:-5}" \
    --json "$WORK/bench-$n.json" >&2
  results+=("$n")
  rm -f "$hub"
  [ "$KEEP" = 1 ] || rm -rf "$idx"
done
OUT_DIR=${OUT_DIR:-eval/bench}
python3 eval/bench/scale_report.py "$WORK" "${results[@]}" \
  --json "$OUT_DIR/scale.json" --markdown "$OUT_DIR/scale.md"
cat "$OUT_DIR/scale.md"
