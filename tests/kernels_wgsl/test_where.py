"""WGSL where kernel vs numpy.where with broadcasting of cond, x and y, for 4-, 8- and 1-byte elements."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_binary import bstrides
from tests.kernels.test_where import SHAPES


def run_where(c, x, y, schedule=None):
    shape = list(np.broadcast_shapes(c.shape, x.shape, y.shape)) or [1]
    params = dict(shape=shape, c_strides=bstrides(c.shape, shape), x_strides=bstrides(x.shape, shape),
                  y_strides=bstrides(y.shape, shape), elem_bytes=x.itemsize)
    text, dispatch, _ = build("where", params, schedule)
    return run_kernel(text, dispatch, [c, x, y], [(tuple(shape), x.dtype)])[0]


def operands(sc, sx, sy, dtype, seed):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, sc).astype(np.bool_)
    if dtype == np.float32:
        return c, rng.standard_normal(sx).astype(dtype), rng.standard_normal(sy).astype(dtype)
    if dtype == np.int64:
        return c, rng.integers(-2**62, 2**62, sx), rng.integers(-2**62, 2**62, sy)
    return c, rng.integers(0, 256, sx).astype(dtype), rng.integers(0, 256, sy).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, np.uint16])
@pytest.mark.parametrize("sc,sx,sy", SHAPES)
def test_where(sc, sx, sy, dtype):
    c, x, y = operands(sc, sx, sy, dtype, len(sc) + len(sx) * 7 + len(sy) * 49)
    ref = np.where(c, x, y)
    np.testing.assert_array_equal(run_where(c, x, y), ref.reshape(ref.shape or (1,)))


def test_nan_and_inf_pass_through():
    c = np.array([1, 0, 1, 0, 1, 0, 1], np.bool_)
    x = np.array([np.nan, 1, np.inf, 2, -0.0, 3, -np.inf], np.float32)
    y = np.array([5, np.nan, 6, -np.inf, 7, np.inf, 8], np.float32)
    out = run_where(c, x, y)
    np.testing.assert_array_equal(out.view(np.uint32), np.where(c, x, y).view(np.uint32))


def test_nonstandard_cond_bytes():
    c = np.array([0, 1, 2, 255, 0, 128, 0], np.uint8).view(np.bool_)
    x = np.arange(7, dtype=np.float32)
    y = -np.arange(7, dtype=np.float32) - 1
    np.testing.assert_array_equal(run_where(c, x, y), np.where(c.view(np.uint8) != 0, x, y))


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_folded(dtype):
    c, x, y = operands((300001,), (1,), (300001,), dtype, 3)
    np.testing.assert_array_equal(run_where(c, x, y, schedule={"wg": 1}), np.where(c, x, y))


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
def test_empty_is_a_no_op(eb):
    params = dict(shape=[3, 0], c_strides=[0, 1], x_strides=[0, 0], y_strides=[0, 1], elem_bytes=eb)
    text, dispatch, _ = build("where", params)
    dt = {1: np.uint8, 2: np.uint16, 4: np.float32, 8: np.int64}[eb]
    (out,) = run_kernel(text, dispatch, [np.zeros(1, np.bool_), np.zeros(1, dt), np.zeros(1, dt)], [((0,), dt)])
    assert out.size == 0
