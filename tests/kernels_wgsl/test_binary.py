"""WGSL binary kernel vs numpy: every op on odd sizes and broadcasting patterns, bit-exact except pow."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_binary import OPS, SHAPES, bstrides

# WGSL gives x / y 2.5 ULP (and sqrt less): llvmpipe is exact, NVIDIA's Vulkan driver is 1 ULP off numpy.
# Ops that reach / or sqrt are held to 2 ULP (a wrong operand or broadcast is far more than that);
# everything else must be bit-exact.
ROUNDED = ("div",)


def assert_ulp(y, ref, maxulp=2):
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_array_max_ulp(y[ok], np.asarray(ref[ok], np.float32), maxulp=maxulp)


def run_binary(op, a, b, a_strides=None, b_strides=None, shape=None, schedule=None):
    shape = list(shape or np.broadcast_shapes(a.shape, b.shape)) or [1]
    params = dict(op=op, shape=shape,
                  a_strides=a_strides or bstrides(a.shape, shape),
                  b_strides=b_strides or bstrides(b.shape, shape))
    text, dispatch, _ = build("binary", params, schedule)
    return run_kernel(text, dispatch, [a, b], [(tuple(shape), np.float32)])[0]


def check(op, y, ref):
    if op == "pow":
        finite = np.isfinite(ref)
        np.testing.assert_allclose(y[finite], ref[finite], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        np.testing.assert_array_equal(y[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    elif op in ROUNDED:
        assert_ulp(y, ref)
    else:
        np.testing.assert_array_equal(y, ref)


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
    out_shape = np.broadcast_shapes(sa, sb) or (1,)
    check(op, run_binary(op, a, b), np.broadcast_to(ref.reshape(ref.shape or (1,)), out_shape))


def test_strided_transposed_input():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((7, 5)).astype(np.float32)
    b = rng.standard_normal((5, 7)).astype(np.float32)
    y = run_binary("sub", base, b, a_strides=[1, 5], b_strides=[7, 1], shape=[5, 7])
    np.testing.assert_array_equal(y, base.T - b)


@pytest.mark.parametrize("op", list(OPS))
def test_nan_inf(op):
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 0.5, 2.0, 3.0], np.float32)
    a = np.repeat(specials, specials.size)
    b = np.tile(specials, specials.size)
    with np.errstate(all="ignore"):
        ref = OPS[op](a, b)
    y = run_binary(op, a, b)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref), err_msg=f"{op} NaN pattern")
    ok = ~np.isnan(ref)
    if op == "pow":
        np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(np.signbit(y[ok]), np.signbit(ref[ok]))
    elif op in ROUNDED:
        assert_ulp(y, ref)
    else:
        np.testing.assert_array_equal(y[ok], ref[ok])


def test_pow_accuracy():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 20, 4099).astype(np.float32)
    e = rng.uniform(-6, 6, 4099).astype(np.float32)
    ref = np.power(x.astype(np.float64), e.astype(np.float64))
    np.testing.assert_allclose(run_binary("pow", x, e), ref, rtol=1e-6)
    # results across the whole normal range, where |y·log2 x| approaches 128
    x = (10.0 ** rng.uniform(-30, 30, 20000)).astype(np.float32)
    e = (rng.uniform(-87, 88, x.size) / np.log(x.astype(np.float64))).astype(np.float32)
    ref = np.power(x.astype(np.float64), e.astype(np.float64))
    y = run_binary("pow", x, e)
    normal = (ref > 1.2e-38) & (ref < 3.4e38)
    np.testing.assert_allclose(y[normal], ref[normal], rtol=1e-6)
    # negative bases with integer exponents, and the exact small exponents
    x = rng.uniform(-10, 10, 1001).astype(np.float32)
    for ev in (-3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0):
        e = np.full(1, ev, np.float32)
        with np.errstate(all="ignore"):
            ref = np.power(x.astype(np.float64), ev)
        y = run_binary("pow", x, e)
        if ev in (1.0, 2.0):  # x, x·x
            np.testing.assert_array_equal(y, np.power(x, np.float32(ev)))
        elif ev in (-1.0, 0.5):  # 1/x, sqrt(x): exact where the driver's / and sqrt are
            with np.errstate(all="ignore"):
                assert_ulp(y, np.power(x, np.float32(ev)))
        else:
            np.testing.assert_allclose(y, ref, rtol=1e-6, err_msg=f"exponent {ev}")
    y = run_binary("pow", np.array([-2.0, -0.5], np.float32), np.array([0.5, 1.5], np.float32))
    assert np.isnan(y).all()


@pytest.mark.parametrize("n", [1, 255, 256, 257, 1000])
@pytest.mark.parametrize("wg", [1, 64, 256])
def test_workgroup_sizes(n, wg):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal((3, 1)).astype(np.float32)
    np.testing.assert_array_equal(run_binary("mul", a, b, schedule={"wg": wg}), a * b)


def test_folded_dispatch():
    """More than 65535 workgroups: the dispatch folds into x·y and every element is still written once."""
    n = 65535 * 2 + 7
    a = np.arange(n, dtype=np.float32)
    b = np.full(1, 0.5, np.float32)
    text, dispatch, _ = build("binary", dict(op="add", shape=[n], a_strides=[1], b_strides=[0]), {"wg": 1})
    assert dispatch[1] > 1 and all(d <= 65535 for d in dispatch)
    (y,) = run_kernel(text, dispatch, [a, b], [((n,), np.float32)])
    np.testing.assert_array_equal(y, a + b)


def test_empty_shape_is_a_no_op():
    text, dispatch, _ = build("binary", dict(op="add", shape=[3, 0, 5], a_strides=[0, 5, 1], b_strides=[0, 0, 1]))
    (y,) = run_kernel(text, dispatch, [np.zeros(5, np.float32), np.zeros(5, np.float32)], [((0,), np.float32)])
    assert y.size == 0
