"""Runs of two untuned single-field BM25 peers on the same cards, for
eval/relevance/run.sh: tantivy-py (tantivy's Python bindings, `en_stem`
tokenizer, BM25 k1 1.2 b 0.75) and bm25s (Snowball English stemmer, English
stop words). Each card is one text field: the same text the side-by-side
benchmark gives every system (eval/bench/compare/compare.py, `fields`).

    python peers.py CORPUS.jsonl.gz OUT_DIR QUERIES.tsv [QUERIES.tsv ...]

Writes OUT_DIR/<system>.<query file's directory name>.run (TREC, top 100).
"""
import gzip
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench", "compare"))
from compare import fields  # noqa: E402

corpus, out = sys.argv[1], sys.argv[2]
query_files = sys.argv[3:]
cards = []
with gzip.open(corpus, "rt") as f:
    for line in f:
        cards.append(json.loads(line))
texts = [" ".join(fields(c)) for c in cards]
ids = [c["id"] for c in cards]
os.makedirs(out, exist_ok=True)


def queries(path):
    with open(path) as f:
        return [l.rstrip("\n").split("\t", 1) for l in f if l.strip() and not l.startswith("#")]


def write(system, qfile, results):
    name = os.path.basename(os.path.dirname(os.path.abspath(qfile)))
    with open(os.path.join(out, f"{system}.{name}.run"), "w") as f:
        for qid, ranked in results:
            for rank, (doc, score) in enumerate(ranked, 1):
                f.write(f"{qid} Q0 {doc} {rank} {score:.6f} {system}\n")


# tantivy-py
import tantivy  # noqa: E402

sb = tantivy.SchemaBuilder()
sb.add_text_field("id", stored=True, tokenizer_name="raw")
sb.add_text_field("text", tokenizer_name="en_stem")
schema = sb.build()
tdir = tempfile.mkdtemp()
index = tantivy.Index(schema, path=tdir)
w = index.writer()
for i, t in zip(ids, texts):
    w.add_document(tantivy.Document(id=i, text=t))
w.commit()
index.reload()
searcher = index.searcher()
for qfile in query_files:
    res = []
    for qid, q in queries(qfile):
        # Words only: tantivy's query parser has its own syntax.
        words = " ".join(re.findall(r"[0-9A-Za-z]+", q))
        hits = []
        if words:
            parsed = index.parse_query(words, ["text"])
            for score, addr in searcher.search(parsed, 100).hits:
                hits.append((searcher.doc(addr)["id"][0], score))
        res.append((qid, hits))
    write("tantivy-py", qfile, res)

# bm25s
import bm25s  # noqa: E402
import Stemmer  # noqa: E402

stemmer = Stemmer.Stemmer("english")
retriever = bm25s.BM25()
retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
for qfile in query_files:
    res = []
    for qid, q in queries(qfile):
        qt = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        if not qt.vocab:
            res.append((qid, []))
            continue
        docs, scores = retriever.retrieve(qt, k=100, show_progress=False, n_threads=1)
        res.append((qid, [(ids[d], float(s)) for d, s in zip(docs[0], scores[0])]))
    write("bm25s", qfile, res)
