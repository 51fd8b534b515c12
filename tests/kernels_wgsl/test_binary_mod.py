"""WGSL binary kernel's prelu and mod/fmod (exact: f32 by integer long division of the significands, the
integers and int64 words as the wasm kernel; float64 by long division of the 53-bit significands) vs numpy,
bit for bit, with broadcasting on odd shapes."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_binary import SHAPES, bstrides
from tests.kernels.test_binary_mod import MOD, SPECIAL_A, SPECIAL_B, expect, operands

DTYPES = ["float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


def run(op, a, b, dtype="float32"):
    shape = list(np.broadcast_shapes(a.shape, b.shape)) or [1]
    params = dict(op=op, shape=shape, a_strides=bstrides(a.shape, shape), b_strides=bstrides(b.shape, shape))
    if dtype != "float32":
        params["dtype"] = dtype
    text, dispatch, _ = build("binary", params)
    return run_kernel(text, dispatch, [a, b], [(tuple(shape), a.dtype)])[0]


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


def test_mod_exact_for_huge_quotients():
    a = np.array([1e30, -3.4e38, 123456789.0, 7.5e-30], np.float32)
    b = np.array([3e-20, 7.0, 1e-3, 1e-38], np.float32)
    for op in MOD:
        expect(op, a, b, run(op, a, b))


def test_float64_exact():
    a = np.array([1e300, -1e-300, 5e-324, 3.0, -7.5, 1e17, 2.0 ** 60 + 1, np.inf, 1.0], np.float64)
    b = np.array([3e-300, 7e-310, 3e-324, -2.0, 2.25, 0.1, 3.0, 2.0, np.inf], np.float64)
    for op in MOD:
        with np.errstate(all="ignore"):
            ref = MOD[op](a, b)
        y = run(op, a, b, "float64")
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_array_equal(y[ok].view(np.uint64), ref[ok].view(np.uint64))


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_prelu(sa, sb):
    rng = np.random.default_rng(len(sa) + 3 * len(sb))
    x = rng.standard_normal(sa).astype(np.float32)
    slope = rng.standard_normal(sb).astype(np.float32)
    y = run("prelu", x, slope)
    ref = np.where(x < 0, x * slope, np.broadcast_to(x, np.broadcast_shapes(x.shape, slope.shape)))
    np.testing.assert_array_equal(y, ref.reshape(y.shape))
