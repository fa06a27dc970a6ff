#!/usr/bin/env bash
# The side-by-side benchmark of issue 7: hubsearch, PostgreSQL full-text
# search, LanceDB (FTS, vector, hybrid), bm25s and hnswlib on one machine, the
# same cards, the same MiniLM vectors and the same judged queries.
#
#   eval/bench/compare/run.sh [INDEX_DIR]
#
# INDEX_DIR: a hubsearch index of the corpus with MiniLM vectors (default
# index/hf2022; built here if missing, ~9 min of embedding on 2 cores).
# Installs what it needs: PostgreSQL from Debian (server started and stopped
# by compare.py in a temporary directory on a free local port), the Python
# packages of the systems asked for (pinned in requirements.txt) in
# eval/bench/compare/.venv, the model.
# Writes compare.json and compare.md into OUT_DIR (default eval/bench).
# Environment: CORPUS, QUERIES, QRELS (default: ../shared), CLIENTS (default
# 2 x cores), SECONDS_EACH (default 5), REPEAT (default 10), SYSTEMS (comma
# list of hubsearch, postgres, lancedb, bm25s, hnswlib), OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/../../.."
CORPUS=${CORPUS:-../shared/data/hf_models_2022.jsonl.gz}
QUERIES=${QUERIES:-../shared/eval/dev/queries.tsv}
QRELS=${QRELS:-../shared/eval/dev/qrels.txt}
INDEX=${1:-index/hf2022}
for f in "$CORPUS" "$QUERIES" "$QRELS"; do
  [ -e "$f" ] || { echo "error: $f not found (set CORPUS, QUERIES, QRELS)" >&2; exit 2; }
done

OUT_DIR=${OUT_DIR:-eval/bench}
if [[ "${SYSTEMS:-postgres}" == *postgres* ]] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian)..." >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
VENV=eval/bench/compare/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# Only the packages of the systems asked for (pins from requirements.txt):
# the CI smoke needs neither LanceDB nor PyArrow (~350 MB installed).
systems=${SYSTEMS:-hubsearch,postgres,lancedb,bm25s,hnswlib}
want="numpy"
[[ $systems == *postgres* ]] && want+=" psycopg"
[[ $systems == *lancedb* ]] && want+=" lancedb pyarrow"
[[ $systems == *bm25s* ]] && want+=" bm25s PyStemmer"
[[ $systems == *hnswlib* ]] && want+=" hnswlib"
pins=()
for name in $want; do
  pin=$(grep -E "^${name}(\[[a-z]+\])?==" eval/bench/compare/requirements.txt) \
    || { echo "error: $name is not pinned in eval/bench/compare/requirements.txt" >&2; exit 2; }
  pins+=("$pin")
done
echo "installing the Python side (pip, pinned): ${pins[*]}" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "${pins[@]}"

scripts/setup-model
cargo build --release --quiet -p hubsearch ${HUBSEARCH_CARGO_FLAGS:-}
BIN=target/release/hubsearch
if [ ! -d "$INDEX/text" ]; then
  echo "building $INDEX from $CORPUS (MiniLM embedding: minutes)..." >&2
  "$BIN" --index "$INDEX" import "$CORPUS"
fi
EXPORT=$(mktemp -d)
trap 'rm -rf "$EXPORT"' EXIT
"$BIN" --index "$INDEX" export --out "$EXPORT" --queries "$QUERIES"
"$VENV/bin/python" eval/bench/compare/compare.py \
  --hubsearch "$BIN" --index "$INDEX" --corpus "$CORPUS" --export "$EXPORT" --qrels "$QRELS" \
  ${SYSTEMS:+--systems "$SYSTEMS"} ${CLIENTS:+--clients "$CLIENTS"} \
  --seconds "${SECONDS_EACH:-5}" --repeat "${REPEAT:-10}" \
  --json "$OUT_DIR/compare.json" --markdown "$OUT_DIR/compare.md"
cat "$OUT_DIR/compare.md"
