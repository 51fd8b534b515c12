"""WGSL binary, compare and cast kernels on the dtypes WGSL storage lacks (8/16-bit packed in words,
uint32, 64-bit integers as word pairs, float16 bits, float64 bits) vs numpy, on odd sizes with
broadcasting: exact (float16 div to one ulp), and the same rules as the wasm kernels."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build, gap
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_dtypes import CAST_CASES, SIZES, int_div, values

pytest.importorskip("wgpu")
DTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32"]


def run(family, params, inputs, out_shape, out_dtype):
    assert gap(family, params) is None
    text, dispatch, _ = build(family, params)
    return run_kernel(text, dispatch, inputs, [(tuple(out_shape), out_dtype)])[0]


@pytest.mark.parametrize("dt", DTS + ["int64", "uint64"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "min", "pow"])
@pytest.mark.parametrize("n", SIZES)
def test_binary_int_dtypes(dt, op, n):
    rng = np.random.default_rng(n * 31 + len(dt))
    a = values(dt, (3, n), rng, small=op == "pow")
    b = values(dt, (n,), rng, small=op == "pow")
    if op == "pow":
        b = np.abs(b.astype(np.int64)).astype(dt) % 5
    y = run("binary", {"op": op, "shape": [3, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": dt},
            [a, b], (3, n), dt)
    with np.errstate(all="ignore"):
        if op == "div":
            want = int_div(a, np.broadcast_to(b, a.shape))
        else:
            want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
                    "pow": np.power}[op](a, b).astype(dt)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dt", DTS + ["bool", "uint64"])
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "gt", "le", "ge"])
@pytest.mark.parametrize("n", SIZES)
def test_compare_int_dtypes(dt, op, n):
    rng = np.random.default_rng(n + len(dt))
    a, b = values(dt, (5, n), rng, small=dt != "uint64"), values(dt, (n,), rng, small=dt != "uint64")
    if dt == "uint64":  # equal high words, so the low words decide, for some pairs
        a[0] = b + np.uint64(1)
        a[1] = b
    y = run("compare", {"op": op, "shape": [5, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": dt},
            [a, b], (5, n), np.bool_)
    np.testing.assert_array_equal(y, {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "gt": np.greater,
                                      "le": np.less_equal, "ge": np.greater_equal}[op](a, b))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "min"])
@pytest.mark.parametrize("n", SIZES)
def test_binary_float16(op, n):
    """Each result computed in f32 from the halves and rounded once (numpy's float16 ufuncs do the same);
    NaN propagates through max/min; div is within one half ulp plus WGSL's 2.5 f32 ulp."""
    rng = np.random.default_rng(n)
    a, b = values("float16", (3, n), rng), values("float16", (n,), rng)
    a.reshape(-1)[-1] = np.nan
    y = run("binary", {"op": op, "shape": [3, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": "float16"},
            [a, b], (3, n), np.float16)
    with np.errstate(all="ignore"):
        want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
                "max": np.maximum, "min": np.minimum}[op](a, b)
    if op == "div":
        np.testing.assert_allclose(y.astype(np.float64), want.astype(np.float64), rtol=2 ** -10)
    else:
        np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("n", SIZES)
def test_binary_float64_max_min(op, n):
    """Ordered on the bits: all magnitudes, signs, infinities and NaN (propagated)."""
    rng = np.random.default_rng(n)
    a, b = values("float64", (3, n), rng) * 1e200, values("float64", (n,), rng) * 1e-200
    a.reshape(-1)[:4] = [np.inf, -np.inf, np.nan, 5e-324][:a.size]
    b[-1] = np.nan if n > 3 else b[-1]
    y = run("binary", {"op": op, "shape": [3, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": "float64"},
            [a, b], (3, n), np.float64)
    np.testing.assert_array_equal(y, (np.maximum if op == "max" else np.minimum)(a, b))


@pytest.mark.parametrize("src,dst", CAST_CASES)
@pytest.mark.parametrize("n", SIZES)
def test_cast_dtypes(src, dst, n):
    """Every pair with an 8/16-bit, unsigned, float16 or float64 side: the wasm kernel's rules (numpy's
    astype on these values), float64 → float16 through f32 (one half ulp at most)."""
    rng = np.random.default_rng(len(src) * 7 + len(dst) + n)
    x = values(src, (n,), rng, small=src.startswith("float") and dst not in ("float16", "float64", "float32", "bool"))
    if src.startswith("float") and dst.startswith("uint"):
        x = np.abs(x)
    y = run("cast", {"n": n, "src": src, "dst": dst}, [x], (n,), dst)
    with np.errstate(all="ignore"):
        want = x.astype(dst)
    if dst == "float16" and src == "float64":
        np.testing.assert_allclose(y.astype(np.float64), want.astype(np.float64), rtol=2 ** -10)
    else:
        np.testing.assert_array_equal(y, want)


def test_cast_float64_edges():
    """f64 → f32 rounding at ties, subnormal results, overflow, NaN; int64/uint64 extremes to f64 and back."""
    f = np.array([1 + 2 ** -24, 1 + 3 * 2 ** -24, 1 + 2 ** -24 + 2 ** -50, 2.0 ** -149 * 1.5, 2.0 ** -150,
                  2.0 ** -150 * 1.0001, 2.0 ** -140 * 1.75, 3.5e38, -3.5e38, 3.4028235e38, np.nan, -0.0, 1e-310,
                  -np.inf], np.float64)
    y = run("cast", {"n": f.size, "src": "float64", "dst": "float32"}, [f], f.shape, np.float32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(y.view(np.uint32)[~np.isnan(f)], f.astype(np.float32).view(np.uint32)[~np.isnan(f)])
    assert np.isnan(y[np.isnan(f)]).all()
    i = np.array([0, 1, -1, 2 ** 53 + 1, -(2 ** 63), 2 ** 63 - 1, 2 ** 62 + 2 ** 9 + 1, 12345678901234], np.int64)
    d = run("cast", {"n": i.size, "src": "int64", "dst": "float64"}, [i], i.shape, np.float64)
    np.testing.assert_array_equal(d, i.astype(np.float64))
    u = np.array([2 ** 64 - 1, 2 ** 63, 2 ** 63 + 2 ** 11, 2 ** 63 + 2 ** 10, 7], np.uint64)
    np.testing.assert_array_equal(run("cast", {"n": u.size, "src": "uint64", "dst": "float64"}, [u], u.shape,
                                      np.float64), u.astype(np.float64))
    g = np.array([1e19, -1e19, 9.2e18, -9.2e18, 2.5, -2.5, np.nan, 1.8e19, 2e19], np.float64)
    np.testing.assert_array_equal(run("cast", {"n": g.size, "src": "float64", "dst": "int64"}, [g], g.shape, np.int64),
                                  [2 ** 63 - 1, -(2 ** 63), 9200000000000000000, -9200000000000000000, 2, -2, 0,
                                   2 ** 63 - 1, 2 ** 63 - 1])
    np.testing.assert_array_equal(run("cast", {"n": g.size, "src": "float64", "dst": "uint64"}, [g], g.shape, np.uint64),
                                  np.array([10 ** 19, 0, 9200000000000000000, 0, 2, 0, 0, 18000000000000000000,
                                            2 ** 64 - 1], np.uint64))


def test_gap_names_what_wgsl_lacks():
    assert "float64" in gap("binary", {"dtype": "float64", "op": "add"})
    assert gap("binary", {"dtype": "float64", "op": "max"}) is None
    assert gap("binary", {"dtype": "uint64", "op": "div"}) is None
    assert "16-bit" in gap("gather", {"elem_bytes": 2})
    assert gap("copy", {"elem_bytes": 2}) is None and gap("where", {"elem_bytes": 2}) is None  # 16-bit floats' moves
    assert gap("binary", {"dtype": "int8"}) is None and gap("copy", {"elem_bytes": 1}) is None
