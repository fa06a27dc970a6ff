"""Which matmuls of MiniLM can be int8 at the 0.99 cosine bar, and how fast
is each recipe (session 6, issue "Embeddings at the speed of the index").

    models/.venv/bin/python scripts/build_minilm_onnx.py models/all-MiniLM-L6-v2 /tmp/q8/plain.onnx --plain
    models/.venv/bin/pip install "tokenizers>=0.20"
    models/.venv/bin/python eval/bench/int8_recipes.py

Embeds 600 real card texts (every 40th card of ../shared, as
`ModelCard::short_text` builds them, sorted by length, batches of 8, one
thread) with the fp32 graph and with ONNX Runtime's dynamic per-channel int8
quantisation of all weight matmuls or all but some, and prints cards/s and
the cosine to fp32. Figures: eval/bench/embedders.md.
"""
import gzip, json, time, sys, os
import numpy as np, onnx, onnxruntime as ort
from tokenizers import Tokenizer
from onnxruntime.quantization import quantize_dynamic, QuantType
d = os.path.join(os.path.dirname(__file__), "../../models/all-MiniLM-L6-v2")
m = onnx.load("/tmp/q8/plain.onnx")
inits = {i.name: i for i in m.graph.initializer}
kind = {}
for n in m.graph.node:
    if n.op_type == "MatMul":
        w = [inits[x] for x in n.input if x in inits]
        if w:
            dims = tuple(w[0].dims)
            kind[n.name] = {(384, 1536): "ffn1", (1536, 384): "ffn2", (384, 384): "proj"}.get(dims, str(dims))
        else:
            kind[n.name] = "act"
print({k: list(kind.values()).count(k) for k in set(kind.values())})
variants = {
    "all": [],
    "no_ffn2": [n for n, k in kind.items() if k == "ffn2"],
    "proj_only": [n for n, k in kind.items() if k in ("ffn1", "ffn2")],
    "ffn_only": [n for n, k in kind.items() if k == "proj"],
}
for name, excl in variants.items():
    out = f"/tmp/q8/{name}.onnx"
    if not os.path.exists(out):
        quantize_dynamic("/tmp/q8/plain.onnx", out, weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=excl)
tok = Tokenizer.from_file(f"{d}/tokenizer.json")
tok.enable_truncation(256)
tok.enable_padding()
# card short texts (as ModelCard::short_text): id words, task, tags, description
texts = []
import re
with gzip.open(os.path.join(os.path.dirname(__file__), "../../../shared/data/hf_models_2022.jsonl.gz"), "rt") as f:
    for i, line in enumerate(f):
        if i % 40: continue
        c = json.loads(line)
        t = " ".join(re.split(r"[/\-_.]", c["id"]))
        if c.get("task"): t += ". " + c["task"].replace("-", " ")
        if c.get("tags"): t += ". " + ", ".join(c["tags"])
        if c.get("description"): t += ". " + c["description"]
        texts.append(t)
texts = texts[:600]
texts.sort(key=len)
def embed(path, threads=1, bs=8):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    outs = []
    t0 = time.perf_counter()
    for i in range(0, len(texts), bs):
        enc = tok.encode_batch(texts[i:i+bs])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names: feed["token_type_ids"] = np.zeros_like(ids)
        feed = {k: v for k, v in feed.items() if k in names}
        h = s.run(None, feed)[0]
        if h.ndim == 3:
            mm = mask[..., None].astype(np.float32)
            h = (h * mm).sum(1) / mm.sum(1)
        h = h / np.linalg.norm(h, axis=1, keepdims=True)
        outs.append(h)
    return np.concatenate(outs), time.perf_counter() - t0
ref, tref = embed("/tmp/q8/plain.onnx")
print(f"fp32 plain: {len(texts)/tref:.1f} cards/s (1 thread)")
fused, tf = embed(f"{d}/model.onnx")
print(f"fp32 fused: {len(texts)/tf:.1f} cards/s, cos vs plain min {np.min((fused*ref).sum(1)):.4f}")
for name in variants:
    e, t = embed(f"/tmp/q8/{name}.onnx")
    cos = (e * ref).sum(1)
    print(f"int8 {name}: {len(texts)/t:.1f} cards/s, cos mean {cos.mean():.4f} min {cos.min():.4f} p1 {np.percentile(cos,1):.4f}")
