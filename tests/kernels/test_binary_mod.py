"""binary kernel's prelu (float32 SIMD) and mod/fmod (Python's % and C fmod) on every dtype, with
broadcasting on odd shapes, exactly as numpy (float32 SIMD through f64, lanes with |a/b| >= 2^29 redone by
integer long division of the significands, as float64 always is)."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

from .test_binary import SHAPES, bstrides

MOD = {"mod": np.mod, "fmod": np.fmod}
DTYPES = ["float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
SPECIAL_A = [0.0, -0.0, 5.0, -5.0, np.inf, -np.inf, np.nan, 3.0, -3.0, 7.0, -7.0, 6.0, -6.0, 1e-30]
SPECIAL_B = [3.0, 3.0, 0.0, 0.0, 3.0, 3.0, 3.0, np.inf, np.inf, -np.inf, -np.inf, 3.0, -3.0, 3.0]


def run(op, a, b, dtype="float32"):
    shape = list(np.broadcast_shapes(a.shape, b.shape)) or [1]
    params = dict(op=op, shape=shape, a_strides=bstrides(a.shape, shape), b_strides=bstrides(b.shape, shape))
    if dtype != "float32":
        params["dtype"] = dtype
    plain, relaxed = build("binary", params)
    assert relaxed is None
    return run_kernel(plain, [a, b], [(tuple(shape), a.dtype)])[0]


def operands(dt, sa, sb, rng):
    if dt.startswith("float"):
        a = (rng.standard_normal(sa) * 10.0 ** rng.uniform(-2, 4, sa)).astype(dt)
        b = (rng.standard_normal(sb) * 10.0 ** rng.uniform(-2, 2, sb)).astype(dt)
        return a, b
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max, sa, endpoint=True, dtype=np.int64 if dt != "uint64" else np.uint64).astype(dt)
    b = rng.integers(max(info.min, -9), 9, sb, endpoint=True).astype(dt)  # 0 included: x % 0 = 0
    return a, b


def expect(op, a, b, y):
    with np.errstate(all="ignore"):
        ref = MOD[op](a, b)
    ref = ref.reshape(y.shape)
    if ref.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_array_equal(y[ok], ref[ok])
        np.testing.assert_array_equal(np.signbit(y[ok]), np.signbit(ref[ok]))
    else:
        np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", list(MOD))
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_mod(dt, op, sa, sb):
    rng = np.random.default_rng(len(sa) * 7 + len(sb) + len(dt))
    a, b = operands(dt, sa, sb, rng)
    expect(op, a, b, run(op, a, b, dt))


@pytest.mark.parametrize("dt", ["float32", "float16", "float64"])
@pytest.mark.parametrize("op", list(MOD))
def test_mod_specials(dt, op):
    a, b = np.array(SPECIAL_A, dt), np.array(SPECIAL_B, dt)
    expect(op, a, b, run(op, a, b, dt))


@pytest.mark.parametrize("dt", ["int8", "int32", "int64"])
def test_int_min_by_minus_one(dt):
    m = np.iinfo(dt).min
    a, b = np.array([m, m, m, 7], dt), np.array([-1, 1, 0, -1], dt)
    for op in MOD:
        expect(op, a, b, run(op, a, b, dt))


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_prelu(sa, sb):
    rng = np.random.default_rng(len(sa) + 3 * len(sb))
    x = rng.standard_normal(sa).astype(np.float32)
    slope = rng.standard_normal(sb).astype(np.float32)
    y = run("prelu", x, slope)
    ref = np.where(x < 0, x * slope, np.broadcast_to(x, np.broadcast_shapes(x.shape, slope.shape)))
    np.testing.assert_array_equal(y, ref.reshape(y.shape))


def test_prelu_specials():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -2.0, 3.0], np.float32)
    s = np.full(7, 0.25, np.float32)
    np.testing.assert_array_equal(run("prelu", x, s), np.where(x < 0, x * s, x))


def test_float64_exact():
    a = np.array([1e300, -1e-300, 5e-324, 3.0, -7.5, 1e17, 2.0 ** 60 + 1, np.inf, 1.0, -232482.71875], np.float64)
    b = np.array([3e-300, 7e-310, 3e-324, -2.0, 2.25, 0.1, 3.0, 2.0, np.inf, -0.00022416], np.float64)
    for op in MOD:
        with np.errstate(all="ignore"):
            ref = MOD[op](a, b)
        y = run(op, a, b, "float64")
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_array_equal(y[ok].view(np.uint64), ref[ok].view(np.uint64))


def test_float32_huge_quotients_exact():
    a = np.array([1e30, -3.4e38, 123456789.0, 7.5e-30, -232482.72, 3.0, 1e20, -1e20], np.float32)
    b = np.array([3e-20, 7.0, 1e-3, 1e-38, -0.00022416, 2.0, -3.0, 7.0], np.float32)
    for op in MOD:
        expect(op, a, b, run(op, a, b))
