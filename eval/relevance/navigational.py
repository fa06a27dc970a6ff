"""Write a navigational query set from the corpus: the most downloaded
models, each asked for by its id's words with and without the author
(docs/retrieval.md, Names first). Judgment: the model itself, grade 2.

    python3 eval/relevance/navigational.py CORPUS.jsonl.gz OUT_DIR [N]

Writes OUT_DIR/queries.tsv and OUT_DIR/qrels.txt (generated at run time from
the corpus, not kept in the repository). Query ids: nav-<i>-full (author and
name words) and nav-<i>-name (name words only); models without an author
(un-namespaced ids) get only the name form.
"""
import gzip
import json
import os
import re
import sys

corpus, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
cards = []
with gzip.open(corpus, "rt") as f:
    for line in f:
        c = json.loads(line)
        cards.append((c.get("downloads") or 0, c["id"]))
cards.sort(key=lambda x: (-x[0], x[1]))


def words(s):
    return " ".join(w for w in re.split(r"[^0-9A-Za-z]+", s.lower()) if w)


os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "queries.tsv"), "w") as q, open(os.path.join(out, "qrels.txt"), "w") as r:
    for i, (_, mid) in enumerate(cards[:n]):
        name = mid.split("/")[-1]
        forms = [("name", words(name))]
        if "/" in mid:
            forms.insert(0, ("full", words(mid)))
        for kind, text in forms:
            qid = f"nav-{i}-{kind}"
            q.write(f"{qid}\t{text}\n")
            r.write(f"{qid} 0 {mid} 2\n")
