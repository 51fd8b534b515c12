"""unary kernel vs numpy on odd sizes; exact ops bit-exact, transcendental ones against float64."""
import math

import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])

EXACT = {
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "clip": lambda x: np.clip(x, np.float32(-1.5), np.float32(6.0)),
    "sqrt": np.sqrt, "neg": np.negative, "abs": np.abs,
    "reciprocal": lambda x: np.float32(1) / x, "identity": lambda x: x,
}
APPROX = {
    "sigmoid": lambda x: 0.5 * (1 + np.tanh(0.5 * x)),
    "tanh": np.tanh, "erf": _erf, "exp": np.exp,
    "gelu": lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)),
}


def run_unary(op, x, **extra):
    params = dict(op=op, n=int(x.size), act_min=-1.5, act_max=6.0, **extra)
    plain, relaxed = build("unary", params)
    assert relaxed is None  # no multiply-add in unary
    return run_kernel(plain, [x], [(x.shape, np.float32)])[0]


def sample(n, rng):
    x = np.concatenate([rng.uniform(-100, 100, n), rng.uniform(-5, 5, n),
                        rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-6, 0, n)])
    return x.astype(np.float32)


@pytest.mark.parametrize("n", [1, 3, 7, 37, 130])
@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_sizes(op, n):
    rng = np.random.default_rng(n)
    x = sample(n, rng)[:n] if n < 4 else sample(n, rng)[::3][:n]
    if op == "sqrt":
        x = np.abs(x)
    y = run_unary(op, x)
    with np.errstate(all="ignore"):
        if op in EXACT:
            np.testing.assert_array_equal(y, EXACT[op](x))
        else:
            ref = APPROX[op](x.astype(np.float64))
            fin = np.abs(ref) < 3.4e38
            assert np.all(np.abs(y[fin] - ref[fin]) <= 1e-6 * np.maximum(1, np.abs(ref[fin])))
            assert np.all(y[~fin] == np.inf)


@pytest.mark.parametrize("op", list(APPROX))
def test_dense_range(op):
    x = np.concatenate([np.linspace(-100, 100, 20001), np.geomspace(1e-6, 10, 5001),
                        -np.geomspace(1e-6, 10, 5001)]).astype(np.float32)
    y = run_unary(op, x).astype(np.float64)
    with np.errstate(over="ignore"):
        ref = APPROX[op](x.astype(np.float64))
    fin = np.abs(ref) < 3.4e38
    err = np.abs(y[fin] - ref[fin]) / np.maximum(1, np.abs(ref[fin]))
    assert err.max() <= 1e-6, err.max()
    small = (np.abs(x) <= 1e-3) & (x != 0)
    if op != "exp":  # relative accuracy near zero (exp(x) ≈ 1 there)
        rel = np.abs(y[small] - ref[small]) / np.abs(ref[small])
        assert rel.max() <= 1e-6, rel.max()


@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_specials(op):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], np.float32)
    y = run_unary(op, x)
    with np.errstate(all="ignore"):
        ref = EXACT[op](x) if op in EXACT else APPROX[op](x.astype(np.float64)).astype(np.float32)
    if op == "gelu":
        ref[2] = 0.0  # the limit; 0.5·(-inf)·erfc(inf) is NaN in float arithmetic
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    ok = ~np.isnan(ref)
    if op in EXACT:
        np.testing.assert_array_equal(y[ok], ref[ok])
    else:  # infinities and zeros exact, the rest within the functions' accuracy
        np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-6, atol=0)


def test_clip_unbounded_side():
    x = np.linspace(-10, 10, 41).astype(np.float32)
    params = dict(op="clip", n=41, act_min=0.0, act_max=float("inf"))
    (y,) = run_kernel(build("unary", params)[0], [x], [(x.shape, np.float32)])
    np.testing.assert_array_equal(y, np.maximum(x, 0))
