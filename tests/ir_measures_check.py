"""Per-query nDCG@10, RR@10 and R@100 from ir_measures' pytrec_eval
provider (trec_eval's definitions and run reading), for crates/eval/tests/reference.rs to compare against.

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
# The pytrec_eval provider is trec_eval itself (ties in score broken by
# document id, descending); ir_measures' default provider for RR orders ties
# otherwise.
# trec_eval's recip_rank has no cutoff: RR@10 is it when the first relevant
# document is within the top 10 (RR >= 1/10), else 0.
for m in ir_measures.pytrec_eval.iter_calc([nDCG @ 10, RR @ 10, R @ 100], qrels, run):
    v = m.value
    if names[str(m.measure)] == "mrr@10" and v < 0.1 - 1e-12:
        v = 0.0
    out.setdefault(m.query_id, {})[names[str(m.measure)]] = v
print(json.dumps(out))
