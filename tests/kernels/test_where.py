"""where kernel vs numpy.where with broadcasting of cond, x and y."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

from .test_binary import bstrides

SHAPES = [((7,), (7,), (7,)), ((1,), (1,), (1,)), ((37,), (), (37,)), ((130,), (130,), ()),
          ((4, 1), (1, 37), (4, 37)), ((3, 1, 5), (1, 4, 1), (3, 4, 5)), ((2, 3, 4, 5), (3, 1, 1), (1, 5)),
          ((1, 9), (6, 9), (6, 1)), ((2, 1, 3, 1, 2, 5), (1, 2, 1, 3, 1, 5), (5,)), ((), (3,), (1,))]


def run_where(c, x, y, eb=4):
    shape = list(np.broadcast_shapes(c.shape, x.shape, y.shape)) or [1]
    params = dict(shape=shape, c_strides=bstrides(c.shape, shape), x_strides=bstrides(x.shape, shape),
                  y_strides=bstrides(y.shape, shape), elem_bytes=eb)
    plain, relaxed = build("where", params)
    assert relaxed is None
    return run_kernel(plain, [c, x, y], [(tuple(shape), x.dtype)])[0]


@pytest.mark.parametrize("sc,sx,sy", SHAPES)
def test_where(sc, sx, sy):
    rng = np.random.default_rng(len(sc) + len(sx) * 7 + len(sy) * 49)
    c = rng.integers(0, 2, sc).astype(np.bool_)
    x = rng.standard_normal(sx).astype(np.float32)
    y = rng.standard_normal(sy).astype(np.float32)
    ref = np.where(c, x, y)
    np.testing.assert_array_equal(run_where(c, x, y), ref.reshape(ref.shape or (1,)))


def test_nan_and_inf_pass_through():
    c = np.array([1, 0, 1, 0, 1, 0, 1], np.bool_)
    x = np.array([np.nan, 1, np.inf, 2, -0.0, 3, -np.inf], np.float32)
    y = np.array([5, np.nan, 6, -np.inf, 7, np.inf, 8], np.float32)
    out = run_where(c, x, y)
    np.testing.assert_array_equal(out.view(np.uint32), np.where(c, x, y).view(np.uint32))


@pytest.mark.parametrize("eb,dtype", [(8, np.int64), (1, np.uint8)])
def test_other_element_sizes(eb, dtype):
    rng = np.random.default_rng(eb)
    c = rng.integers(0, 2, (3, 1, 37)).astype(np.bool_)
    x = rng.integers(-100, 100, (1, 4, 37)).astype(dtype)
    y = rng.integers(-100, 100, (3, 4, 1)).astype(dtype)
    np.testing.assert_array_equal(run_where(c, x, y, eb), np.where(c, x, y))
