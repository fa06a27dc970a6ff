"""How the BM25F field weights were chosen (docs/retrieval.md, "Two weights,
not nine"), reproducibly. Runs `hubsearch eval` on both dev sets.

  python3 eval/relevance/weights.py grid      [--mode hybrid]
      the two-weight grid (M for task and languages, C for prose) on the
      full dev sets
  python3 eval/relevance/weights.py crossval  [--mode text] [--nine]
      two-fold cross-validation: queries of both sets split by odd / even
      line; tune on one half of both sets, score the other half, beside the
      dismax scoring (eval/relevance/dismax.toml). --nine also fits all nine
      weights by coordinate search (slow: ~10 min in text mode).

Needs the index of the real corpus (default index/hf2022-onnx, or INDEX)
and ../shared/eval/{dev,natural-dev}.
"""
import argparse
import itertools
import json
import os
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = os.path.join(ROOT, "target", "release", "hubsearch")
INDEX = os.environ.get("INDEX", os.path.join(ROOT, "index", "hf2022-onnx"))
SETS = {s: os.path.join(ROOT, "..", "shared", "eval", s) for s in ("dev", "natural-dev")}
DISMAX = os.path.join(ROOT, "eval", "relevance", "dismax.toml")
GRID = list(itertools.product([4, 6, 8, 10, 13, 16], [0.5, 0.7, 0.85, 1.0, 1.3]))


def evaluate(weights, queries, mode, config=None):
    """nDCG@10 per set for `weights` (config keys without `boost_`)."""
    env = dict(os.environ)
    if config:
        env["HUBSEARCH_CONFIG"] = config
    for k, v in weights.items():
        env["HUBSEARCH_SEARCH__BOOST_" + k.upper()] = str(v)
    out = {}
    for name, qfile in queries.items():
        r = subprocess.run([BIN, "--index", INDEX, "eval", "--queries", qfile,
                            "--qrels", os.path.join(SETS[name], "qrels.txt"),
                            "--mode", mode, "--policy", "relevance"],
                           env=env, capture_output=True, text=True, check=True)
        out[name] = next(float(l.split()[1]) for l in r.stdout.splitlines()
                         if l.startswith("ndcg@10 "))
    return out


def two(m, c):
    return dict(id=1, id_stem=1, task=m, languages=m, tags=1, datasets=1,
                architectures=c, description=c, card_text=c)


def mean(r):
    return sum(r.values()) / len(r)


def nine_fit(queries, mode):
    """Coordinate search over all nine weights from the dismax boosts."""
    cur = dict(id=1.0, id_stem=0.5, task=4.3, languages=1.3, tags=1.2, datasets=1.0,
               architectures=0.25, description=1.0, card_text=1.7, phrase=2.0)
    best = mean(evaluate(cur, queries, mode))
    for _ in range(2):
        improved = False
        for k in list(cur):
            for f in (0, 0.25, 0.5, 0.75, 1.5, 2, 3):
                trial = dict(cur, **{k: round(cur[k] * f, 4)})
                if trial[k] == cur[k]:
                    continue
                s = mean(evaluate(trial, queries, mode))
                if s > best + 0.001:
                    best, cur, improved = s, trial, True
        if not improved:
            break
    return cur


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["grid", "crossval"])
    ap.add_argument("--mode", default=None)
    ap.add_argument("--nine", action="store_true")
    a = ap.parse_args()
    full = {s: os.path.join(d, "queries.tsv") for s, d in SETS.items()}
    if a.what == "grid":
        mode = a.mode or "hybrid"
        for m, c in GRID:
            r = evaluate(two(m, c), full, mode)
            print(json.dumps({"M": m, "C": c, "mode": mode, **r, "mean": round(mean(r), 4)}),
                  flush=True)
        return
    mode = a.mode or "text"
    tmp = tempfile.mkdtemp()
    halves = {"A": {}, "B": {}}
    for s, f in full.items():
        lines = open(f).read().splitlines()
        for h, keep in (("A", 1), ("B", 0)):
            path = os.path.join(tmp, f"{s}-{h}.tsv")
            with open(path, "w") as out:
                out.write("\n".join(l for i, l in enumerate(lines, 1) if i % 2 == keep) + "\n")
            halves[h][s] = path
    for train, test in (("A", "B"), ("B", "A")):
        best = max(GRID, key=lambda g: mean(evaluate(two(*g), halves[train], mode)))
        row = {"train": train, "mode": mode, "two_weights": best,
               "two_heldout": evaluate(two(*best), halves[test], mode),
               "dismax_heldout": evaluate({}, halves[test], mode, DISMAX)}
        if a.nine:
            w = nine_fit(halves[train], mode)
            row["nine_weights"] = w
            row["nine_heldout"] = evaluate(w, halves[test], mode)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
