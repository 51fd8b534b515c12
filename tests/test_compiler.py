"""Compiler passes, memory plan and named errors (no browser)."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from nnjit.compiler.errors import ModelLoadError, ShapeError, UnsupportedOpError
from nnjit.compiler.onnx_import import import_onnx, parse_shape_args
from nnjit.compiler.pipeline import compile_model, optimize

from .op_cases import CASES, const, model, save

CLI = [sys.executable, "-m", "nnjit.cli.main"]


def cli(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def test_batchnorm_and_epilogues_are_folded(tmp_path):
    save("Conv_bn_folded", tmp_path / "m.onnx")
    g = import_onnx(tmp_path / "m.onnx")
    stats = optimize(g)
    assert stats["batchnorm_folded"] == 1
    assert [n.op for n in g.nodes] == ["Conv"]
    save("MatMul_bias_residual_gelu", tmp_path / "g.onnx")
    g = import_onnx(tmp_path / "g.onnx")
    stats = optimize(g)
    assert stats["gelu_fused"] == 1 and stats["epilogues_fused"] == 3
    node = g.nodes[0]
    assert (node.op, node.attrs["_act"]) == ("MatMul", "gelu") and node.attrs["_residual"] == "r"


def test_shape_chain_folds_to_no_kernels(tmp_path):
    save("Shape_chain_folded", tmp_path / "m.onnx")
    s = compile_model(tmp_path / "m.onnx", tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    # Shape→Gather→Unsqueeze→Concat folds; Reshape aliases; only the output copy of the input remains.
    assert s["folded"] >= 4
    assert [st["family"] for st in m["steps"]] == ["copy"]


def _chain_model(n_layers=6, width=64):
    nodes, inits = [], []
    prev = "x"
    for i in range(n_layers):
        inits.append(const(f"w{i}", (width, width), i))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Sigmoid", [f"m{i}"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    return model(nodes, [("x", T.FLOAT, [8, width])], [("y", T.FLOAT, None)], inits)


def test_memory_plan_reuses_and_never_overlaps_live_buffers(tmp_path):
    onnx.save(_chain_model(), tmp_path / "m.onnx")
    s = compile_model(tmp_path / "m.onnx", tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert s["arena_bytes"] < s["intermediate_bytes"] / 2
    # Recompute lifetimes from the steps and check no two live arena buffers share bytes.
    tensors = m["tensors"]
    first, last = {}, {}
    for k, st in enumerate(m["steps"]):
        for a in st["args"]:
            first.setdefault(a, k)
            last[a] = k
    for i in m["inputs"]:
        first[i["tensor"]] = -1
    for o in m["outputs"]:
        last[o["tensor"]] = len(m["steps"])
    arena = [t for t in tensors if t["storage"] == "arena" and t["id"] in first]
    for a in arena:
        for b in arena:
            if a["id"] >= b["id"] or a["offset"] == b["offset"] and a["bytes"] == b["bytes"] and a["name"] in b["name"]:
                continue
            live = not (last[a["id"]] < first[b["id"]] or last[b["id"]] < first[a["id"]])
            overlap = a["offset"] < b["offset"] + b["bytes"] and b["offset"] < a["offset"] + a["bytes"]
            assert not (live and overlap), (a, b)


def test_memory_below_64_is_reserved_for_the_runtime(tmp_path):
    """Threads count a split call's tasks in the i32 at byte 0: no tensor may start below byte 64."""
    from nnjit.compiler.bundle import BundleError, check_manifest

    onnx.save(_chain_model(), tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["memory"]["weights_base"] >= 64 and m["memory"]["arena_base"] >= 64
    check_manifest(m)
    for key in ("weights_base", "arena_base"):
        bad = json.loads(json.dumps(m))
        bad["memory"][key] = 0
        with pytest.raises(BundleError, match=rf"memory\.{key}.*>= 64.*0"):
            check_manifest(bad)


def test_parse_shape_args():
    assert parse_shape_args(["input_ids=1x128", "seq=7"]) == {"input_ids": [1, 128], "seq": [7]}
    with pytest.raises(ShapeError, match="expected NAME=1x128"):
        parse_shape_args(["oops"])
    with pytest.raises(ShapeError, match="integers"):
        parse_shape_args(["x=1xa"])


def _dynamic_model(path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, ["batch", "seq"])], [("y", T.FLOAT, None)])
    onnx.save(m, path)


def test_unbound_dim_is_named(tmp_path):
    _dynamic_model(tmp_path / "d.onnx")
    with pytest.raises(ShapeError, match=r"input 'x' dim 0 \('batch'\) is dynamic and unbound.*--shape x="):
        import_onnx(tmp_path / "d.onnx")
    g = import_onnx(tmp_path / "d.onnx", {"batch": [2], "seq": [7]})
    assert g.values["y"].shape == (2, 7)
    r = cli("compile", tmp_path / "d.onnx", "-o", tmp_path / "b")
    assert r.returncode == 2 and r.stderr.startswith("ShapeError: ") and "batch" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_not_onnx_and_truncated(tmp_path):
    (tmp_path / "text.onnx").write_text("this is not a model\n" * 10)
    r = cli("compile", tmp_path / "text.onnx", "-o", tmp_path / "b")
    assert r.returncode == 2 and r.stderr.startswith("ModelLoadError: ") and "not an ONNX model" in r.stderr
    save("Conv_3x3_p1", tmp_path / "full.onnx")
    data = (tmp_path / "full.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError):
        import_onnx(tmp_path / "cut.onnx")
    r = cli("compile", tmp_path / "cut.onnx", "-o", tmp_path / "b")
    assert r.returncode == 2 and r.stderr.startswith("ModelLoadError: ")
    r = cli("compile", tmp_path / "missing.onnx", "-o", tmp_path / "b")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_unsupported_op_names_op_node_and_list(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Hardmax", ["r"], ["y"], name="hs_1")],
              [("x", T.FLOAT, [3])], [("y", T.FLOAT, None)], opset=17)
    onnx.save(m, tmp_path / "u.onnx")
    with pytest.raises(UnsupportedOpError) as e:
        compile_model(tmp_path / "u.onnx", tmp_path / "b")
    msg = str(e.value)
    assert "'Hardmax'" in msg and "'hs_1'" in msg and "MatMul" in msg and "Softmax" in msg
    r = cli("compile", tmp_path / "u.onnx", "-o", tmp_path / "b")
    assert r.returncode == 2 and r.stderr.startswith("UnsupportedOpError: ") and "Hardmax" in r.stderr


def test_compile_cli_reports_memory(tmp_path):
    onnx.save(_chain_model(), tmp_path / "m.onnx")
    r = cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "b", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["arena_bytes"] < s["intermediate_bytes"] and s["steps"] == 6
    assert (tmp_path / "b" / "manifest.json").is_file()


def test_cases_cover_the_op_set():
    required = {"MatMul", "Gemm", "Conv", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Relu", "Clip", "Sigmoid",
                "Tanh", "Erf", "Gelu", "Softmax", "LayerNormalization", "BatchNormalization", "MaxPool",
                "AveragePool", "GlobalAveragePool", "ReduceMean", "Reshape", "Flatten", "Transpose", "Concat",
                "Gather", "Slice", "Squeeze", "Unsqueeze", "Expand", "Where", "Cast", "Shape", "Constant", "Identity"}
    seen = {n.op_type for m, _, _ in CASES.values() for n in m.graph.node}
    assert required <= seen, required - seen


def test_native_session_rejects_bad_inputs(tmp_path):
    from nnjit.compiler.errors import InputError
    from nnjit.compiler.native_runtime import NativeSession
    save("Relu_7x37", tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    s = NativeSession(tmp_path / "b")
    with pytest.raises(InputError, match=r"expected shape \[7, 37\], got \[37, 7\]"):
        s.run({"x": np.zeros((37, 7), np.float32)})
    with pytest.raises(InputError, match="expected dtype float32, got float64"):
        s.run({"x": np.zeros((7, 37))})
    with pytest.raises(InputError, match="unknown input 'z'"):
        s.run({"z": np.zeros((7, 37), np.float32)})


def test_shape_inference_crash_is_a_named_error_and_the_next_model_compiles(tmp_path, monkeypatch):
    """onnx's C++ shape inference can abort the process; it runs in a child, so an abort (played
    here by a child that aborts on its first message) is a ShapeError and the compiler goes on."""
    from nnjit.compiler import shape_inference_worker as siw
    w = siw._Worker()
    monkeypatch.setattr(siw, "_worker", w)
    real_start = w._start
    w._start = lambda: setattr(w, "proc", subprocess.Popen(
        [sys.executable, "-c", "import os, sys; sys.stdin.buffer.read(8); os.abort()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    onnx.save(model([helper.make_node("Relu", ["x"], ["y"])], [("x", T.FLOAT, [2, 3])], [("y", T.FLOAT, [2, 3])]),
              tmp_path / "m.onnx")
    with pytest.raises(ShapeError, match=r"m\.onnx: onnx shape inference crashed \(signal 6\)"):
        import_onnx(tmp_path / "m.onnx")
    w._start = real_start
    g = import_onnx(tmp_path / "m.onnx")
    assert g.values["y"].shape == (2, 3) and w.proc.poll() is None


def test_a_map_input_is_named_as_such(tmp_path):
    tp = helper.make_map_type_proto(T.INT64, helper.make_tensor_type_proto(T.FLOAT, [2]))
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_value_info("x", tp)], [helper.make_value_info("y", tp)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "map.onnx")
    with pytest.raises(UnsupportedOpError, match=r"input 'x': a map_type value; only tensors, sequences and optionals"):
        import_onnx(tmp_path / "map.onnx")
