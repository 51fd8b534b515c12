"""WGSL unary kernel vs numpy on odd sizes; exact ops bit-exact, transcendental ones against float64."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_unary import APPROX, EXACT, sample

from .test_binary import assert_ulp

# sqrt and 1/x go through the driver's sqrt and /, which WGSL lets be a few ULP off (llvmpipe is exact,
# NVIDIA's Vulkan driver is not); the other exact ops must be bit-exact everywhere.
ROUNDED = ("sqrt", "reciprocal")

# The shared activations promise a few ULP on every engine (docs/kernels_wgsl.md: 1e-5 of max|ref| on the
# kernel tests); per element we hold them to 1e-6·max(1, |ref|).
TOL = 1e-6


def run_unary(op, x, **extra):
    params = dict(op=op, n=int(x.size), act_min=-1.5, act_max=6.0)
    params.update(extra)
    text, dispatch, _ = build("unary", params)
    return run_kernel(text, dispatch, [x], [(x.shape, np.float32)])[0]


@pytest.mark.parametrize("n", [1, 3, 7, 37, 130, 1000])
@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_sizes(op, n):
    rng = np.random.default_rng(n)
    x = sample(n, rng)[:n] if n < 4 else sample(n, rng)[::3][:n]
    if op == "sqrt":
        x = np.abs(x)
    y = run_unary(op, x)
    with np.errstate(all="ignore"):
        if op in ROUNDED:
            assert_ulp(y, EXACT[op](x))
        elif op in EXACT:
            np.testing.assert_array_equal(y, EXACT[op](x))
        else:
            ref = APPROX[op](x.astype(np.float64))
            fin = np.abs(ref) < 3.4e38
            assert np.all(np.abs(y[fin] - ref[fin]) <= TOL * np.maximum(1, np.abs(ref[fin])))
            assert np.all(y[~fin] == np.inf)


@pytest.mark.parametrize("op", list(APPROX))
def test_dense_range(op):
    x = np.concatenate([np.linspace(-100, 100, 20001), np.geomspace(1e-6, 10, 5001),
                        -np.geomspace(1e-6, 10, 5001)]).astype(np.float32)
    y = run_unary(op, x).astype(np.float64)
    with np.errstate(over="ignore"):
        ref = APPROX[op](x.astype(np.float64))
    fin = np.abs(ref) < 3.4e38
    err = np.abs(y[fin] - ref[fin]) / np.maximum(1, np.abs(ref[fin]))
    assert err.max() <= TOL, err.max()


@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_specials(op):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], np.float32)
    y = run_unary(op, x)
    with np.errstate(all="ignore"):
        ref = EXACT[op](x) if op in EXACT else APPROX[op](x.astype(np.float64)).astype(np.float32)
    if op == "gelu":
        ref[2] = 0.0  # the limit; 0.5·(-inf)·erfc(inf) is NaN in float arithmetic
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    ok = ~np.isnan(ref)
    if op in EXACT:
        np.testing.assert_array_max_ulp(y[ok], ref[ok], maxulp=2 if op in ROUNDED else 0)
        if op in ("neg", "abs"):
            np.testing.assert_array_equal(np.signbit(y[ok]), np.signbit(ref[ok]))
    else:
        np.testing.assert_allclose(y[ok], ref[ok], rtol=TOL, atol=0)


@pytest.mark.parametrize("lo,hi", [(0.0, float("inf")), (None, 2.0), (float("-inf"), None), (-1.0, 1.0)])
def test_clip_bounds(lo, hi):
    x = np.concatenate([np.linspace(-10, 10, 41), [np.inf, -np.inf, np.nan]]).astype(np.float32)
    y = run_unary("clip", x, act_min=lo, act_max=hi)
    lo_v = -np.inf if lo is None else lo
    hi_v = np.inf if hi is None else hi
    np.testing.assert_array_equal(y, np.clip(x, np.float32(lo_v), np.float32(hi_v)))


def test_large_n_folds_dispatch():
    n = 65535 + 300
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    text, dispatch, _ = build("unary", dict(op="neg", n=n, act_min=None, act_max=None), {"wg": 1})
    assert dispatch[1] == 2
    (y,) = run_kernel(text, dispatch, [x], [((n,), np.float32)])
    np.testing.assert_array_equal(y, -x)


def test_empty_is_a_no_op():
    text, dispatch, _ = build("unary", dict(op="gelu", n=0, act_min=None, act_max=None))
    (y,) = run_kernel(text, dispatch, [np.zeros(1, np.float32)], [((0,), np.float32)])
    assert y.size == 0
