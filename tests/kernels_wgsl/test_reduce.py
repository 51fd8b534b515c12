"""WGSL reduce kernel vs numpy over [outer, n, inner], columns shorter and longer than the workgroup."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_reduce import REF, SHAPES


def run_reduce(op, x, schedule=None):
    outer, n, inner = x.shape
    text, dispatch, _ = build("reduce", dict(op=op, outer=outer, n=n, inner=inner), schedule)
    return run_kernel(text, dispatch, [x], [((outer, inner), np.float32)])[0]


def check(op, x, y):
    ref = REF[op](x.astype(np.float64), axis=1)
    if op in ("max", "min"):
        np.testing.assert_array_equal(y, ref.astype(np.float32))
    else:
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(x).max())


@pytest.mark.parametrize("op", list(REF))
@pytest.mark.parametrize("shape", SHAPES + [(70, 3, 1), (2, 300, 7), (1, 2, 300)])
def test_random(op, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(-10, 10, shape).astype(np.float32)
    check(op, x, run_reduce(op, x))


@pytest.mark.parametrize("wg", [1, 2, 64, 256])
@pytest.mark.parametrize("shape", [(3, 7, 1), (2, 37, 5), (1, 300, 1)])
def test_workgroup_sizes(wg, shape):
    rng = np.random.default_rng(wg)
    x = rng.uniform(-10, 10, shape).astype(np.float32)
    for op in REF:
        check(op, x, run_reduce(op, x, {"wg": wg}))


@pytest.mark.parametrize("op", list(REF))
def test_all_negative_and_all_positive(op):
    """Threads without elements must not leak 0 (or ±inf) into the result."""
    for sign in (-1, 1):
        x = (sign * np.arange(1, 8, dtype=np.float32)).reshape(1, 7, 1)
        np.testing.assert_allclose(run_reduce(op, x)[0, 0], REF[op](x), rtol=1e-7)


@pytest.mark.parametrize("op", list(REF))
@pytest.mark.parametrize("shape", [(2, 7, 1), (2, 5, 6), (2, 300, 1)])
def test_nan_inf(op, shape):
    x = np.ones(shape, np.float32)
    x[0, 3] = np.nan
    x[1, 2] = np.inf
    y = run_reduce(op, x)
    with np.errstate(invalid="ignore"):
        ref = REF[op](x, axis=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(y[~np.isnan(ref)], ref[~np.isnan(ref)])


def test_many_columns_fold_dispatch():
    x = np.random.default_rng(2).standard_normal((70000, 2, 1)).astype(np.float32)
    text, dispatch, _ = build("reduce", dict(op="sum", outer=70000, n=2, inner=1), {"wg": 1})
    assert dispatch[1] > 1
    (y,) = run_kernel(text, dispatch, [x], [((70000, 1), np.float32)])
    np.testing.assert_array_equal(y[:, 0], x[:, 0, 0] + x[:, 1, 0])


def test_empty_is_a_no_op():
    text, dispatch, _ = build("reduce", dict(op="max", outer=0, n=3, inner=2))
    (y,) = run_kernel(text, dispatch, [np.zeros(1, np.float32)], [((0,), np.float32)])
    assert y.size == 0
