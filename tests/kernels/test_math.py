"""_math.wat.j2: accuracy of the shared f32x4 functions over dense grids (float64 references), special
values, the act() epilogue macro, and that nothing in it depends on relaxed SIMD.

The contract (docs/kernels.md) is |y − ref| <= 1e-6·max(1, |ref|) over the whole f32 range; the tests
check it on dense grids plus tiny, huge and special inputs. They also hold the properties the contract
does not spell out but the kernels rely on: relative accuracy near 0 (no 1 − (1 − ε) cancellation),
exp's relative accuracy (softmax divides by sums of small terms), exact saturation, NaN propagation."""
import math

import numpy as np
import pytest

from nnjit.compiler.codegen import wasm
from nnjit.compiler.wasm_native import run_kernel

HARNESS = """{% import "_math.wat.j2" as m with context %}
(module
  (import "env" "memory" (memory 1))
{{ m.functions() }}
{{ m.pow_functions() }}
  (func (export "run") (param $x i32) (param $y i32) (local $end i32)
    (local.set $end (i32.add (local.get $x) (i32.const {{ n * 4 }})))
    (loop $l
      (v128.store (local.get $y) {{ expr }})
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $x) (local.get $end)))))
)
"""
X = "(v128.load (local.get $x))"


def apply(expr, x, params=None):
    """Evaluate a v128 expression of X lane-wise over x (padded to a multiple of 4)."""
    x = np.asarray(x, np.float32).ravel()
    pad = (-x.size) % 4
    xp = np.concatenate([x, np.ones(pad, np.float32)])
    text = wasm._env().from_string(HARNESS).render(n=xp.size, expr=expr, p=params or {})
    y = run_kernel(wasm.assemble(text, "math harness"), [xp], [((xp.size,), np.float32)])[0]
    return y[:x.size]


def call(fn, x):
    return apply(f"(call ${fn}4 {X})", x)


_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


REF = {
    "exp": np.exp,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)),
}


def dense_grid():
    g = [np.linspace(-12, 12, 96001), np.geomspace(1e-7, 100, 20000), -np.geomspace(1e-7, 100, 20000),
         np.linspace(-1.2, 1.2, 20001), np.linspace(-100, 100, 20001), [0.0, -0.0],
         # tiny (down to subnormal) and huge magnitudes
         np.geomspace(1e-45, 1e-7, 2000), -np.geomspace(1e-45, 1e-7, 2000),
         np.geomspace(100, 3.4e38, 2000), -np.geomspace(100, 3.4e38, 2000)]
    return np.concatenate(g).astype(np.float32)


GRID = dense_grid()
TOL = 1e-6


def errors(fn, x):
    """(max |y − ref| / max(1, |ref|), max relative error where |ref| > 1e-30)."""
    xd = x.astype(np.float64)
    with np.errstate(over="ignore"):
        ref = REF[fn](xd)
    y = call(fn, x).astype(np.float64)
    ok = np.abs(ref) < 3.4e38
    err = np.abs(y[ok] - ref[ok])
    absrel = err / np.maximum(1, np.abs(ref[ok]))
    nz = np.abs(ref[ok]) > 1e-30
    return absrel.max(), (err[nz] / np.abs(ref[ok][nz])).max()


@pytest.mark.parametrize("fn", ["exp", "sigmoid", "tanh", "erf", "gelu"])
def test_dense_accuracy(fn):
    absrel, _ = errors(fn, GRID)
    assert absrel <= TOL, f"{fn}: max |err|/max(1,|y|) = {absrel:.3g}"


@pytest.mark.parametrize("fn", ["sigmoid", "tanh", "erf", "gelu"])
def test_small_arguments_relative(fn):
    """Near 0 the result keeps relative accuracy (no 1 − (1 − ε) cancellation), down to subnormal x."""
    x = np.concatenate([np.geomspace(1e-6, 1.0, 20000), -np.geomspace(1e-6, 1.0, 20000),
                        [1e-6, -1e-6, 1e-20, -1e-20, 1e-38, -1e-38, 1e-44, -1e-44]]).astype(np.float32)
    _, rel = errors(fn, x)
    assert rel <= TOL, f"{fn}: max relative error {rel:.3g} for |x| <= 1"


def test_exp_relative_and_saturation():
    # relative accuracy (about one ulp) wherever e^x is a normal float above 2^-125
    x = np.linspace(-86.9, 88.72, 400001).astype(np.float32)
    _, rel = errors("exp", x)
    assert rel <= 2e-7
    big = np.array([88.7229, 89, 100, 1e10, 3.4e38, np.inf], np.float32)
    assert np.all(call("exp", big) == np.inf)
    tiny = np.array([-88, -104, -105, -150, -1e10, -3.4e38, -np.inf], np.float32)
    assert np.all(call("exp", tiny) == 0)
    # near the bottom of the range results flush to 0 instead of going subnormal (slow on x86), within
    # an absolute 2^-125
    x = np.linspace(-104, -86, 20001).astype(np.float32)
    y = call("exp", x)
    assert not np.any((y > 0) & (y < np.finfo(np.float32).tiny))
    np.testing.assert_allclose(y, np.exp(x.astype(np.float64)), rtol=2e-7, atol=2.4e-38)


def test_tails_saturate():
    x = np.array([10, 15, 20, 50, 100, 1e30, 3.4e38, np.inf], np.float32)
    np.testing.assert_array_equal(call("tanh", x), np.ones_like(x))
    np.testing.assert_array_equal(call("tanh", -x), -np.ones_like(x))
    np.testing.assert_array_equal(call("erf", x), np.ones_like(x))
    np.testing.assert_array_equal(call("erf", -x), -np.ones_like(x))
    np.testing.assert_array_equal(call("sigmoid", np.array([20, 100, 3.4e38, np.inf], np.float32)), [1, 1, 1, 1])
    np.testing.assert_array_equal(call("sigmoid", np.array([-104, -200, -3.4e38, -np.inf], np.float32)), [0, 0, 0, 0])
    big = np.array([10, 100, 1e30, 3.4e38, np.inf], np.float32)
    np.testing.assert_array_equal(call("gelu", big), big)
    # gelu's negative tail reaches 0 (its limit) exactly, also at -inf rather than -inf·0 = NaN
    np.testing.assert_array_equal(call("gelu", np.array([-14, -20, -100, -1e30, -np.inf], np.float32)), [0, 0, 0, 0, 0])


def test_bounded_ranges():
    """erf and tanh never leave [-1, 1], sigmoid [0, 1], and gelu(x) <= 0 for x <= 0 (their rounding near
    the limits must not overshoot them)."""
    x = np.concatenate([np.linspace(-12, 12, 200001), np.linspace(-4, 4, 200001)]).astype(np.float32)
    for fn in ["erf", "tanh"]:
        assert np.abs(call(fn, x)).max() <= 1, fn
    s = call("sigmoid", x)
    assert s.min() >= 0 and s.max() <= 1
    assert call("gelu", -np.abs(x)).max() <= 0


@pytest.mark.parametrize("fn", ["exp", "sigmoid", "tanh", "erf", "gelu", "log"])
def test_nan_in_nan_out(fn):
    y = call(fn, np.array([np.nan, -np.nan, np.float32(np.nan) * 0, np.nan], np.float32))
    assert np.isnan(y).all()


def test_log():
    x = np.concatenate([np.geomspace(1e-44, 3e38, 100001), np.linspace(0.5, 2, 10001)]).astype(np.float32)
    ref = np.log(x.astype(np.float64))
    y = call("log", x)
    err = np.abs(y - ref) / np.maximum(1, np.abs(ref))
    assert err.max() <= 2e-7
    y = call("log", np.array([0, -0.0, np.inf, -1, -np.inf, np.nan], np.float32))
    assert y[0] == -np.inf and y[1] == -np.inf and y[2] == np.inf and np.isnan(y[3:]).all()


def test_act_macro():
    x = np.array([-np.inf, -7, -1, -0.0, 0, 0.25, 3, 7, np.inf, np.nan, 5.9, 6.1], np.float32)
    text = {name: f"{{{{ m.act('{name}', '{X}') }}}}" for name in ["none", "relu", "clip", "sigmoid", "tanh", "gelu"]}
    # act() is rendered inside the harness: render its output first so that the expression lands in HARNESS
    def act(name, params):
        expr = wasm._env().from_string('{% import "_math.wat.j2" as m with context %}' + text[name]).render(p=params)
        return apply(expr, x, params)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(act("none", {}), x)
        np.testing.assert_array_equal(act("relu", {}), np.maximum(x, 0))
        np.testing.assert_array_equal(act("clip", {"act_min": 0.0, "act_max": 6.0}), np.clip(x, 0, 6))
        np.testing.assert_array_equal(act("clip", {"act_min": -1.0, "act_max": float("inf")}), np.maximum(x, -1))
        np.testing.assert_array_equal(act("clip", {"act_min": None, "act_max": 1.0}), np.minimum(x, 1))
        np.testing.assert_array_equal(act("sigmoid", {}), call("sigmoid", x))
        np.testing.assert_array_equal(act("tanh", {}), call("tanh", x))
        np.testing.assert_array_equal(act("gelu", {}), call("gelu", x))
    # explicit bounds override p
    expr = wasm._env().from_string(
        '{% import "_math.wat.j2" as m %}{{ m.act("clip", "' + X + '", act_min=-2.0, act_max=2.0) }}').render()
    np.testing.assert_array_equal(apply(expr, x), np.clip(x, -2, 2))


def test_no_relaxed_dependence():
    for family, params in [("unary", dict(op="gelu", n=9)), ("binary", dict(op="pow", shape=[9], a_strides=[1], b_strides=[1]))]:
        assert wasm.render(family, params, relaxed=False) == wasm.render(family, params, relaxed=True)


def test_gelu_negative_tail():
    """0.5·x·erfc(|x|/√2) on the negative side, where the naive 0.5·x·(1 + erf) cancels: the absolute error
    stays far inside the contract all the way to where the result underflows."""
    x = -np.linspace(0.5, 14, 100001).astype(np.float32)
    ref = REF["gelu"](x.astype(np.float64))
    y = call("gelu", x).astype(np.float64)
    assert np.abs(y - ref).max() <= 2e-7
