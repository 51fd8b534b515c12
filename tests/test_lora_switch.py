"""LoRA-Switch (compiler/passes/lora_switch.py, docs/lora_switch.md): the switched decode plan gives
onnxruntime's outputs on the unfused dynamic graph over 64 greedy tokens, merges only when the
router's set changed (counted), and refuses bad adapter pools by name."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from nnjit.bench import zoo
from nnjit.bench.decoder_ref import OrtDecoder
from nnjit.compiler.bundle import read_manifest
from nnjit.compiler.decoder import compile_decoder
from nnjit.compiler.errors import ShapeError
from nnjit.compiler.generate import Decoder, Sampling
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.onnx_import import import_onnx
from nnjit.compiler.passes import lora_switch
from nnjit.compiler.switch_jit import gate_words, pick
from onnx import TensorProto, helper, numpy_helper

PROMPT = [464, 3290, 318, 257, 1332, 11, 12, 13, 14, 15, 16, 17, 18]
N_NEW = 64
KW = {"max_context": 96, "prefill_len": 8}


def _rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("switch")
    src = zoo.cached("gpt2-tiny-switch")
    s = compile_decoder(src, out / "switch", **KW)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNJIT_LORA_SWITCH", "0")
        s_unf = compile_decoder(src, out / "unfused", **KW)
    return src, out, s, s_unf


def _router_sets(src, tokens: list[int]) -> list[tuple]:
    """The adapter set onnxruntime's router picks for each token (the TopK indices as an extra output)."""
    m = onnx.load(str(src))
    ids = next(n.output[1] for n in m.graph.node if n.op_type == "TopK")
    m.graph.output.append(helper.make_tensor_value_info(ids, TensorProto.INT64, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": np.array([tokens], np.int64), "position_ids": np.arange(len(tokens))[None]}
    for i in sess.get_inputs():
        if i.name.startswith("past."):
            feeds[i.name] = np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
    got = sess.run([ids], feeds)[0].reshape(len(tokens), -1)
    return [tuple(sorted(r.tolist())) for r in got]


def test_switch_equals_onnxruntime_over_64_tokens_and_merges_only_on_change(bundles):
    src, out, s, s_unf = bundles
    assert s["lora_switched"] == 8 and s_unf["lora_switched"] == 0  # 4 projections × 2 layers
    sess = NativeSession(out / "switch")
    r = Decoder(sess).run(PROMPT, Sampling(max_new_tokens=N_NEW))
    ref = OrtDecoder(src).greedy(PROMPT, N_NEW)
    assert r["tokens"] == ref["tokens"] and len(r["tokens"]) == N_NEW
    assert _rel(r["logits"], ref["logits"]) <= 1e-4
    # Decode runs: every generated token but the last (the prompt is prefilled in 8-token chunks).
    decoded = ref["tokens"][:-1]
    sets = _router_sets(src, PROMPT + decoded)[len(PROMPT):]
    changes = sum(i == 0 or sets[i] != sets[i - 1] for i in range(len(sets)))
    assert sess.stats == {"merge_dispatches": changes, "merge_skipped": len(sets) - changes}
    assert 0 < changes < len(sets)  # the model switches sometimes, not always


def test_webgpu_native_switch_equals_onnxruntime_and_gate_counts(bundles):
    """wgpu-py on lavapipe: the gate step writes the merge's indirect dispatch arguments each token — the
    merge's grid when the router's set changed, 0 workgroups when it did not — and the gate counts merges."""
    from nnjit.compiler.gpu_runtime import GPUSession

    src, out, _, _ = bundles
    gpu = GPUSession(out / "switch")
    grids = []
    run = gpu.run

    def run_and_record(feeds, plan="main"):
        res = run(feeds, plan)
        if plan == "decode":
            grids.append(gpu.merge_grids(plan))
        return res

    gpu.run = run_and_record
    r = Decoder(gpu).run(PROMPT, Sampling(max_new_tokens=N_NEW))
    ref = OrtDecoder(src).greedy(PROMPT, N_NEW)
    assert r["tokens"] == ref["tokens"] and _rel(r["logits"], ref["logits"]) <= 1e-4
    sets = _router_sets(src, PROMPT + ref["tokens"][:-1])[len(PROMPT):]
    assert len(grids) == len(sets) and all(len(g) == 1 for g in grids)  # one merge step per decode plan
    for i, ((grid,), ids) in enumerate(zip(grids, sets)):
        changed = i == 0 or ids != sets[i - 1]
        assert (grid != [0, 0, 0]) == changed, (i, grid)
    launched = sum(g != [0, 0, 0] for (g,) in grids)
    native = NativeSession(out / "switch")
    Decoder(native).run(PROMPT, Sampling(max_new_tokens=N_NEW))
    merges, valid, *held = gate_words(gpu)
    assert merges == launched == native.stats["merge_dispatches"] and valid == 1 and len(held) == 2
    assert gate_words(native) == [merges, valid, *held]  # the wasm commit kernel keeps the same gate


def test_unfused_bundle_is_the_same_model(bundles):
    _, out, _, _ = bundles
    a = Decoder(NativeSession(out / "switch")).run(PROMPT, Sampling(max_new_tokens=N_NEW))
    b_sess = NativeSession(out / "unfused")
    b = Decoder(b_sess).run(PROMPT, Sampling(max_new_tokens=N_NEW))
    assert a["tokens"] == b["tokens"] and _rel(a["logits"], b["logits"]) <= 1e-4
    assert b_sess.stats["merge_dispatches"] == 0
    # The adapters matter: the base model generates something else.
    base = OrtDecoder(zoo.cached("gpt2-tiny")).greedy(PROMPT, N_NEW)
    assert base["tokens"] != a["tokens"]


def test_decode_plan_has_one_merge_step_and_plain_gemms(bundles):
    _, out, _, s_unf = bundles
    m = read_manifest(out / "switch")
    dec = m["decoder"]
    steps = dec["decode"]["steps"]
    assert [st["family"] for st in steps].count("lora_switch") == 1
    assert dec["lora_switch"] == {"pool": 8, "k": 2, "projections": 8, "merged_bytes": dec["lora_switch"]["merged_bytes"]}
    tensors = {t["id"]: t for t in m["tensors"]}
    # The 8 switched gemms read their merged weights from the persistent arena region after the caches.
    switched = [st for st in steps if st["family"] == "gemm" and tensors[st["args"][1]]["name"].endswith("/switched")]
    assert len(switched) == 8
    for st in switched:
        t = tensors[st["args"][1]]
        assert t["storage"] == "arena" and t["offset"] >= dec["state_bytes"] and t["offset"] % 256 == 0
    # No per-token adapter gathers are left in the decode plan; the prefill plan keeps them.
    assert sum(st["family"] == "gemm" for st in steps) < sum(st["family"] == "gemm" for st in m["steps"])
    assert len(steps) < s_unf["decode_steps"]


def test_jit_pick_and_swapping_strategies_mid_generation_stay_exact(bundles):
    """The bundle carries both one-token plans; the runtime times them and may change its mind at any token."""
    src, out, _, _ = bundles
    d = Decoder(NativeSession(out / "switch"))
    report = pick(d, reps=3)
    assert report["strategy"] in ("decode", "decode_unfused") and d.decode_plan == report["strategy"]
    assert report["merge_ms"] > 0 and report["skip_ms"] > 0 and report["unfused_ms"] > 0
    ref = OrtDecoder(src).greedy(PROMPT, N_NEW)
    tokens = []
    for i, tok in enumerate(d.generate(PROMPT, Sampling(max_new_tokens=N_NEW))):
        tokens.append(tok)
        d.decode_plan = "decode" if (i // 5) % 2 else "decode_unfused"  # five tokens each way
    assert tokens == ref["tokens"]


# ----------------------------------------------------------------------------- bad input


def _tiny(tmp_path, K=5, N=3, r=2, pool=4, k=2, width=None, b_cols=None) -> str:
    """x [1, 1, K] → x·W + ReduceSum((x·A[ids])·B[ids]) · 0.5 with ids = TopK(x·R, k)."""
    rng = np.random.default_rng(0)
    width = width or pool
    inits = {"W": rng.standard_normal((K, N)), "R": rng.standard_normal((K, width)),
             "Ap": rng.standard_normal((pool, K, r)), "Bp": rng.standard_normal((pool, r, b_cols or N)),
             "k": np.array([k], np.int64), "ax": np.array([2, 3], np.int64), "u": np.array([2, 3], np.int64),
             "s": np.array(0.5)}
    inits = [numpy_helper.from_array(v.astype(np.float32) if v.dtype == np.float64 else v, n) for n, v in inits.items()]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["base"], "base_mm"),
             helper.make_node("MatMul", ["x", "R"], ["logits"], "router"),
             helper.make_node("TopK", ["logits", "k"], ["vals", "ids"], "topk"),
             helper.make_node("Unsqueeze", ["x", "u"], ["xu"], "unsq"),
             helper.make_node("Gather", ["Ap", "ids"], ["ga"], "gather_a"),
             helper.make_node("Gather", ["Bp", "ids"], ["gb"], "gather_b"),
             helper.make_node("MatMul", ["xu", "ga"], ["xa"], "mm_a"),
             helper.make_node("MatMul", ["xa", "gb"], ["xab"], "mm_b"),
             helper.make_node("ReduceSum", ["xab", "ax"], ["red"], "sum_k", keepdims=0),
             helper.make_node("Mul", ["red", "s"], ["delta"], "scale"),
             helper.make_node("Add", ["base", "delta"], ["y"], "add")]
    g = helper.make_graph(nodes, "tiny_switch", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, K])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_tiny_graph_is_switched(tmp_path):
    g = import_onnx(_tiny(tmp_path))
    info = lora_switch.rewrite(g)
    assert info["segments"] == 1 and info["pool"] == 4 and info["k"] == 2
    assert [n.op for n in g.nodes] == ["MatMul", "TopK", "LoraSwitch", "MatMul"]


def test_adapter_width_not_matching_the_base_weight_is_named(tmp_path):
    # A width-1 B would broadcast in the Add and run; it cannot belong to a 5×3 projection.
    g = import_onnx(_tiny(tmp_path, b_cols=1))
    with pytest.raises(ShapeError, match=r"LoRA-Switch at node 'add' .*pool B 'Bp' has shape \[4, 2, 1\]: "
                                         r"expected \[N, r, 3\].*got 1"):
        lora_switch.rewrite(g)


@pytest.mark.parametrize("k,width,pool", [(5, 5, 4), (3, 8, 4)])
def test_router_choosing_beyond_the_pool_is_named(tmp_path, k, width, pool):
    g = import_onnx(_tiny(tmp_path, k=k, width=width, pool=pool))
    with pytest.raises(ShapeError, match=rf"LoRA-Switch router 'topk': picks k = {k} of {width} adapters, but "
                                         rf"adapter pool 'Ap' holds {pool}"):
        lora_switch.rewrite(g, merge=False)
