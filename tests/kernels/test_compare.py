"""compare kernel vs numpy: eq/ne/lt/gt/le/ge on float32 and int64 (and int32) with broadcasting, bool
output; and/or/xor (and every comparison) on bools, whose bytes are true when nonzero."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

from .test_binary import SHAPES, bstrides

OPS = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "gt": np.greater, "le": np.less_equal,
       "ge": np.greater_equal}
LOGIC = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def run_compare(op, a, b):
    shape = list(np.broadcast_shapes(a.shape, b.shape)) or [1]
    params = dict(op=op, shape=shape, a_strides=bstrides(a.shape, shape), b_strides=bstrides(b.shape, shape),
                  dtype=str(a.dtype))
    plain, relaxed = build("compare", params)
    assert relaxed is None
    return run_kernel(plain, [a, b], [(tuple(shape), np.bool_)])[0]


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
    s = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], np.float32)
    a, b = np.repeat(s, s.size), np.tile(s, s.size)
    np.testing.assert_array_equal(run_compare(op, a, b), OPS[op](a, b))


@pytest.mark.parametrize("op", list(OPS))
def test_int64_full_range(op):
    v = np.array([0, 1, -1, 2**31, -2**31, 2**32, 2**32 + 1, 2**62, -2**62, 2**63 - 1, -2**63], np.int64)
    a, b = np.repeat(v, v.size), np.tile(v, v.size)
    np.testing.assert_array_equal(run_compare(op, a, b), OPS[op](a, b))


def bool_bytes(shape, rng):
    """Bools as raw bytes 0..3: any nonzero byte is true, so the kernel must not compare raw bytes."""
    return rng.integers(0, 4, shape).astype(np.uint8).view(np.bool_)


@pytest.mark.parametrize("op", list(OPS) + list(LOGIC))
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_bool(op, sa, sb):
    rng = np.random.default_rng(len(sa) * 5 + len(sb))
    a, b = bool_bytes(sa, rng), bool_bytes(sb, rng)
    na, nb = a.view(np.uint8) != 0, b.view(np.uint8) != 0
    y = run_compare(op, a, b)
    ref = {**OPS, **LOGIC}[op](na, nb)
    np.testing.assert_array_equal(y.view(np.uint8), ref.reshape(ref.shape or (1,)).astype(np.uint8))
