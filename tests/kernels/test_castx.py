"""The cast kernel on ONNX's Cast-only dtypes (bfloat16, float8 ×5, float4e2m1, int4/uint4/int2/uint2,
packed) vs onnx's reference (onnx.numpy_helper.saturate_cast / to_float8e8m0 and ml_dtypes, which it
uses): every code point of the 8-bit formats decoded, encoding checked on every representable value,
every midpoint between neighbours (ties to even), their neighbours one f32 ulp away, out-of-range values,
±inf, NaN and ±0; packed outputs on odd sizes. `run` is the backend's; tests/kernels_wgsl imports these."""
import numpy as np
import onnx.numpy_helper as nh
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.ir import NP_DTYPES, PACKED, from_bytes, tensor_bytes, to_bytes
from nnjit.compiler.wasm_native import run_kernel

FLOAT8 = ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"]
SMALL_FLOATS = FLOAT8 + ["float4e2m1", "bfloat16"]
NARROW_INTS = ["int4", "uint4", "int2", "uint2"]
SIZES = [1, 7, 37, 130]


def run_wasm(params, x_bytes, out_bytes):
    plain, _ = build("cast", params)
    return run_kernel(plain, [x_bytes], [((out_bytes,), np.uint8)])[0]


def cast(run, x: np.ndarray, src: str, dst: str, **attrs) -> np.ndarray:
    """x (numpy, src's NP dtype) through the kernel; the result as dst's numpy dtype (unpacked)."""
    raw = np.frombuffer(to_bytes(x, src), np.uint8).copy()
    if raw.size == 0:
        raw = np.zeros(1, np.uint8)
    y = run({"n": int(x.size), "src": src, "dst": dst, **attrs}, raw, tensor_bytes(dst, x.size))
    return from_bytes(y.tobytes(), dst, x.shape)


def codes(dt):
    n = 1 << (16 if dt == "bfloat16" else (4 if dt == "float4e2m1" else 8))
    u = np.arange(n, dtype=np.uint16 if dt == "bfloat16" else np.uint8)
    return u.view(NP_DTYPES[dt]) if dt not in PACKED else u.astype(np.uint8).view(NP_DTYPES[dt])


def same_float(got, want):
    """Equal values with equal signs of zero, NaN where NaN."""
    with np.errstate(invalid="ignore"):
        g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    ok = ~np.isnan(w)
    np.testing.assert_array_equal(g[ok], w[ok])
    np.testing.assert_array_equal(np.signbit(g[ok]), np.signbit(w[ok]))


def same_codes(got, want, dt):
    """Equal bit patterns; any NaN code matches any NaN (ml_dtypes' NaN sign is not ONNX's contract)."""
    g = np.asarray(got).astype(np.float32)
    w = np.asarray(want).astype(np.float32)
    nan = np.isnan(w)
    np.testing.assert_array_equal(np.isnan(g), nan)
    bits = np.uint16 if dt == "bfloat16" else np.uint8
    np.testing.assert_array_equal(np.asarray(got)[~nan].view(bits), np.asarray(want)[~nan].view(bits))


def encode_probes(dt) -> np.ndarray:
    """f32 values around every representable value of dt: the values, the midpoints to their neighbours
    (ties), one f32 ulp either side of those, far out of range, ±inf, NaN, ±0, f32 subnormals."""
    v = np.unique(codes(dt).astype(np.float32))
    v = v[np.isfinite(v)]
    mid = ((v[1:].astype(np.float64) + v[:-1]) / 2).astype(np.float32)
    with np.errstate(over="ignore"):  # bfloat16's largest value times 1.0625 is past f32's: inf
        top = v.max() * np.float32(1.0625)
    pts = np.concatenate([v, mid, [top, top * 2, 1e30, 3.4e38, 1e-40, 1e-45, 0.0, np.inf, np.nan]]).astype(np.float32)
    pts = np.concatenate([pts, -pts])
    return np.concatenate([pts, np.nextafter(pts, np.float32(np.inf)), np.nextafter(pts, np.float32(-np.inf))])


def reference(x: np.ndarray, dt: str, saturate: bool) -> np.ndarray:
    with np.errstate(all="ignore"):
        if dt in FLOAT8 and saturate:
            return nh.saturate_cast(x, NP_DTYPES[dt])
        return x.astype(NP_DTYPES[dt])


@pytest.fixture
def run():
    return run_wasm


@pytest.mark.parametrize("dt", SMALL_FLOATS + ["float8e8m0"])
@pytest.mark.parametrize("dst", ["float32", "float16"])
def test_decode_every_code(run, dt, dst):
    c = codes(dt)
    with np.errstate(over="ignore"):
        want = c.astype(np.float32).astype(dst)
    same_float(cast(run, c, dt, dst), want)


# saturate is an attribute of float8 outputs only
ENCODE_CASES = [(dt, sat) for dt in SMALL_FLOATS for sat in ([True, False] if dt in FLOAT8 else [True])]


@pytest.mark.parametrize("dt,saturate", ENCODE_CASES)
@pytest.mark.parametrize("src", ["float32", "float16"])
def test_encode_around_every_value(run, dt, saturate, src):
    x = encode_probes(dt)
    with np.errstate(all="ignore"):
        x = x.astype(src)
    attrs = {"saturate": saturate} if dt in FLOAT8 else {}
    same_codes(cast(run, x, src, dt, **attrs), reference(x, dt, saturate), dt)


@pytest.mark.parametrize("mode", ["up", "nearest", "down"])
@pytest.mark.parametrize("saturate", [True, False])
def test_e8m0_encode(run, mode, saturate):
    c = codes("float8e8m0").astype(np.float32)
    c = c[np.isfinite(c)]
    x = np.concatenate([c, c * np.float32(1.25), c * np.float32(1.5), c * np.float32(1.75), -c,
                        [0.0, np.inf, -np.inf, np.nan, 3.4e38, 1e-45]]).astype(np.float32)
    got = cast(run, x, "float32", "float8e8m0", saturate=saturate, round_mode=mode)
    want = nh.to_float8e8m0(x, saturate, mode)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("dt", NARROW_INTS + ["float4e2m1"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("other", ["float32", "float16", "int8", "uint8", "int64"])
def test_packed_round_trip(run, dt, n, other):
    """Packed (2 or 4 per byte) in and out on odd sizes: decode into `other`, encode from it."""
    rng = np.random.default_rng(n)
    c = codes(dt)
    x = c[rng.integers(0, c.size, n)]
    got = cast(run, x, dt, other)
    with np.errstate(all="ignore"):
        want = x.astype(np.float32).astype(other) if dt == "float4e2m1" else x.astype(other)
    np.testing.assert_array_equal(got, want)
    back = cast(run, want, other, dt)
    if dt == "float4e2m1" and other.startswith(("int", "uint")):
        return  # an integer holds float4's halves truncated: no round trip
    np.testing.assert_array_equal(back.astype(np.float32), x.astype(np.float32))


@pytest.mark.parametrize("dt", NARROW_INTS)
def test_narrow_ints_from_floats(run, dt):
    """Out-of-range and fractional floats into int4/int2 as ml_dtypes' astype (onnx's reference)."""
    x = np.concatenate([np.arange(-20, 21), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 7.9, -8.9, 0.0]]).astype(np.float32)
    got = cast(run, x, "float32", dt)
    np.testing.assert_array_equal(got.view(np.uint8), x.astype(NP_DTYPES[dt]).view(np.uint8))


@pytest.mark.parametrize("dt", SMALL_FLOATS)
@pytest.mark.parametrize("src", ["float64", "int32", "uint8", "int64"])
def test_encode_from_other_dtypes(run, dt, src):
    """Other bundle dtypes go through f32: exact here (small integers, doubles that are f32 values)."""
    x = np.arange(-40, 41).astype(src) if not src.startswith("u") else np.arange(0, 81).astype(src)
    same_codes(cast(run, x, src, dt), reference(x.astype(np.float32), dt, True), dt)


@pytest.mark.parametrize("src,dst", [("float8e4m3fn", "int4"), ("bfloat16", "float8e5m2fnuz"), ("uint2", "bfloat16"),
                                     ("int4", "int4")])
def test_pipeline_between_cast_only_dtypes(src, dst, tmp_path):
    """A Cast between two Cast-only dtypes goes through float32 (two steps); a same-dtype Cast of a graph
    input is a byte copy. Whole compiler path, against onnx's reference evaluator, wasm and webgpu."""
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    from nnjit.compiler.native_runtime import NativeSession
    from nnjit.compiler.pipeline import compile_model
    T = {"float8e4m3fn": TensorProto.FLOAT8E4M3FN, "int4": TensorProto.INT4, "bfloat16": TensorProto.BFLOAT16,
         "float8e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ, "uint2": TensorProto.UINT2}
    m = helper.make_model(helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=T[dst])], "g",
                                            [helper.make_tensor_value_info("x", T[src], [3, 7])],
                                            [helper.make_tensor_value_info("y", T[dst], [3, 7])]),
                          opset_imports=[helper.make_opsetid("", 23)])
    onnx.save(m, str(tmp_path / "m.onnx"))
    c = codes(src)
    x = c[np.random.default_rng(0).integers(0, c.size, 21)].reshape(3, 7)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm", "webgpu"))
    outs = [NativeSession(tmp_path / "b").run({"x": x})["y"]]
    try:
        from nnjit.compiler.gpu_runtime import GPUSession
        outs.append(GPUSession(tmp_path / "b").run({"x": x})["y"])
    except ImportError:
        pass
    for got in outs:
        assert got.dtype == want.dtype and got.shape == want.shape
        same_float(got.astype(np.float32), want.astype(np.float32))
