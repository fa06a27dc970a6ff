#!/usr/bin/env bash
# The policy replay of docs/metrics.md: each judged dev set served 20 times
# in hybrid mode under every policy, with model and with builder groups, a
# lambda sweep of fair and fair_bounded, and with simulated paid calls
# relevance, fair and an impact_lambda sweep of fair_impact, written to
# eval/reports/dev-policies.md (and the JSON beside it).
#
#   eval/policies/run.sh [INDEX_DIR]     (default index/hf2022-onnx)
#
# HUBSEARCH_BIN=path uses that binary instead of building one; SHARED=dir
# reads the judged sets from dir/eval (default ../shared).
#
# The index must hold ../shared/data/hf_models_2022.jsonl.gz:
#   hubsearch --index index/hf2022-onnx index ../shared/data/hf_models_2022.jsonl.gz
set -euo pipefail
cd "$(dirname "$0")/../.."
INDEX=${1:-index/hf2022-onnx}
BIN=${HUBSEARCH_BIN:-target/release/hubsearch}
SHARED=${SHARED:-../shared}
OUT=eval/reports/policies
mkdir -p "$OUT"
[ -n "${HUBSEARCH_BIN:-}" ] || cargo build --release --quiet --bin hubsearch
POLICIES=relevance,popularity,tail_boost,fair,fair_impact,fair_bounded,stochastic
for set in dev natural-dev; do
  for group in model builder; do
    echo "== $set, $group groups" >&2
    HUBSEARCH_RANKING__GROUP=$group "$BIN" --index "$INDEX" eval \
      --queries "$SHARED/eval/$set/queries.tsv" --qrels "$SHARED/eval/$set/qrels.txt" \
      --mode hybrid --policy "$POLICIES" --repeat 20 \
      --json "$OUT/$set-$group.json" >/dev/null
  done
  # fair's lambda weighs the average per-round disparity (rounds =
  # "average", the default; docs/ranking.md, fair).
  for l in 0.1 0.2 0.3 0.5 0.6 0.8; do
    HUBSEARCH_RANKING__LAMBDA=$l "$BIN" --index "$INDEX" eval \
      --queries "$SHARED/eval/$set/queries.tsv" --qrels "$SHARED/eval/$set/qrels.txt" \
      --mode hybrid --policy fair --repeat 20 --json "$OUT/$set-fair-$l.json" >/dev/null
  done
  # The same controller booking exposure as expeval's user browses (rbp,
  # patience 0.5: ranking.attention = "rbp", gamma 0.5; docs/ranking.md,
  # Tuning the default).
  for l in 0.2 0.3 0.4; do
    HUBSEARCH_RANKING__ATTENTION=rbp HUBSEARCH_RANKING__GAMMA=0.5 HUBSEARCH_RANKING__LAMBDA=$l "$BIN" --index "$INDEX" eval \
      --queries "$SHARED/eval/$set/queries.tsv" --qrels "$SHARED/eval/$set/qrels.txt" \
      --mode hybrid --policy fair --repeat 20 --json "$OUT/$set-fair-rbp-$l.json" >/dev/null
  done
  for l in 0.2 0.4 0.8 1.6; do
    HUBSEARCH_RANKING__BOUNDED_LAMBDA=$l "$BIN" --index "$INDEX" eval \
      --queries "$SHARED/eval/$set/queries.tsv" --qrels "$SHARED/eval/$set/qrels.txt" \
      --mode hybrid --policy fair_bounded --repeat 20 --json "$OUT/$set-bounded-$l.json" >/dev/null
  done
  # With simulated paid calls (seed 1; docs/metrics.md, Simulated calls),
  # fair_impact has impact to act on: relevance and fair beside it, and an
  # impact_lambda sweep around the default, 0.1 (docs/ranking.md, fair_impact).
  "$BIN" --index "$INDEX" eval \
    --queries "$SHARED/eval/$set/queries.tsv" --qrels "$SHARED/eval/$set/qrels.txt" \
    --mode hybrid --policy relevance,fair,fair_impact --repeat 20 --calls 1 \
    --json "$OUT/$set-calls.json" >/dev/null
  for l in 0.03 0.3 1; do
    HUBSEARCH_RANKING__IMPACT_LAMBDA=$l "$BIN" --index "$INDEX" eval \
      --queries "$SHARED/eval/$set/queries.tsv" --qrels "$SHARED/eval/$set/qrels.txt" \
      --mode hybrid --policy fair_impact --repeat 20 --calls 1 \
      --json "$OUT/$set-calls-impact-$l.json" >/dev/null
  done
done
python3 eval/policies/report.py "$OUT" > eval/reports/dev-policies.md
echo "wrote eval/reports/dev-policies.md" >&2
