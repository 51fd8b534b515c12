"""WGSL softmax kernel vs a float64 reference, inner == 1 and inner > 1, rows shorter and longer than the
workgroup."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_softmax import SHAPES, ref_softmax


def run_softmax(x, schedule=None):
    outer, n, inner = x.shape
    text, dispatch, _ = build("softmax", dict(outer=outer, n=n, inner=inner), schedule)
    return run_kernel(text, dispatch, [x], [(x.shape, np.float32)])[0]


def close(y, ref):
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("shape", SHAPES + [(3, 1000, 1), (2, 300, 7), (70, 3, 1), (1, 2, 200)])
def test_random(shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    y = run_softmax(x)
    close(y, ref_softmax(x))
    np.testing.assert_allclose(y.astype(np.float64).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("wg", [1, 2, 32, 256])
@pytest.mark.parametrize("shape", [(3, 7, 1), (2, 37, 5), (1, 300, 1)])
def test_workgroup_sizes(wg, shape):
    rng = np.random.default_rng(wg)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    close(run_softmax(x, {"wg": wg}), ref_softmax(x))


@pytest.mark.parametrize("shape", [(2, 37, 1), (2, 9, 6), (2, 300, 1)])
def test_large_logits(shape):
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    x[0] += 1000.0
    x[1] -= 1000.0
    x[1, 0] = -1e30  # vanishes exactly
    y = run_softmax(x)
    assert np.isfinite(y).all()
    close(y, ref_softmax(x))


def test_one_hot_and_nan_rows():
    x = np.zeros((3, 7, 1), np.float32)
    x[0, 3] = 200.0          # e^-200 underflows: exact one-hot
    x[1, 2] = np.nan         # NaN poisons its row only
    x[2] = -np.inf
    x[2, 5] = 0.0
    y = run_softmax(x)[..., 0]
    np.testing.assert_array_equal(y[0], np.eye(7, dtype=np.float32)[3])
    assert np.isnan(y[1]).all()
    np.testing.assert_array_equal(y[2], np.eye(7, dtype=np.float32)[5])


def test_many_rows_fold_dispatch():
    """More rows than 65535 workgroups can take in one dimension (n = 1: one row per thread)."""
    x = np.random.default_rng(1).standard_normal((70000, 1, 1)).astype(np.float32)
    text, dispatch, _ = build("softmax", dict(outer=70000, n=1, inner=1), {"wg": 1})
    assert dispatch[1] > 1
    (y,) = run_kernel(text, dispatch, [x], [(x.shape, np.float32)])
    np.testing.assert_array_equal(y, 1.0)


@pytest.mark.parametrize("outer,n,inner", [(0, 5, 1), (3, 0, 2), (2, 4, 0)])
def test_empty_is_a_no_op(outer, n, inner):
    text, dispatch, _ = build("softmax", dict(outer=outer, n=n, inner=inner))
    (y,) = run_kernel(text, dispatch, [np.zeros(1, np.float32)], [((0,), np.float32)])
    assert y.size == 0
