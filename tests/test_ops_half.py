"""16-bit floats through the whole compiler (passes/widen_half.py) on wasm (wasmtime) and WebGPU (wgpu-py),
odd sizes 1, 7, 37, 130. float16 against onnxruntime in float16 where it takes the op in float16; else, and
for bfloat16 (which onnxruntime's CPU provider lacks for these ops), against onnxruntime on the same values in
float32, rounded to the 16-bit type (the semantics the pass implements: compute in float32, round once to
nearest even). onnx's reference evaluator is no
oracle here: it computes bfloat16 Softmax or ReduceMean with a bfloat16 rounding after every numpy step.
Moves keep their 16-bit bits (no Cast steps); every other op must be widened."""
import json

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

DTYPES = {"float16": (T.FLOAT16, np.float16), "bfloat16": (T.BFLOAT16, ml_dtypes.bfloat16)}
# One unit in the last place of a value near the largest output, relative: float16 11 bits, bfloat16 8.
ULP = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}


def _model(op, shape, dt, extra=(), inits=(), out_shape=None, out_type=None, opset=21, **attrs):
    t = DTYPES[dt][0]
    inputs = [helper.make_tensor_value_info("x", t, shape)]
    inputs += [helper.make_tensor_value_info(n, t, s) for n, s in extra]
    node = helper.make_node(op, ["x"] + [n for n, _ in extra] + [n for n, _ in inits], ["y"], **attrs)
    g = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info("y", out_type or t, out_shape)],
                          [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def _w(dt, shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(DTYPES[dt][1])


# name → (builder(dt) → model, input shapes, widened?, positive inputs?)
CASES = {
    "Relu_1": (lambda dt: _model("Relu", [1], dt), {"x": (1,)}, True, False),
    "Sigmoid_7": (lambda dt: _model("Sigmoid", [7], dt), {"x": (7,)}, True, False),
    "Tanh_37": (lambda dt: _model("Tanh", [37], dt), {"x": (37,)}, True, False),
    "Exp_130": (lambda dt: _model("Exp", [130], dt), {"x": (130,)}, True, False),
    "Erf_3x37": (lambda dt: _model("Erf", [3, 37], dt), {"x": (3, 37)}, True, False),
    "Sqrt_130": (lambda dt: _model("Sqrt", [130], dt), {"x": (130,)}, True, True),
    "Celu_7": (lambda dt: _model("Celu", [7], dt, alpha=2.0), {"x": (7,)}, True, False),
    "Elu_37": (lambda dt: _model("Elu", [37], dt), {"x": (37,)}, True, False),
    "Softplus_130": (lambda dt: _model("Softplus", [130], dt), {"x": (130,)}, True, False),
    "HardSwish_1": (lambda dt: _model("HardSwish", [1], dt), {"x": (1,)}, True, False),
    "Round_37": (lambda dt: _model("Round", [37], dt), {"x": (37,)}, True, False),  # integer-like: exact
    "Sign_130": (lambda dt: _model("Sign", [130], dt), {"x": (130,)}, True, False),
    "Pow_7": (lambda dt: _model("Pow", [7], dt, extra=[("e", [7])]), {"x": (7,), "e": (7,)}, True, True),
    "Less_37": (lambda dt: _model("Less", [37], dt, extra=[("b", [1])], out_type=T.BOOL), {"x": (37,), "b": (1,)},
                True, False),
    "MatMul_7x37x130": (lambda dt: _model("MatMul", [7, 37], dt, inits=[("w", _w(dt, (37, 130), 1) / 6)]),
                        {"x": (7, 37)}, True, False),
    "Softmax_7x130": (lambda dt: _model("Softmax", [7, 130], dt), {"x": (7, 130)}, True, False),
    "ReduceMean_37x7": (lambda dt: _model("ReduceMean", [37, 7], dt, inits=[("a", np.array([1]))]),
                        {"x": (37, 7)}, True, False),
    "LayerNorm_7x37": (lambda dt: _model("LayerNormalization", [7, 37], dt,
                                         inits=[("s", _w(dt, (37,), 2)), ("b", _w(dt, (37,), 3))]),
                       {"x": (7, 37)}, True, False),
    "Transpose_7x37": (lambda dt: _model("Transpose", [7, 37], dt, perm=[1, 0]), {"x": (7, 37)}, False, False),
    "Concat_1_130": (lambda dt: _model("Concat", [1, 130], dt, extra=[("b", [7, 130])], axis=0),
                     {"x": (1, 130), "b": (7, 130)}, False, False),
    "Slice_130": (lambda dt: _model("Slice", [130], dt, inits=[("s", np.array([129])), ("e", np.array([-131])),
                                                               ("a", np.array([0])), ("k", np.array([-3]))]),
                  {"x": (130,)}, False, False),
    "Pad_reflect_7x37": (lambda dt: _model("Pad", [7, 37], dt, inits=[("p", np.array([1, 2, 3, 4]))], mode="reflect"),
                         {"x": (7, 37)}, False, False),
    "Trilu_37x7": (lambda dt: _model("Trilu", [37, 7], dt, inits=[("k", np.array(-1))], upper=0), {"x": (37, 7)},
                   False, False),
    "Gather_37x7": (lambda dt: _model("Gather", [37, 7], dt, inits=[("i", np.array([36, 0, 5, -1]))]),
                    {"x": (37, 7)}, False, False),
}


def _feeds(name, dt):
    r = np.random.default_rng(len(name))
    out = {}
    for k, s in CASES[name][1].items():
        a = r.standard_normal(s) * 2
        out[k] = (np.abs(a) + 0.1 if CASES[name][3] else a).astype(DTYPES[dt][1])
    return out


def _as_float32(m):
    """The same model on float32 tensors, 16-bit initializers widened (exactly)."""
    m = onnx.ModelProto.FromString(m.SerializeToString())
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type in (T.FLOAT16, T.BFLOAT16):
            v.type.tensor_type.elem_type = T.FLOAT
    for k, t in enumerate(m.graph.initializer):
        if t.data_type in (T.FLOAT16, T.BFLOAT16):
            m.graph.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    return m


def _expected(m, feeds, dt):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if dt == "float16":
        try:
            return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        except (ort.capi.onnxruntime_pybind11_state.InvalidGraph, ort.capi.onnxruntime_pybind11_state.NotImplemented):
            pass  # an op whose float16 form is newer than onnxruntime's schema (Celu)
    m, feeds = _as_float32(m), {k: v.astype(np.float32) for k, v in feeds.items()}
    out = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    return out.astype(DTYPES[dt][1]) if out.dtype == np.float32 else out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Each case compiled once per dtype, shared by both backends' tests."""
    made = {}

    def get(name, dt):
        if (name, dt) not in made:
            d = tmp_path_factory.mktemp(f"{name}_{dt}")
            onnx.save(CASES[name][0](dt), d / "m.onnx")
            compile_model(d / "m.onnx", d / "b", backends=("wasm", "webgpu"))
            made[name, dt] = d
        return made[name, dt]
    return get


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
@pytest.mark.parametrize("dt", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(CASES))
def test_half_op(name, dt, backend, bundles, request):
    d = bundles(name, dt)
    manifest = json.loads((d / "b" / "manifest.json").read_text())
    families = [s["family"] for s in manifest["steps"]]
    widened = CASES[name][2]
    assert ("cast" in families) == widened, families
    if backend == "webgpu":
        from nnjit.compiler.gpu_runtime import webgpu_gap
        gap = webgpu_gap(manifest)
        if gap:  # WGSL gather moves whole u32 words: 2-byte elements run on wasm (docs/kernels_wgsl.md)
            assert name.startswith("Gather") and "gather of 2-byte elements" in gap, gap
            pytest.skip(gap)
    session = NativeSession if backend == "wasm" else request.getfixturevalue("gpu_session")
    feeds = _feeds(name, dt)
    out = session(d / "b").run(feeds)["y"]
    ref = _expected(onnx.load(d / "m.onnx"), feeds, dt)
    assert out.shape == ref.shape and out.dtype == ref.dtype, (out.shape, out.dtype, ref.shape, ref.dtype)
    if not widened or ref.dtype == np.bool_:
        np.testing.assert_array_equal(out.view(np.uint8), ref.view(np.uint8))  # moved bits, or exact compares
        return
    o, r = out.astype(np.float64), ref.astype(np.float64)
    # one rounding of a float32 result: at most an ulp of the largest value from the reference's own rounding
    # (two where its float32 math differs from ours by an ulp across a rounding boundary)
    assert np.abs(o - r).max() <= 2 * ULP[dt] * max(np.abs(r).max(), 1e-3), np.abs(o - r).max()


def test_float16_add_keeps_its_kernel(tmp_path):
    """float16 Add has a kernel of its own (the binary kernel's float16 path): no Casts around it."""
    onnx.save(_model("Add", [7], "float16", extra=[("b", [7])]), tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    steps = json.loads((tmp_path / "b" / "manifest.json").read_text())["steps"]
    assert [s["family"] for s in steps] == ["binary"]
    feeds = {"x": _w("float16", (7,), 4), "b": _w("float16", (7,), 5)}
    np.testing.assert_array_equal(NativeSession(tmp_path / "b").run(feeds)["y"], feeds["x"] + feeds["b"])


def test_bfloat16_rounds_to_nearest_even(tmp_path):
    """bfloat16 Add (widened) rounds its float32 sum to nearest, ties to even, as ml_dtypes' astype does
    (truncation would give 1, 1.0078125, 1.0078125, -2.984375)."""
    m = _model("Add", [4], "bfloat16", extra=[("b", [4])])
    onnx.save(m, tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    # 1 + 2^-8 is exactly halfway between two bfloat16 neighbours of 1: ties go to the even one (1.0);
    # 1 + 3·2^-8 is halfway too and goes up to the even 1 + 2^-6 (bits ...0)
    x = np.array([1.0, 1.0, 1.0078125, -3.0], ml_dtypes.bfloat16)
    b = np.array([2 ** -8, 3 * 2 ** -8, 2 ** -8, 2 ** -9], ml_dtypes.bfloat16)
    out = NativeSession(tmp_path / "b").run({"x": x, "b": b})["y"]
    want = (x.astype(np.float32) + b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(out.view(np.uint16), want.view(np.uint16))
    np.testing.assert_array_equal(out.astype(np.float32), [1.0, 1.015625, 1.015625, -3.0])


def test_float16_mlp_end_to_end(tmp_path, request):
    """A torch MLP exported in half precision (Gemm, the erf GELU, LayerNormalization, Softmax, all float16):
    every compute node widened, the result within two float16 ulps of onnxruntime's on both backends."""
    torch = pytest.importorskip("torch")
    from nnjit.bench.zoo import _torch_export
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(37, 130), torch.nn.GELU(), torch.nn.LayerNorm(130),
                              torch.nn.Linear(130, 7), torch.nn.Softmax(-1)).half()
    _torch_export(net, (torch.zeros(5, 37, dtype=torch.float16),), tmp_path / "m.onnx", ["x"], ["y"])
    summary = compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm", "webgpu"))
    assert summary["gelu_fused"] == 1 and summary["half_widened"] == 5  # Gemm, Gelu, LayerNorm, Gemm, Softmax
    x = np.random.default_rng(0).standard_normal((5, 37)).astype(np.float16)
    import onnxruntime as ort
    ref = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert ref.dtype == np.float16
    for backend in ("wasm", "webgpu"):
        session = NativeSession if backend == "wasm" else request.getfixturevalue("gpu_session")
        y = session(tmp_path / "b").run({"x": x})["y"]
        assert y.dtype == np.float16 and y.shape == (5, 7)
        err = np.abs(y.astype(np.float64) - ref).max()
        assert err <= 2 * ULP["float16"] * np.abs(ref).max(), (backend, err)
        np.testing.assert_allclose(y.astype(np.float64).sum(-1), 1.0, atol=5e-3)  # still a softmax
