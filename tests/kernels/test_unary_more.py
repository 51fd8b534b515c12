"""unary kernel's rounding, sign, trig, log and parametrised-activation op codes vs numpy on odd sizes:
rounding/sign/leakyrelu/hardsigmoid/hardswish/softsign/thresholdedrelu/shrink bit-exact, the ones built on
exp/log/sin within 1e-6."""

import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

SIZES = [1, 7, 37, 130]
ATTRS = {"leakyrelu": {"alpha": 0.1}, "hardsigmoid": {"alpha": 0.2, "beta": 0.5},
         "hardswish": {"alpha": float(np.float32(1 / 6)), "beta": 0.5}, "elu": {"alpha": 2.0},
         "selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
         "thresholdedrelu": {"alpha": 1.5}, "celu": {"alpha": 0.75}, "swish": {"alpha": 1.25},
         "shrink": {"alpha": 1.5, "beta": 0.25}}


def _hsig(x, a, b):
    return np.clip(x * np.float32(a) + np.float32(b), np.float32(0), np.float32(1))


# float32 references computed as the kernels do (single roundings in the same order): compared exactly
EXACT = {
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "sign": np.sign,
    "leakyrelu": lambda x: np.where(x < 0, x * np.float32(0.1), x),
    "hardsigmoid": lambda x: _hsig(x, 0.2, 0.5),
    "hardswish": lambda x: x * _hsig(x, ATTRS["hardswish"]["alpha"], 0.5),
    "softsign": lambda x: x / (np.float32(1) + np.abs(x)),
    "thresholdedrelu": lambda x: np.where(x > np.float32(1.5), x, np.float32(0)),
    "shrink": lambda x: np.where(x < np.float32(-1.5), x + np.float32(0.25),
                                 np.where(x > np.float32(1.5), x - np.float32(0.25), np.float32(0))),
}
# float64 references: |y − ref| <= 1e-6·max(1, |ref|)
APPROX = {
    "sin": np.sin, "cos": np.cos, "softplus": lambda x: np.logaddexp(0, x),
    "elu": lambda x: np.where(x < 0, 2.0 * np.expm1(np.minimum(x, 0)), x),
    "selu": lambda x: ATTRS["selu"]["gamma"] * np.where(x < 0, ATTRS["selu"]["alpha"] * np.expm1(np.minimum(x, 0)), x),
    "log": np.log,
    "celu": lambda x: np.maximum(x, 0) + np.minimum(0, 0.75 * np.expm1(x / 0.75)),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "swish": lambda x: x / (1 + np.exp(-1.25 * x)),
}


def run_unary(op, x):
    params = dict(op=op, n=int(x.size), act_min=0.0, act_max=0.0, **ATTRS.get(op, {}))
    plain, relaxed = build("unary", params)
    assert relaxed is None
    return run_kernel(plain, [x], [(x.shape, np.float32)])[0]


def sample(n, rng, op):
    scale = 3e4 if op in ("sin", "cos") else 20.0
    x = rng.uniform(-scale, scale, n).astype(np.float32)
    x[::3] = np.round(x[::3] * 2) / 2  # halves: round-to-even ties, exact integers
    if op == "log":  # every binade, subnormals included, and exact powers of two
        x = np.abs(x) * np.float32(2.0) ** rng.integers(-140, 100, n).astype(np.float32)
    return x


def check(op, x, y):
    with np.errstate(all="ignore"):
        if op in EXACT:
            ref = EXACT[op](x)
            np.testing.assert_array_equal(y, ref)
        else:
            ref = APPROX[op](x.astype(np.float64))
            np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
            inf = np.isinf(ref)
            np.testing.assert_array_equal(y[inf], ref[inf])
            ok = ~np.isnan(ref) & ~inf
            err = np.abs(y[ok].astype(np.float64) - ref[ok]) / np.maximum(1, np.abs(ref[ok]))
            assert err.max(initial=0) <= 1e-6, err.max()


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_sizes(op, n):
    x = sample(n, np.random.default_rng(n), op)
    check(op, x, run_unary(op, x))


@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_specials(op):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1e-30, -1e-30], np.float32)
    if op in ("sin", "cos"):
        x[1:3] = np.nan  # ±inf give NaN, checked below
        y = run_unary(op, np.array([np.inf, -np.inf], np.float32))
        assert np.isnan(y).all()
    check(op, x, run_unary(op, x))


@pytest.mark.parametrize("op", ["sin", "cos"])
def test_trig_dense(op):
    """1e-7 absolute out to |x| = 5e4 (rotary embeddings: position × frequency)."""
    x = np.concatenate([np.linspace(-10, 10, 20001), np.linspace(-5e4, 5e4, 40001)]).astype(np.float32)
    y = run_unary(op, x).astype(np.float64)
    assert np.abs(y - {"sin": np.sin, "cos": np.cos}[op](x.astype(np.float64))).max() <= 1e-7


def test_softplus_tails():
    x = np.concatenate([np.linspace(-80, 0, 5001), np.linspace(0, 100, 1001)]).astype(np.float32)
    y = run_unary("softplus", x).astype(np.float64)
    ref = np.logaddexp(0, x.astype(np.float64))
    # relative, also where softplus(x) ≈ e^x is tiny (exp flushes results below 2^-125 to 0, so from -80)
    assert (np.abs(y - ref) / ref).max() <= 1e-6


def test_log_dense():
    """Relative accuracy near 1 (where log x ≈ x − 1 is small) and across binades."""
    x = np.concatenate([np.linspace(0.5, 0.9999, 15001), np.linspace(1.0001, 2, 15001), np.geomspace(1e-38, 1e38, 20001),
                        [1 - 2.0 ** -24, 1 + 2.0 ** -23, 1e-45, 3e-39]]).astype(np.float32)
    x = x[x != 1]
    y = run_unary("log", x).astype(np.float64)
    ref = np.log(x.astype(np.float64))
    assert (np.abs(y - ref) / np.abs(ref)).max() <= 3e-7  # relative (log 1 = 0 is checked in test_specials)
