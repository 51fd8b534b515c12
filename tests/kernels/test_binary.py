"""binary kernel vs numpy: every op on odd sizes and broadcasting patterns, bit-exact except pow."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
       "max": np.maximum, "min": np.minimum, "pow": np.power}


def bstrides(shape, out_shape):
    """Element strides of a row-major `shape` broadcast to out_shape (0 on broadcast dims)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc if d != 1 else 0)
        acc *= d
    return st[::-1]


def run_binary(op, a, b, a_strides=None, b_strides=None, shape=None):
    shape = list(shape or np.broadcast_shapes(a.shape, b.shape)) or [1]
    params = dict(op=op, shape=shape,
                  a_strides=a_strides or bstrides(a.shape, shape),
                  b_strides=b_strides or bstrides(b.shape, shape))
    outs = []
    for wasm in build("binary", params):
        if wasm is not None:
            outs.append(run_kernel(wasm, [a, b], [(tuple(shape), np.float32)])[0])
    return outs


def check(op, a, b, y, ref):
    if op == "pow":
        finite = np.isfinite(ref)
        scale = max(1.0, float(np.max(np.abs(ref[finite]), initial=0)))
        np.testing.assert_allclose(y[finite], ref[finite], rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        np.testing.assert_array_equal(y[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    else:
        np.testing.assert_array_equal(y, ref)


SHAPES = [
    ((1,), (1,)), ((3,), (3,)), ((7,), ()), ((), (37,)), ((130,), (130,)), ((37,), (1,)),
    ((4, 130), (130,)),            # row broadcast
    ((4, 37), (4, 1)),             # column broadcast
    ((5, 1), (1, 7)),              # outer product
    ((3, 1, 5), (1, 4, 1)),        # both-sided
    ((2, 3, 4, 5), (3, 1, 1)),     # middle axis
    ((2, 3, 7, 2), (2, 1, 7, 1)),
    ((2, 1, 3, 1, 2, 5), (1, 2, 1, 3, 1, 5)),  # six dims
    ((1, 1, 9), (1, 1, 1)),
]


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_broadcast(op, sa, sb):
    rng = np.random.default_rng(abs(hash((op, sa, sb))) % 2**32)
    a = rng.uniform(-4, 4, sa).astype(np.float32)
    b = rng.uniform(-4, 4, sb).astype(np.float32)
    if op == "pow":
        a = np.abs(a) + np.float32(0.01)
    if op == "div":
        b[b == 0] = 1
    with np.errstate(all="ignore"):
        ref = OPS[op](a, b) if op != "pow" else np.power(a.astype(np.float64), b).astype(np.float32)
    ref = np.broadcast_to(ref, np.broadcast_shapes(sa, sb) or (1,)).reshape(np.broadcast_shapes(sa, sb) or (1,))
    for y in run_binary(op, a, b):
        check(op, a, b, y, ref)


def test_strided_transposed_input():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((7, 5)).astype(np.float32)
    b = rng.standard_normal((5, 7)).astype(np.float32)
    # a is base.T read in place: strides (1, 5) over the output [5, 7]
    (y,) = run_binary("sub", base, b, a_strides=[1, 5], b_strides=[7, 1], shape=[5, 7])
    np.testing.assert_array_equal(y, base.T - b)


@pytest.mark.parametrize("op", list(OPS))
def test_nan_inf(op):
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 0.5, 2.0, 3.0], np.float32)
    a = np.repeat(specials, specials.size)
    b = np.tile(specials, specials.size)
    with np.errstate(all="ignore"):
        ref = OPS[op](a, b)
    for y in run_binary(op, a, b):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref), err_msg=f"{op} NaN pattern")
        ok = ~np.isnan(ref)
        if op == "pow":  # e^(y·log x) for the general case; infinities and zeros still exact
            np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-6, atol=0)
        else:
            np.testing.assert_array_equal(y[ok], ref[ok])


def test_pow_accuracy():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 20, 4099).astype(np.float32)
    e = rng.uniform(-6, 6, 4099).astype(np.float32)
    ref = np.power(x.astype(np.float64), e.astype(np.float64))
    (y,) = run_binary("pow", x, e)
    np.testing.assert_allclose(y, ref, rtol=5e-7)
    # results across the whole normal range: y·log x is carried beyond f32, so no |y·log x|·ε loss
    x = (10.0 ** rng.uniform(-30, 30, 20000)).astype(np.float32)
    e = (rng.uniform(-87, 88, x.size) / np.log(x.astype(np.float64))).astype(np.float32)
    ref = np.power(x.astype(np.float64), e.astype(np.float64))
    (y,) = run_binary("pow", x, e)
    normal = (ref > 1.2e-38) & (ref < 3.4e38)
    np.testing.assert_allclose(y[normal], ref[normal], rtol=5e-7)
    # negative bases with integer exponents, and the exact small exponents
    x = rng.uniform(-10, 10, 1001).astype(np.float32)
    for ev in (-3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0):
        e = np.full(1, ev, np.float32)
        with np.errstate(all="ignore"):
            ref = np.power(x.astype(np.float64), ev)
        (y,) = run_binary("pow", x, e)
        if ev in (-1.0, 0.5, 1.0, 2.0):
            with np.errstate(all="ignore"):
                np.testing.assert_array_equal(y, np.power(x, np.float32(ev)))
        else:
            np.testing.assert_allclose(y, ref, rtol=5e-7, err_msg=f"exponent {ev}")
    # non-integer exponent of a negative base is NaN
    (y,) = run_binary("pow", np.array([-2.0, -0.5], np.float32), np.array([0.5, 1.5], np.float32))
    assert np.isnan(y).all()


def test_empty_shape_is_a_no_op():
    plain, _ = build("binary", dict(op="add", shape=[3, 0, 5], a_strides=[0, 5, 1], b_strides=[0, 0, 1]))
    (y,) = run_kernel(plain, [np.zeros(5, np.float32), np.zeros(5, np.float32)], [((0,), np.float32)])
    assert y.size == 0
