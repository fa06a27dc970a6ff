"""AWRF per ranking as TREC Fair Ranking 2021's `qr_awrf` defines it, with
scipy's Jensen-Shannon distance, for crates/eval/tests/reference.rs to
compare against.

    python3 tests/awrf_check.py CASES.json

CASES.json: [{"ranking": [doc, ...], "groups": {doc: [group, ...]},
"target": {group: weight}, "k": 20}, ...]; prints a JSON list of AWRF values.
The definition (trec2021-fair-public metrics.py): discount 1/log2(max(rank, 2))
for 1-based ranks; a document adds its discount to each of its groups; an
all-zero vector becomes uniform; AWRF = 1 - jensenshannon(p, target)^2 with
scipy's default (natural) logarithm.
"""
import json
import sys

import numpy as np
from scipy.spatial.distance import jensenshannon

out = []
for case in json.load(open(sys.argv[1])):
    names = sorted(case["target"])
    col = {g: i for i, g in enumerate(names)}
    tgt = np.array([case["target"][g] for g in names], dtype="f8")
    ranking = case["ranking"][: case["k"]]
    ranks = np.maximum(np.arange(1, len(ranking) + 1, dtype="f8"), 2)
    disc = np.reciprocal(np.log2(ranks))
    align = np.zeros(len(names))
    for d, w in zip(ranking, disc):
        for g in case["groups"].get(d, []):
            if g in col:
                align[col[g]] += w
    if np.sum(align) == 0:
        align = np.ones_like(align)
    dist = jensenshannon(align, tgt)
    out.append(1 - dist * dist)
print(json.dumps(out))
