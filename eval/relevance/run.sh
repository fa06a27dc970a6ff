#!/usr/bin/env bash
# The relevance report: nDCG@10, MRR@10, Recall@100 and judged@10 of
# hubsearch (text, vector, hybrid) on the rule-judged dev set, the
# natural-language dev set and a navigational set made from the most
# downloaded ids, beside two untuned BM25 peers on the same cards
# (tantivy-py with en_stem, bm25s). Writes eval/reports/relevance.md.
#
#   eval/relevance/run.sh [INDEX_DIR]      (default index/hf2022-onnx)
#
# The index must hold ../shared/data/hf_models_2022.jsonl.gz with MiniLM
# vectors (`hubsearch --index DIR index ../shared/data/hf_models_2022.jsonl.gz`).
# Installs the peers (pip, pinned) into eval/relevance/.venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
INDEX=${1:-index/hf2022-onnx}
CORPUS=${CORPUS:-../shared/data/hf_models_2022.jsonl.gz}
BIN=target/release/hubsearch
OUT=${OUT:-eval/reports/relevance}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
cargo build --release --quiet --bin hubsearch
VENV=eval/relevance/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  tantivy==0.27.0 bm25s==0.3.16 PyStemmer==3.1.0 numpy==2.4.6
echo "navigational set from the corpus' most downloaded ids..." >&2
mkdir -p "$WORK/navigational"
python3 eval/relevance/navigational.py "$CORPUS" "$WORK/navigational" 50
declare -A Q=( [dev]=../shared/eval/dev [natural-dev]=../shared/eval/natural-dev [navigational]=$WORK/navigational )
echo "peers (tantivy-py, bm25s)..." >&2
"$VENV/bin/python" eval/relevance/peers.py "$CORPUS" "$WORK/peers" \
  "${Q[dev]}/queries.tsv" "${Q[natural-dev]}/queries.tsv" "${Q[navigational]}/queries.tsv"
for set in dev natural-dev navigational; do
  for mode in text vector hybrid; do
    echo "hubsearch $mode on $set..." >&2
    "$BIN" --index "$INDEX" eval --queries "${Q[$set]}/queries.tsv" --qrels "${Q[$set]}/qrels.txt" \
      --mode "$mode" --json "$OUT/$set-hubsearch-$mode.json" > /dev/null
  done
  for mode in text hybrid; do
    echo "hubsearch $mode with dismax scoring on $set..." >&2
    "$BIN" --index "$INDEX" --config eval/relevance/dismax.toml eval --queries "${Q[$set]}/queries.tsv" \
      --qrels "${Q[$set]}/qrels.txt" --mode "$mode" --json "$OUT/$set-dismax-$mode.json" > /dev/null
  done
  for peer in tantivy-py bm25s; do
    "$BIN" --index "$INDEX" eval --queries "${Q[$set]}/queries.tsv" --qrels "${Q[$set]}/qrels.txt" \
      --score-run "$WORK/peers/$peer.$set.run" --json "$OUT/$set-$peer.json" > /dev/null
  done
done
python3 eval/relevance/report.py "$OUT" > eval/reports/relevance.md
echo "wrote eval/reports/relevance.md" >&2
