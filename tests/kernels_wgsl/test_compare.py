"""WGSL compare kernel vs numpy: eq/ne/lt/gt/le/ge on float32, int64 and int32 with broadcasting, bool
output; and/or/xor (and every comparison) on bools."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_binary import SHAPES, bstrides
from tests.kernels.test_compare import LOGIC, OPS, bool_bytes


def run_compare(op, a, b, schedule=None):
    shape = list(np.broadcast_shapes(a.shape, b.shape)) or [1]
    params = dict(op=op, shape=shape, a_strides=bstrides(a.shape, shape), b_strides=bstrides(b.shape, shape),
                  dtype=str(a.dtype))
    text, dispatch, _ = build("compare", params, schedule)
    return run_kernel(text, dispatch, [a, b], [(tuple(shape), np.bool_)])[0]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_compare(dtype, op, sa, sb):
    rng = np.random.default_rng(len(sa) * 3 + len(sb))
    a = rng.integers(-3, 4, sa).astype(dtype)  # small range: plenty of equal pairs
    b = rng.integers(-3, 4, sb).astype(dtype)
    y = run_compare(op, a, b)
    ref = OPS[op](a, b)
    np.testing.assert_array_equal(y, ref.reshape(ref.shape or (1,)))
    assert set(np.unique(y.view(np.uint8))) <= {0, 1}


@pytest.mark.parametrize("op", list(OPS))
def test_float_specials(op):
    s = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3.4e38, 1e-30], np.float32)
    a, b = np.repeat(s, s.size), np.tile(s, s.size)
    np.testing.assert_array_equal(run_compare(op, a, b), OPS[op](a, b))


@pytest.mark.parametrize("op", list(OPS))
def test_int64_full_range(op):
    v = np.array([0, 1, -1, 2**31, -2**31, 2**32, 2**32 + 1, 2**62, -2**62, 2**63 - 1, -2**63, 2**31 - 1,
                  -2**31 - 1, 2**32 - 1], np.int64)
    a, b = np.repeat(v, v.size), np.tile(v, v.size)
    np.testing.assert_array_equal(run_compare(op, a, b), OPS[op](a, b))


def test_int32_extremes():
    v = np.array([0, 1, -1, 2**31 - 1, -2**31, 2**30, -2**30], np.int32)
    a, b = np.repeat(v, v.size), np.tile(v, v.size)
    for op in OPS:
        np.testing.assert_array_equal(run_compare(op, a, b), OPS[op](a, b))


def test_folded():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(300001).astype(np.float32)
    b = np.zeros(1, np.float32)
    np.testing.assert_array_equal(run_compare("gt", a, b, schedule={"wg": 1}), a > 0)


def test_empty_is_a_no_op():
    params = dict(op="lt", shape=[0, 4], a_strides=[4, 1], b_strides=[0, 1], dtype="int64")
    text, dispatch, _ = build("compare", params)
    (y,) = run_kernel(text, dispatch, [np.zeros(1, np.int64), np.zeros(4, np.int64)], [((0,), np.bool_)])
    assert y.size == 0


@pytest.mark.parametrize("op", list(OPS) + list(LOGIC))
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_bool(op, sa, sb):
    rng = np.random.default_rng(len(sa) * 5 + len(sb))
    a, b = bool_bytes(sa, rng), bool_bytes(sb, rng)
    ref = {**OPS, **LOGIC}[op](a.view(np.uint8) != 0, b.view(np.uint8) != 0)
    y = run_compare(op, a, b)
    np.testing.assert_array_equal(y.view(np.uint8), ref.reshape(ref.shape or (1,)).astype(np.uint8))
