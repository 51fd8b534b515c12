"""Numerical edge cases against onnxruntime, on wasm (wasmtime) and WebGPU (wgpu-py): NaN and Inf
propagation, softmax of huge logits, layernorm of constant rows, empty tensors."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.compiler.gpu_runtime import GPUSession
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

F = TensorProto.FLOAT
NAN, INF = np.float32(np.nan), np.float32(np.inf)


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "edge", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _check(tmp_path, model, feeds, rtol=1e-5):
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    compile_model(path, tmp_path / "b")
    names = [o.name for o in model.graph.output]
    for session in (NativeSession(tmp_path / "b"), GPUSession(tmp_path / "b")):
        got = session.run(feeds)
        for name, w in zip(names, want):
            g = got[name]
            assert g.shape == w.shape, (type(session).__name__, name)
            # NaN where onnxruntime has NaN, the same infinities, the rest close.
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{type(session).__name__} {name} NaN")
            fin = np.isfinite(w)
            np.testing.assert_array_equal(g[~fin & ~np.isnan(w)], w[~fin & ~np.isnan(w)])
            np.testing.assert_allclose(g[fin], w[fin], rtol=rtol, atol=1e-6, err_msg=f"{type(session).__name__} {name}")


SPECIALS = np.array([[0.0, -0.0, 1.0, -2.5, NAN, INF, -INF, 3e38, -3e38, 1e-40, 7.0]], np.float32)


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Sqrt", "Erf", "Reciprocal"])
def test_unary_specials(tmp_path, op):
    x = helper.make_tensor_value_info("x", F, list(SPECIALS.shape))
    y = helper.make_tensor_value_info("y", F, list(SPECIALS.shape))
    _check(tmp_path, _model([helper.make_node(op, ["x"], ["y"])], [x], [y]), {"x": SPECIALS})


@pytest.mark.parametrize("op", ["Add", "Mul", "Sub", "Div", "Max", "Min"])
def test_binary_specials(tmp_path, op):
    a = np.repeat(SPECIALS, SPECIALS.shape[1], axis=0)
    b = a.T.copy()
    vi = lambda n: helper.make_tensor_value_info(n, F, list(a.shape))
    _check(tmp_path, _model([helper.make_node(op, ["a", "b"], ["y"])], [vi("a"), vi("b")], [vi("y")]), {"a": a, "b": b})


def test_matmul_and_reductions_propagate_nan_and_inf(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 37)).astype(np.float32)
    a[1, 3], a[2, 5], a[4, 0], a[4, 1] = NAN, INF, INF, -INF  # row 4: inf - inf = NaN
    b = rng.standard_normal((37, 13)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "b"], ["mm"]),
             helper.make_node("ReduceSum", ["a", "axes"], ["rs"], keepdims=1),
             helper.make_node("ReduceMax", ["a"], ["rm"], axes=[1], keepdims=1),
             helper.make_node("ReduceMean", ["a"], ["rmean"], axes=[1], keepdims=1)]
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array([1], np.int64), "axes")]
    outs = [helper.make_tensor_value_info(n, F, s) for n, s in (("mm", [7, 13]), ("rs", [7, 1]), ("rm", [7, 1]), ("rmean", [7, 1]))]
    _check(tmp_path, _model(nodes, [helper.make_tensor_value_info("a", F, [7, 37])], outs, inits), {"a": a})


def test_softmax_of_huge_logits(tmp_path):
    x = np.array([[1e4, 1e4 - 1, -1e4, 0], [3e38, 3e38, 3e38, 3e38], [-3e38, -3e38, 0, -3e38],
                  [88.7, 89.0, -87.0, 100.0], [-1e30, -1e30, -1e30, -1e30]], np.float32)
    vi = lambda n: helper.make_tensor_value_info(n, F, list(x.shape))
    _check(tmp_path, _model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [vi("x")], [vi("y")]), {"x": x})


def test_layernorm_of_constant_rows(tmp_path):
    x = np.stack([np.full(37, 5.0), np.zeros(37), np.full(37, -1e6), np.linspace(-1, 1, 37)]).astype(np.float32)
    scale = np.linspace(0.5, 2, 37).astype(np.float32)
    bias = np.linspace(-1, 1, 37).astype(np.float32)
    vi = lambda n: helper.make_tensor_value_info(n, F, list(x.shape))
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)
    inits = [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(bias, "b")]
    _check(tmp_path, _model([node], [vi("x")], [vi("y")], inits), {"x": x}, rtol=1e-4)


def test_empty_tensors(tmp_path):
    """A zero-length slice concatenated onto a tensor, and a reduction that keeps a zero-length dim."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax"], ["empty"]),
             helper.make_node("Concat", ["x", "empty"], ["cat"], axis=1),
             helper.make_node("Relu", ["empty"], ["relu_empty"])]
    inits = [numpy_helper.from_array(np.array([2], np.int64), n) if n != "ax" else numpy_helper.from_array(np.array([1], np.int64), n)
             for n in ("st", "en", "ax")]
    outs = [helper.make_tensor_value_info("cat", F, [3, 4]), helper.make_tensor_value_info("relu_empty", F, [3, 0])]
    _check(tmp_path, _model(nodes, [helper.make_tensor_value_info("x", F, [3, 4])], outs, inits), {"x": x})
