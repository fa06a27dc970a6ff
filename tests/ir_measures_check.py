"""Per-query nDCG@10, RR@10 and R@100 from ir_measures (trec_eval's
definitions), for crates/eval/tests/reference.rs to compare against.

    python3 tests/ir_measures_check.py QRELS RUN
prints {"qid": {"ndcg@10": x, "mrr@10": y, "recall@100": z}, ...} as JSON.
"""
import json
import sys

import ir_measures
from ir_measures import nDCG, RR, R

qrels = list(ir_measures.read_trec_qrels(sys.argv[1]))
run = list(ir_measures.read_trec_run(sys.argv[2]))
names = {str(nDCG @ 10): "ndcg@10", str(RR @ 10): "mrr@10", str(R @ 100): "recall@100"}
out = {}
for m in ir_measures.iter_calc([nDCG @ 10, RR @ 10, R @ 100], qrels, run):
    out.setdefault(m.query_id, {})[names[str(m.measure)]] = m.value
print(json.dumps(out))
