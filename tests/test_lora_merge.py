"""Static LoRA merge (compiler/passes/lora_merge.py): merged bundles equal onnxruntime on the unmerged
graph and cost exactly the base model; every exported spelling of the branch merges; bad adapter
shapes are named; run-time adapters are left alone."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.bench import zoo
from nnjit.bench.decoder_ref import OrtDecoder
from nnjit.compiler.bundle import read_manifest
from nnjit.compiler.decoder import compile_decoder
from nnjit.compiler.errors import ShapeError
from nnjit.compiler.generate import Decoder, Sampling
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

PROMPT = [464, 3290, 318, 257, 1332, 11, 12, 13, 14, 15, 16, 17, 18]


def _rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _gemm_steps(m: dict) -> int:
    return sum(s["family"] == "gemm" for s in m["steps"])


def _ort(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


# ----------------------------------------------------------------------------- zoo models


@pytest.fixture(scope="module")
def mlp_bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp_lora")
    s_base = compile_model(zoo.cached("mlp"), out / "base", backends=["wasm"])
    s_lora = compile_model(zoo.cached("mlp-lora"), out / "lora", backends=["wasm"])
    return out, s_base, s_lora


def test_mlp_lora_merged_equals_onnxruntime_at_base_cost(mlp_bundles):
    out, s_base, s_lora = mlp_bundles
    assert s_lora["lora_merged"] == 3 and s_base["lora_merged"] == 0
    m_base, m_lora = read_manifest(out / "base"), read_manifest(out / "lora")
    assert len(m_lora["steps"]) == len(m_base["steps"]) and _gemm_steps(m_lora) == _gemm_steps(m_base) == 3
    assert s_lora["weights_bytes"] == s_base["weights_bytes"]
    x = np.random.default_rng(0).standard_normal((32, 784)).astype(np.float32)
    ref = _ort(zoo.cached("mlp-lora"), {"input": x})[0]
    got = NativeSession(out / "lora").run({"input": x})["logits"]
    assert _rel(got, ref) <= 1e-5
    # The adapters matter: a merge that dropped the branch would be caught.
    assert _rel(_ort(zoo.cached("mlp"), {"input": x})[0], ref) > 1e-2


def test_merge_can_be_turned_off(mlp_bundles, tmp_path, monkeypatch):
    _, s_base, _ = mlp_bundles
    monkeypatch.setenv("NNJIT_LORA_MERGE", "0")
    s = compile_model(zoo.cached("mlp-lora"), tmp_path / "b", backends=["wasm"])
    assert s["lora_merged"] == 0 and s["steps"] > s_base["steps"]
    x = np.random.default_rng(1).standard_normal((32, 784)).astype(np.float32)
    got = NativeSession(tmp_path / "b").run({"input": x})["logits"]
    assert _rel(got, _ort(zoo.cached("mlp-lora"), {"input": x})[0]) <= 1e-5


def test_gpt2_tiny_lora_greedy_and_logits_equal_onnxruntime(tmp_path):
    kw = {"max_context": 64, "prefill_len": 8, "backends": ["wasm"]}
    s_base = compile_decoder(zoo.cached("gpt2-tiny"), tmp_path / "base", **kw)
    s = compile_decoder(zoo.cached("gpt2-tiny-lora"), tmp_path / "lora", **kw)
    assert s["lora_merged"] == 8  # c_attn, c_proj, c_fc, mlp c_proj in each of 2 layers
    assert (s["steps"], s["decode_steps"], s["weights_bytes"]) == (s_base["steps"], s_base["decode_steps"], s_base["weights_bytes"])
    m, mb = read_manifest(tmp_path / "lora"), read_manifest(tmp_path / "base")
    assert _gemm_steps(m) == _gemm_steps(mb)
    r = Decoder(NativeSession(tmp_path / "lora")).run(PROMPT, Sampling(max_new_tokens=32))
    ref = OrtDecoder(zoo.cached("gpt2-tiny-lora")).greedy(PROMPT, 32)
    assert r["tokens"] == ref["tokens"] and len(r["tokens"]) == 32
    rel = (np.abs(r["logits"] - ref["logits"]).max(axis=1) / np.abs(ref["logits"]).max(axis=1)).max()
    assert rel <= 1e-5
    base = OrtDecoder(zoo.cached("gpt2-tiny")).greedy(PROMPT, 1)
    assert _rel(base["logits"][0], ref["logits"][0]) > 1e-2


# ----------------------------------------------------------------------------- spellings of the branch

K, N, R, M = 16, 12, 4, 8
RNG = np.random.default_rng(5)
W = RNG.standard_normal((K, N)).astype(np.float32) * 0.3
A = RNG.standard_normal((K, R)).astype(np.float32) * 0.3
B = RNG.standard_normal((R, N)).astype(np.float32) * 0.3
BIAS = RNG.standard_normal(N).astype(np.float32)


def _model(tmp_path, nodes, inits, inputs=(("x", [M, K]),), out_shape=(M, N), name="m"):
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    graph = helper.make_graph(nodes, name, ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _mm(a, b, out):
    return helper.make_node("MatMul", [a, b], [out])


def _mul(a, b, out):
    return helper.make_node("Mul", [a, b], [out])


BASE_MATMUL = ([_mm("x", "W", "base")], {"W": W})
BASE_GEMM_T = ([helper.make_node("Gemm", ["x", "Wt", "bias"], ["base"], transB=1)], {"Wt": W.T, "bias": BIAS})
BASE_GEMM_ALPHA = ([helper.make_node("Gemm", ["x", "W"], ["base"], alpha=0.5)], {"W": W})
BASE_MATMUL_BIAS = ([_mm("x", "W", "xw"), helper.make_node("Add", ["bias", "xw"], ["base"])], {"W": W, "bias": BIAS})

SPELLINGS = {
    "scale after": [_mm("x", "A", "h"), _mm("h", "B", "hb"), _mul("hb", "s", "br")],
    "scale between": [_mm("x", "A", "h"), _mul("s", "h", "hs"), _mm("hs", "B", "br")],
    "scale before": [_mul("x", "s", "xs"), _mm("xs", "A", "h"), _mm("h", "B", "br")],
    "scale by Div": [_mm("x", "A", "h"), _mm("h", "B", "hb"), helper.make_node("Div", ["hb", "inv_s"], ["br"])],
    "scale folded": [_mm("x", "A", "h"), _mm("h", "Bs", "br")],
    "dropout and identity on x": [helper.make_node("Dropout", ["x"], ["xd"]), helper.make_node("Identity", ["xd"], ["xi"]),
                                  _mm("xi", "A", "h"), _mm("h", "B", "hb"), _mul("hb", "s", "br")],
    "Gemm adapters with transB and alpha": [helper.make_node("Gemm", ["x", "At"], ["h"], transB=1),
                                            helper.make_node("Gemm", ["h", "B"], ["br"], alpha=2.0)],
}
ADAPTERS = {"A": A, "B": B, "At": A.T, "Bs": 2.0 * B, "s": np.array(2.0), "inv_s": np.array(0.5)}


@pytest.mark.parametrize("base", ["matmul", "gemm transB+bias", "gemm alpha", "matmul+bias"])
@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("swap", [False, True])
def test_every_spelling_merges_exactly(tmp_path, base, spelling, swap):
    bnodes, binits = {"matmul": BASE_MATMUL, "gemm transB+bias": BASE_GEMM_T, "gemm alpha": BASE_GEMM_ALPHA,
                      "matmul+bias": BASE_MATMUL_BIAS}[base]
    add = helper.make_node("Add", ["br", "base"] if swap else ["base", "br"], ["y"])
    used = {i for n in SPELLINGS[spelling] for i in n.input}
    path = _model(tmp_path, bnodes + SPELLINGS[spelling] + [add], {**binits, **{k: v for k, v in ADAPTERS.items() if k in used}})
    s = compile_model(path, tmp_path / "b", backends=["wasm"])
    assert s["lora_merged"] == 1 and s["steps"] == 1  # one gemm, bias fused as its epilogue
    x = np.random.default_rng(2).standard_normal((M, K)).astype(np.float32)
    assert _rel(NativeSession(tmp_path / "b").run({"x": x})["y"], _ort(path, {"x": x})[0]) <= 1e-5


def test_base_reshaped_around_its_gemm_merges(tmp_path):
    """GPT-2's Conv1D: x [1, M, K] flattened to [M, K] for the Gemm, the sum back in [1, M, N]."""
    nodes = [helper.make_node("Reshape", ["x", "s2"], ["x2"]), helper.make_node("Gemm", ["x2", "W", "bias"], ["g"]),
             helper.make_node("Reshape", ["g", "s3"], ["base"]), _mm("x", "A", "h"), _mm("h", "B", "hb"),
             _mul("hb", "s", "br"), helper.make_node("Add", ["base", "br"], ["y"])]
    inits = {"W": W, "bias": BIAS, "A": A, "B": B, "s": np.array(2.0)}
    path = _model(tmp_path, nodes, inits, inputs=(("x", [1, M, K]),), out_shape=(1, M, N))
    model = onnx.load_from_string(path.read_bytes())
    model.graph.initializer.extend([numpy_helper.from_array(np.array([M, K], np.int64), "s2"),
                                    numpy_helper.from_array(np.array([1, M, N], np.int64), "s3")])
    path.write_bytes(model.SerializeToString())
    s = compile_model(path, tmp_path / "b", backends=["wasm"])
    assert s["lora_merged"] == 1 and s["steps"] == 1
    x = np.random.default_rng(3).standard_normal((1, M, K)).astype(np.float32)
    assert _rel(NativeSession(tmp_path / "b").run({"x": x})["y"], _ort(path, {"x": x})[0]) <= 1e-5


# ----------------------------------------------------------------------------- refused and left alone


@pytest.mark.parametrize("a, b, msg", [
    (np.ones((K + 2, R)), B, r"adapter A 'A' has shape \[18, 4\]: expected 16 rows .*got 18"),
    (A, np.ones((R, 1)), r"adapter B 'B' has shape \[4, 1\]: expected 12 columns .*got 1"),
    (A, np.ones((R + 1, N)), r"rank mismatch: A 'A' \[16, 4\] has 4 columns, B 'B' \[5, 12\] has 5 rows"),
])
def test_bad_adapter_shapes_are_named(tmp_path, a, b, msg):
    nodes = [_mm("x", "W", "base"), _mm("x", "A", "h"), _mm("h", "B", "hb"), _mul("hb", "s", "br"),
             helper.make_node("Add", ["base", "br"], ["y"], name="lora_add")]
    path = _model(tmp_path, nodes, {"W": W, "A": a, "B": b, "s": np.array(2.0)})
    with pytest.raises(ShapeError, match=msg) as ei:
        compile_model(path, tmp_path / "b", backends=["wasm"])
    assert "LoRA merge at node 'lora_add'" in str(ei.value) and "'W'" in str(ei.value)


def test_runtime_adapters_run_unmerged(tmp_path):
    nodes = [_mm("x", "W", "base"), _mm("x", "A", "h"), _mm("h", "B", "hb"), _mul("hb", "s", "br"),
             helper.make_node("Add", ["base", "br"], ["y"])]
    path = _model(tmp_path, nodes, {"W": W, "s": np.array(2.0)}, inputs=(("x", [M, K]), ("A", [K, R]), ("B", [R, N])))
    s = compile_model(path, tmp_path / "b", backends=["wasm"])
    assert s["lora_merged"] == 0 and s["steps"] > 1
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((M, K)).astype(np.float32), "A": A, "B": B}
    assert _rel(NativeSession(tmp_path / "b").run(feeds)["y"], _ort(path, feeds)[0]) <= 1e-5


def test_branch_read_elsewhere_is_left_alone(tmp_path):
    """x·A feeds a second output too: folding it away would change that output."""
    nodes = [_mm("x", "W", "base"), _mm("x", "A", "h"), _mm("h", "B", "hb"), _mul("hb", "s", "br"),
             helper.make_node("Add", ["base", "br"], ["y0"]), helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("ReduceSum", ["hr"], ["hs"], keepdims=1), helper.make_node("Add", ["y0", "hs"], ["y"])]
    path = _model(tmp_path, nodes, {"W": W, "A": A, "B": B, "s": np.array(2.0)})
    s = compile_model(path, tmp_path / "b", backends=["wasm"])
    assert s["lora_merged"] == 0
    x = np.random.default_rng(6).standard_normal((M, K)).astype(np.float32)
    assert _rel(NativeSession(tmp_path / "b").run({"x": x})["y"], _ort(path, {"x": x})[0]) <= 1e-5


def test_kv_shield_sees_the_merged_weights(tmp_path):
    """The merge runs before the KV-cache rewrite, so KV-Shield permutes the merged c_attn columns."""
    s = compile_decoder(zoo.cached("gpt2-tiny-lora"), tmp_path / "b", max_context=64, prefill_len=8,
                        backends=["wasm"], kv_shield_seed=3)
    assert s["lora_merged"] == 8 and s["kv_shield"]
    r = Decoder(NativeSession(tmp_path / "b")).run(PROMPT, Sampling(max_new_tokens=8))
    ref = OrtDecoder(zoo.cached("gpt2-tiny-lora")).greedy(PROMPT, 8)
    assert r["tokens"] == ref["tokens"] and _rel(r["logits"], ref["logits"]) <= 1e-5


def test_two_adapters_on_one_projection_both_merge(tmp_path):
    nodes = [_mm("x", "W", "base"), _mm("x", "A", "h"), _mm("h", "B", "hb"), _mul("hb", "s", "br"),
             helper.make_node("Add", ["base", "br"], ["y0"]), _mm("x", "A2", "h2"), _mm("h2", "B2", "br2"),
             helper.make_node("Add", ["br2", "y0"], ["y"])]
    path = _model(tmp_path, nodes, {"W": W, "A": A, "B": B, "s": np.array(2.0), "A2": A[:, ::-1], "B2": -B})
    s = compile_model(path, tmp_path / "b", backends=["wasm"])
    assert s["lora_merged"] == 2 and s["steps"] == 1
    x = np.random.default_rng(7).standard_normal((M, K)).astype(np.float32)
    assert _rel(NativeSession(tmp_path / "b").run({"x": x})["y"], _ort(path, {"x": x})[0]) <= 1e-5
