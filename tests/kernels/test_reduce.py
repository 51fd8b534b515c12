"""reduce kernel vs numpy over [outer, n, inner] in both layouts."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

REF = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


def run_reduce(op, x):
    outer, n, inner = x.shape
    plain, relaxed = build("reduce", dict(op=op, outer=outer, n=n, inner=inner))
    assert relaxed is None
    return run_kernel(plain, [x], [((outer, inner), np.float32)])[0]


SHAPES = [(1, 1, 1), (3, 7, 1), (2, 37, 1), (1, 130, 1), (2, 4, 1), (4, 3, 5), (2, 7, 130), (3, 1, 7),
          (1, 4, 4), (2, 130, 3), (1, 1000, 1), (5, 2, 1), (2, 5, 2), (1, 6, 9)]


@pytest.mark.parametrize("op", list(REF))
@pytest.mark.parametrize("shape", SHAPES)
def test_random(op, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(-10, 10, shape).astype(np.float32)
    y = run_reduce(op, x)
    ref = REF[op](x.astype(np.float64), axis=1)
    if op in ("max", "min"):
        np.testing.assert_array_equal(y, ref.astype(np.float32))
    else:
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(x).max())


@pytest.mark.parametrize("op", list(REF))
def test_all_negative_and_all_positive(op):
    """Padding lanes of a partial group must not leak 0 (or ±inf) into the result."""
    for sign in (-1, 1):
        x = (sign * np.arange(1, 8, dtype=np.float32)).reshape(1, 7, 1)
        np.testing.assert_allclose(run_reduce(op, x)[0, 0], REF[op](x), rtol=1e-7)


@pytest.mark.parametrize("op", list(REF))
@pytest.mark.parametrize("shape", [(2, 7, 1), (2, 5, 6)])
def test_nan_inf(op, shape):
    x = np.ones(shape, np.float32)
    x[0, 3] = np.nan
    x[1, 2] = np.inf
    y = run_reduce(op, x)
    with np.errstate(invalid="ignore"):
        ref = REF[op](x, axis=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(y[~np.isnan(ref)], ref[~np.isnan(ref)])
