"""`--bind NAME=...` (compile_model(bind=...)): graph inputs frozen to constants at compile time; and
bundles with a step WGSL cannot hold (wasm only, named on WebGPU)."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from nnjit.compiler.bind import parse_bind_args
from nnjit.compiler.errors import BundleError, ShapeError, UnsupportedOpError
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

from .op_cases import model


def cli(*args):
    return subprocess.run([sys.executable, "-m", "nnjit.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _slice_model(path):
    m = model([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])],
              [("x", T.FLOAT, [7, 37]), ("starts", T.INT64, [2]), ("ends", T.INT64, [2]), ("axes", T.INT64, [2])],
              [("y", T.FLOAT, None)], opset=17)
    onnx.save(m, path)
    return path


def test_runtime_shape_input_error_names_it_and_suggests_bind(tmp_path):
    with pytest.raises(ShapeError) as e:  # the output's shape is unknown before the op is even lowered
        compile_model(_slice_model(tmp_path / "m.onnx"), tmp_path / "b")
    assert e.value.needs_constant == "starts"
    assert "'starts', 'ends', 'axes'" in str(e.value) and "--bind starts=" in str(e.value)
    m = onnx.load(tmp_path / "m.onnx")
    m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 5  # declared: now the lowering asks
    m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 7
    onnx.save(m, tmp_path / "d.onnx")
    with pytest.raises(UnsupportedOpError) as e:
        compile_model(tmp_path / "d.onnx", tmp_path / "b")
    assert e.value.needs_constant == "starts"
    assert "'starts' is a graph input" in str(e.value) and "--bind starts=" in str(e.value)


def test_bound_inputs_leave_the_bundle_and_fold_into_shapes(tmp_path):
    bind = {"starts": np.array([1, -2]), "ends": np.array([6, 3]), "axes": np.array([0, 1])}
    compile_model(_slice_model(tmp_path / "m.onnx"), tmp_path / "b", bind=bind)
    s = NativeSession(tmp_path / "b")
    assert [i["name"] for i in s.manifest["inputs"]] == ["x"]
    x = np.random.default_rng(0).standard_normal((7, 37)).astype(np.float32)
    np.testing.assert_array_equal(s.run({"x": x})["y"], x[1:6, 35:3])  # empty along axis 1: shape (5, 0)
    bind["ends"] = np.array([6, 1000])
    bind["starts"] = np.array([1, 30])
    compile_model(tmp_path / "m.onnx", tmp_path / "b2", bind=bind)
    np.testing.assert_array_equal(NativeSession(tmp_path / "b2").run({"x": x})["y"], x[1:6, 30:])


@pytest.mark.parametrize("bind, msg", [
    ({"nope": np.array([1])}, "not a graph input"),
    ({"starts": np.array([[1, 2]])}, "rank 1"),
    ({"starts": np.array([1, 2, 3])}, "fixed at 2"),
    ({"starts": np.array([1.5, 2])}, "do not convert exactly"),
])
def test_bad_bind_is_a_shape_error(tmp_path, bind, msg):
    with pytest.raises(ShapeError, match=msg):
        compile_model(_slice_model(tmp_path / "m.onnx"), tmp_path / "b", bind=bind)


def test_parse_bind_args(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
    out = parse_bind_args(["a=1,-2,3", "b=0.5,2", "c=", f"d={tmp_path / 'a.npy'}"])
    assert out["a"].tolist() == [1, -2, 3] and out["a"].dtype == np.int64
    assert out["b"].tolist() == [0.5, 2.0] and out["c"].size == 0
    assert out["d"].shape == (2, 3)
    for bad in ("noequals", "x=1,two"):
        with pytest.raises(ShapeError):
            parse_bind_args([bad])


def test_cli_bind(tmp_path):
    path = _slice_model(tmp_path / "m.onnx")
    r = cli("compile", path, "-o", tmp_path / "b", "--bind", "starts=1,2", "--bind", "ends=5,9",
            "--bind", "axes=0,1", "--json")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [i["name"] for i in man["inputs"]] == ["x"] and man["outputs"][0]["shape"] == [4, 7]
    r = cli("compile", path, "-o", tmp_path / "b2")
    assert r.returncode == 2 and r.stderr.startswith("ShapeError: ") and "--bind starts=" in r.stderr


def test_wasm_only_dtype_step_runs_on_wasm_and_is_named_on_webgpu(tmp_path):
    # float64 arithmetic has no WGSL kernel (only float64 max/min and casts do)
    m = model([helper.make_node("Mul", ["a", "b"], ["y"])], [("a", T.DOUBLE, [3, 7]), ("b", T.DOUBLE, [7])],
              [("y", T.DOUBLE, None)], opset=17)
    onnx.save(m, tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert all("webgpu" not in s["candidates"] for s in man["steps"])
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 7)) * 1e100, rng.standard_normal(7) * 1e-3
    np.testing.assert_array_equal(NativeSession(tmp_path / "b").run({"a": a, "b": b})["y"], a * b)
    pytest.importorskip("wgpu")
    from nnjit.compiler.gpu_runtime import GPUSession
    with pytest.raises(BundleError, match="no webgpu kernel for step 0 .*binary mul on float64"):
        GPUSession(tmp_path / "b")
    with pytest.raises(UnsupportedOpError, match="binary mul on float64"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b3", backends=("webgpu",))
