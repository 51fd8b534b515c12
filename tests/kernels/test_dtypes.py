"""The element-by-element dtype paths (8/16-bit and unsigned integers, float16, float64) of the binary,
compare, cast and where kernels vs numpy, on odd sizes with broadcasting; exact except float pow."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

INTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
FLOATS = ["float16", "float64"]
SIZES = [1, 7, 37, 130]


def values(dt, shape, rng, small=False):
    if dt == "bool":
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dt in INTS:
        info = np.iinfo(dt)
        lo, hi = (max(info.min, -9), min(info.max, 9)) if small else (info.min, info.max)
        v = rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64 if dt != "uint64" else np.uint64)
        return v.astype(dt)
    v = rng.standard_normal(shape) * 50
    v.reshape(-1)[:3] = [0.0, -0.0, 1e-6][:v.size]  # f16 subnormal, signed zero
    return v.astype(dt)


def run(family, params, inputs, out_shape, out_dtype):
    plain, relaxed = build(family, params)
    assert relaxed is None
    return run_kernel(plain, inputs, [(tuple(out_shape), out_dtype)])[0]


def int_div(a, b):
    """Truncating integer division with x/0 = 0, wrapping (the kernel's rule)."""
    a64, b64 = a.astype(object), b.astype(object)
    q = np.array([0 if y == 0 else (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)
                  for x, y in zip(a64.ravel(), np.broadcast_to(b64, a.shape).ravel())], dtype=object)
    return np.array([int(v) % (1 << (8 * a.itemsize)) for v in q], np.uint64).astype(a.dtype).reshape(a.shape)


# float16/float64 Pow is not lowered, so it has no kernel to test.
BINARY_CASES = [(dt, op) for dt in INTS + FLOATS for op in ["add", "sub", "mul", "div", "max", "min", "pow"]
                if not (op == "pow" and dt in FLOATS)]


@pytest.mark.parametrize("dt,op", BINARY_CASES)
@pytest.mark.parametrize("n", SIZES)
def test_binary_dtypes(dt, op, n):
    rng = np.random.default_rng(n * 31 + len(dt))
    a = values(dt, (3, n), rng, small=op == "pow")
    b = values(dt, (n,), rng, small=op == "pow")
    if op == "pow" and dt in INTS:
        b = np.abs(b.astype(np.int64)).astype(dt) % 5
    y = run("binary", {"op": op, "shape": [3, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": dt},
            [a, b], (3, n), dt)
    with np.errstate(all="ignore"):
        if op == "div" and dt in INTS:
            want = int_div(a, np.broadcast_to(b, a.shape))
        elif op == "pow":
            want = np.power(a, b).astype(dt)
        else:
            want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
                    "max": np.maximum, "min": np.minimum}[op](a, b).astype(dt)
    np.testing.assert_array_equal(y, want)  # float16 numpy ops round each result once, as the kernel


def test_float16_conversion_is_round_to_nearest_even_on_every_half():
    """f16 → f32 → f16 through the kernel's bit conversions is the identity on all 65536 patterns
    (NaNs stay NaN), and f32 → f16 rounds like numpy on values between halves."""
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    z = np.zeros_like(bits)
    y = run("binary", {"op": "add", "shape": [65536], "a_strides": [1], "b_strides": [1], "dtype": "float16"},
            [bits, z], (65536,), "float16")
    nan = np.isnan(bits)
    np.testing.assert_array_equal(np.isnan(y), nan)
    same = (y.view(np.uint16) == bits.view(np.uint16)) | (bits == 0)  # -0 + 0 = +0
    assert same[~nan].all()
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(5000) * 10.0 ** rng.integers(-9, 6, 5000),
                        [65504.0, 65519.0, 65520.0, 1e9, -1e9, 2.0 ** -25, 2.0 ** -24 * 1.5]]).astype(np.float32)
    h = run("cast", {"n": int(x.size), "src": "float32", "dst": "float16"}, [x], x.shape, np.float16)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    np.testing.assert_array_equal(h.view(np.uint16), want.view(np.uint16))


DTS = INTS + FLOATS + ["float32", "bool"]
_SIMD_PAIRS = ("float32", "int32", "int64", "bool")  # tested in tests/kernels/test_cast.py
CAST_CASES = [(s, d) for s in DTS for d in DTS if not (s in _SIMD_PAIRS and d in _SIMD_PAIRS)]


@pytest.mark.parametrize("src,dst", CAST_CASES)
def test_cast_dtypes(src, dst):
    rng = np.random.default_rng(len(src) * 7 + len(dst))
    x = values(src, (130,), rng, small=src.startswith("float") and dst not in FLOATS + ["float32", "bool"])
    if src.startswith("float") and dst.startswith("uint"):
        x = np.abs(x)
    y = run("cast", {"n": 130, "src": src, "dst": dst}, [x], (130,), dst)
    with np.errstate(all="ignore"):
        want = x.astype(dst)
    if dst == "float16" and src == "float64":  # rounds twice (via f32): at most one f16 ulp off
        np.testing.assert_allclose(y.astype(np.float64), want.astype(np.float64), rtol=2 ** -10)
    else:
        np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dt", INTS + FLOATS + ["bool"])
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "gt", "le", "ge"])
@pytest.mark.parametrize("n", SIZES)
def test_compare_dtypes(dt, op, n):
    rng = np.random.default_rng(n + len(dt))
    a, b = values(dt, (5, n), rng, small=True), values(dt, (n,), rng, small=True)
    if dt in FLOATS:
        a.reshape(-1)[0] = np.nan
    y = run("compare", {"op": op, "shape": [5, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": dt},
            [a, b], (5, n), np.bool_)
    np.testing.assert_array_equal(y, {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "gt": np.greater,
                                      "le": np.less_equal, "ge": np.greater_equal}[op](a, b))


@pytest.mark.parametrize("dt", ["int16", "float16", "uint8", "float64"])
@pytest.mark.parametrize("n", SIZES)
def test_where_elem_sizes(dt, n):
    rng = np.random.default_rng(n)
    c, x, y = values("bool", (3, n), rng), values(dt, (3, n), rng), values(dt, (n,), rng)
    eb = np.dtype(dt).itemsize
    out = run("where", {"shape": [3, n], "c_strides": [n, 1], "x_strides": [n, 1], "y_strides": [0, 1],
                        "elem_bytes": eb}, [c, x, y], (3, n), dt)
    np.testing.assert_array_equal(out.view(f"u{eb}"), np.where(c, x, y).view(f"u{eb}"))


@pytest.mark.parametrize("n", SIZES)
def test_copy_two_byte_elements(n):
    """Transpose of 16-bit elements (a strided source) and a contiguous copy."""
    x = np.arange(3 * n, dtype=np.uint16).reshape(3, n) * 7
    y = run("copy", {"shape": [n, 3], "src_strides": [1, n], "dst_strides": [3, 1], "src_offset": 0,
                     "dst_offset": 0, "elem_bytes": 2}, [x], (n, 3), np.uint16)
    np.testing.assert_array_equal(y, x.T)
