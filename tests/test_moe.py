"""MoE (docs/moe.md): the pass fuses exported batched_mm MoE blocks into one moe step that matches
onnxruntime on odd shapes; a full committee equals the plain bundle bit for bit under every policy;
swap stays exact with fewer slots; substitute/skip tables; named errors for bad options and k > E;
the planner and `nnjit moe-plan`."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nnjit.bench import zoo, zoo_moe
from nnjit.compiler.errors import InputError, ShapeError
from nnjit.compiler.moe_options import POLICIES
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

B = 7  # tokens per batch: odd on purpose


def _ort(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


@pytest.fixture(scope="module")
def digits():
    return zoo_moe.digits_flat()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("moe") / "b"
    summary = compile_model(zoo.cached("moe-digits"), out, {"input": [B, 64]}, backends=("wasm",))
    return out, summary


def _batches(x, n=6):
    return [x[i * B:(i + 1) * B] for i in range(n)]


def test_moe_digits_fused_matches_onnxruntime(bundle, digits):
    out, summary = bundle
    assert summary["moe_fused"] == 1
    families = [s["family"] for s in json.loads((out / "manifest.json").read_text())["steps"]]
    assert families.count("moe") == 1 and "gather" not in families
    sess = NativeSession(out)
    for x in _batches(digits[2]):
        got, want = sess.run({"input": x})["logits"], _ort(zoo.cached("moe-digits"), x)
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
        assert np.array_equal(got.argmax(1), want.argmax(1))


def test_held_out_accuracy_matches_onnxruntime_and_torch(bundle, digits):
    _, _, x_te, y_te = digits
    n = len(x_te) // B * B
    sess = NativeSession(bundle[0])
    ours = np.concatenate([sess.run({"input": x_te[i:i + B]})["logits"].argmax(1) for i in range(0, n, B)])
    ref = _ort(zoo.cached("moe-digits"), x_te).argmax(1)
    assert np.array_equal(ours, ref[:n])
    assert abs(float((ref == y_te).mean()) - zoo_moe.torch_accuracy_from_doc(zoo.cached("moe-digits"))) < 1e-4  # doc: 4 decimals
    assert (ours == y_te[:n]).mean() > zoo_moe.MIN_ACCURACY


@pytest.mark.parametrize("policy", POLICIES)
def test_full_committee_equals_plain_exactly(bundle, digits, policy):
    out, _ = bundle
    plain = NativeSession(out)
    full = NativeSession(out, moe={"residentExperts": 8, "policy": policy})
    assert full.manifest["memory"]["total_bytes"] == plain.manifest["memory"]["total_bytes"]
    for x in _batches(digits[2]):
        assert np.array_equal(full.run({"input": x})["logits"], plain.run({"input": x})["logits"])


def test_swap_is_exact_with_two_slots_and_saves_memory(bundle, digits):
    out, _ = bundle
    plain = NativeSession(out)
    swap = NativeSession(out, moe={"residentExperts": 2, "policy": "swap"})
    for x in _batches(digits[2]):
        assert np.array_equal(swap.run({"input": x})["logits"], plain.run({"input": x})["logits"])
    assert swap.moe.swaps > 0 and swap.moe.swap_bytes == swap.moe.swaps * swap.moe.layers[0].slot_bytes
    slot = swap.moe.layers[0].slot_bytes
    saved = plain.manifest["memory"]["total_bytes"] - swap.manifest["memory"]["total_bytes"]
    assert saved == -(-8 * slot // 256) * 256 - -(-2 * slot // 256) * 256


def test_substitute_and_skip_tables(bundle):
    out, _ = bundle
    plan = {"layers": [{"node": _node(out), "ranking": [5, 2, 7, 0, 1, 3, 4, 6],
                        "similar": [[c for c in [7, 6, 5, 4, 3, 2, 1, 0] if c != e] for e in range(8)]}]}
    for policy in ("substitute", "skip"):
        s = NativeSession(out, moe={"residentExperts": 3, "policy": policy, "plan": plan})
        layer = s.moe.layers[0]
        table = s.mem.view(s.addr(layer.table_tid), (8,), np.int32)
        assert layer.committee == [5, 2, 7]
        if policy == "skip":
            assert table.tolist() == [-1, -1, 1, -1, -1, 0, -1, 2]
        else:  # every outsider's most similar resident expert is 7 (slot 2); residents read their own slot
            assert table.tolist() == [2, 2, 1, 2, 2, 0, 2, 2]
        stored = s.mem.view(s.addr(layer.store_tid), (3, layer.slot_bytes // 4), np.float32)
        assert np.array_equal(stored, layer.store[[5, 2, 7]])


def _node(out) -> str:
    m = json.loads((out / "manifest.json").read_text())
    return next(s["node"] for s in m["steps"] if s["family"] == "moe")


@pytest.mark.parametrize("options,match", [
    ({"budgetBytes": 1000}, "budgetBytes: expected at least one expert"),
    ({"residentExperts": 9}, r"residentExperts: expected 1\.\.8"),
    ({"residentExperts": 0}, r"residentExperts: expected 1\.\.8"),
    ({"residentExperts": 4, "policy": "evict"}, "policy: expected one of swap, substitute, skip"),
    ({"residentExperts": 1, "policy": "swap"}, "needs at least k = 2"),
    ({"residentExperts": 4, "budgetBytes": 10 ** 6}, "not both"),
    ({"residentExperts": 4, "plan": {"layers": []}}, "no entry for MoE layer"),
])
def test_bad_options_are_named(bundle, options, match):
    with pytest.raises(InputError, match=match):
        NativeSession(bundle[0], moe=options)


def test_plan_naming_missing_expert(bundle):
    plan = {"layers": [{"node": _node(bundle[0]), "ranking": [0, 1, 2, 3, 4, 5, 6, 9], "similar": []}]}
    with pytest.raises(InputError, match=r"permutation of experts 0\.\.7.*no experts \[9\]"):
        NativeSession(bundle[0], moe={"residentExperts": 4, "plan": plan})


def test_k_larger_than_experts_is_a_shape_error(tmp_path):
    m = onnx.load(str(zoo.cached("moe-digits")))
    topk = next(n for n in m.graph.node if n.op_type == "TopK")
    const = next(n for n in m.graph.node if n.output[0] == topk.input[1])
    const.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array([9], np.int64)))
    onnx.save(m, str(tmp_path / "k9.onnx"))
    with pytest.raises(ShapeError, match=r"top-k of 9 experts out of 8"):
        compile_model(tmp_path / "k9.onnx", tmp_path / "b", {"input": [B, 64]}, backends=("wasm",))


@pytest.mark.parametrize("T,H,F,E,k,act", [(37, 7, 5, 3, 1, "relu"), (1, 37, 130, 8, 2, "gelu"),
                                           (7, 130, 7, 3, 2, "silu")])
def test_pass_on_odd_shapes_matches_onnxruntime(tmp_path, T, H, F, E, k, act):
    torch.manual_seed(T + H)
    fn = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu}[act]
    net = zoo_moe.moe_block_class()(H, F, E, k, act=fn).eval()
    zoo._torch_export(net, (torch.zeros(T, H),), tmp_path / "m.onnx", ["input"], ["y"])
    summary = compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm",))
    assert summary["moe_fused"] == 1
    x = np.random.default_rng(1).standard_normal((T, H)).astype(np.float32)
    got = NativeSession(tmp_path / "b").run({"input": x})["y"]
    want = _ort(tmp_path / "m.onnx", x)
    assert np.abs(got - want).max() <= 2e-5 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("T,H,F,E,k", [(7, 37, 19, 5, 2), (1, 8, 130, 8, 2), (37, 7, 4, 3, 1)])
def test_transformers_mixtral_block_fuses_and_matches_onnxruntime(tmp_path, T, H, F, E, k):
    """transformers' MixtralSparseMoeBlock with experts_implementation="batched_mm" (gated SwiGLU experts,
    no biases, a float Cast in the router) exported by the TorchScript exporter."""
    pytest.importorskip("transformers")
    block = zoo_moe.mixtral_block(H, F, E, k, seed=T)
    zoo._torch_export(block, (torch.zeros(1, T, H),), tmp_path / "m.onnx", ["input"], ["y"])
    summary = compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm",))
    assert summary["moe_fused"] == 1
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    moe = next(kern for kern in manifest["kernels"] if kern["family"] == "moe")["config"]
    assert moe["gated"] and moe["act"] == "silu" and moe["F"] == F
    x = np.random.default_rng(2).standard_normal((1, T, H)).astype(np.float32)
    got = NativeSession(tmp_path / "b").run({"input": x})["y"]
    want = _ort(tmp_path / "m.onnx", x)
    with torch.no_grad():
        ref = block(torch.from_numpy(x)).numpy()
    assert np.abs(want - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    assert np.abs(got - want).max() <= 2e-5 * max(1.0, np.abs(want).max())


def test_moe_plan_cli(bundle, digits, tmp_path, capsys):
    from nnjit.cli.main import main
    np.savez(tmp_path / "calib.npz", input=digits[0][:70])
    assert main(["moe-plan", str(bundle[0]), "--calib", str(tmp_path / "calib.npz"), "--resident", "3",
                 "-o", str(tmp_path / "plan.json")]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    layer = plan["layers"][0]
    assert plan["calibration_batches"] == 10 and sum(layer["frequency"]) == 70 * 2
    assert sorted(layer["ranking"]) == list(range(8)) and layer["committee"] == layer["ranking"][:3]
    assert layer["frequency"][layer["ranking"][0]] == max(layer["frequency"])
    s = NativeSession(bundle[0], moe={"residentExperts": 3, "policy": "substitute", "plan": str(tmp_path / "plan.json")})
    assert s.moe.layers[0].committee == layer["committee"]
    assert main(["moe-plan", str(bundle[0]), "--calib", str(tmp_path / "calib.npz"), "--budget-bytes", "100",
                 "-o", str(tmp_path / "p2.json")]) == 2
    assert "InputError: moe.budgetBytes" in capsys.readouterr().err
