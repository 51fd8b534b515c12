"""WGSL cast kernel vs numpy astype for every pair of float32, int64, int32, bool."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_cast import NP, values


def run_cast(x, dst):
    src = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64", np.dtype(np.int32): "int32",
           np.dtype(np.bool_): "bool"}[x.dtype]
    text, dispatch, _ = build("cast", dict(n=int(x.size), src=src, dst=dst))
    return run_kernel(text, dispatch, [x], [(x.shape, NP[dst])])[0]


@pytest.mark.parametrize("n", [1, 3, 7, 37, 130])
@pytest.mark.parametrize("src", list(NP))
@pytest.mark.parametrize("dst", list(NP))
def test_cast(src, dst, n):
    rng = np.random.default_rng(n)
    x = values(src, n, rng)
    y = run_cast(x, dst)
    with np.errstate(invalid="ignore"):
        ref = (x != 0) if dst == "bool" else x.astype(NP[dst])
    np.testing.assert_array_equal(y, ref)
    if dst == "bool":
        assert set(np.unique(y.view(np.uint8))) <= {0, 1}


def test_float_specials():
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -0.0, 2.9, -2.9, 2.0**31, -2.0**31, 2.0**63,
                  -2.0**63, 2.0**32, -2.0**32 - 512, 16777217.0, -0.5], np.float32)
    y32 = run_cast(x, "int32")
    y64 = run_cast(x, "int64")
    yb = run_cast(x, "bool")
    imax, imin = 2**31 - 1, -2**31
    np.testing.assert_array_equal(y32, [0, imax, imin, imax, imin, imax, 0, 2, -2, imax, imin, imax, imin, imax,
                                        imin, 16777216, 0])
    lmax, lmin = 2**63 - 1, -2**63
    np.testing.assert_array_equal(y64, [0, lmax, lmin, 3000000000, -3000000000, lmax, 0, 2, -2, 2**31, -2**31,
                                        lmax, lmin, 2**32, -2**32 - 512, 16777216, 0])
    np.testing.assert_array_equal(yb, [True] * 6 + [False] + [True] * 10)


def test_int_to_float_rounding():
    """Large integers round to nearest, ties to even, including the int64 range beyond 2^32."""
    rng = np.random.default_rng(5)
    tie = [2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**25 + 2, 2**25 + 6, 2**31 - 1, -2**31]
    v32 = np.concatenate([tie, rng.integers(-2**31, 2**31 - 1, 500)]).astype(np.int32)
    np.testing.assert_array_equal(run_cast(v32, "float32"), v32.astype(np.float32))
    big = [2**63 - 1, -2**63, 2**40 + 2**16, 2**40 + 2**16 + 1, 2**40 + 3 * 2**16, -(2**40 + 2**16),
           2**32 + 1, 2**32 - 1, 2**53 + 1, (2**24 + 1) * 2**20, 0, -1, 1]
    v64 = np.concatenate([big, rng.integers(-2**62, 2**62, 500), rng.integers(-2**40, 2**40, 500)]).astype(np.int64)
    np.testing.assert_array_equal(run_cast(v64, "float32"), v64.astype(np.float32))


def test_nonstandard_bool_bytes():
    x = np.array([0, 1, 2, 255, 0, 7, 1], np.uint8).view(np.bool_)
    np.testing.assert_array_equal(run_cast(x, "float32"), [0, 1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(run_cast(x, "bool").view(np.uint8), [0, 1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(run_cast(x, "int64"), [0, 1, 1, 1, 0, 1, 1])


@pytest.mark.parametrize("src,dst", [("float32", "bool"), ("int64", "float32"), ("bool", "int64")])
def test_empty_is_a_no_op(src, dst):
    text, dispatch, _ = build("cast", dict(n=0, src=src, dst=dst))
    (y,) = run_kernel(text, dispatch, [np.zeros(1, NP[src])], [((0,), NP[dst])])
    assert y.size == 0
