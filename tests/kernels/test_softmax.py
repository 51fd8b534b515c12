"""softmax kernel vs a float64 reference, both layouts (inner == 1 and inner > 1); its run_part (the
outermost slices split across threads) against run, bit for bit."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel


def ref_softmax(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_softmax(x, parts=None):
    outer, n, inner = x.shape
    plain, relaxed = build("softmax", dict(outer=outer, n=n, inner=inner))
    assert relaxed is None
    return run_kernel(plain, [x], [(x.shape, np.float32)], parts=parts)[0]


SHAPES = [(1, 1, 1), (3, 7, 1), (2, 37, 1), (1, 130, 1), (5, 4, 1), (2, 3, 1), (4, 3, 5), (2, 7, 130),
          (3, 1, 7), (1, 4, 4), (2, 130, 3), (1, 37, 8), (2, 5, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_random(shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    y = run_softmax(x)
    ref = ref_softmax(x)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(y.astype(np.float64).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 37, 1), (2, 9, 6)])
def test_large_logits(shape):
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    x[0] += 1000.0
    x[1] -= 1000.0
    x[1, 0] = -1e30  # vanishes exactly
    y = run_softmax(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, ref_softmax(x), rtol=1e-5, atol=1e-7)


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


@pytest.mark.parametrize("shape", [(7, 37, 1), (5, 9, 6), (1, 130, 1), (130, 7, 1), (3, 4, 5)])
def test_parts_equal_run(shape):
    # 2 and 3 parts, and more parts than slices (some parts empty): every slice once, the same bits.
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    full = run_softmax(x)
    for parts in (1, 2, 3, shape[0] + 2):
        got = run_softmax(x, parts=parts)
        assert np.array_equal(got.view(np.uint32), full.view(np.uint32)), f"{shape}: run_part x{parts} != run"
