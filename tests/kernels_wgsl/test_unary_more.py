"""WGSL unary kernel's rounding, sign, trig and parametrised-activation op codes vs numpy on odd sizes
(references and tolerances of tests/kernels/test_unary_more.py)."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_unary_more import APPROX, ATTRS, EXACT, SIZES, check, sample


def run_unary(op, x):
    params = dict(op=op, n=int(x.size), act_min=0.0, act_max=0.0, **ATTRS.get(op, {}))
    text, dispatch, _ = build("unary", params)
    return run_kernel(text, dispatch, [x], [(x.shape, np.float32)])[0]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_sizes(op, n):
    x = sample(n, np.random.default_rng(n), op)
    check(op, x, run_unary(op, x))


@pytest.mark.parametrize("op", list(EXACT) + list(APPROX))
def test_specials(op):
    x = np.array([np.nan, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.0, -3.0], np.float32)
    check(op, x, run_unary(op, x))


@pytest.mark.parametrize("op", ["sin", "cos"])
def test_trig_dense(op):
    x = np.concatenate([np.linspace(-10, 10, 20001), np.linspace(-5e4, 5e4, 40001)]).astype(np.float32)
    y = run_unary(op, x).astype(np.float64)
    assert np.abs(y - {"sin": np.sin, "cos": np.cos}[op](x.astype(np.float64))).max() <= 1e-7


def test_softplus_tails():
    x = np.concatenate([np.linspace(-80, 0, 5001), np.linspace(0, 100, 1001)]).astype(np.float32)
    y = run_unary("softplus", x).astype(np.float64)
    ref = np.logaddexp(0, x.astype(np.float64))
    assert (np.abs(y - ref) / ref).max() <= 1e-6


def test_log_dense():
    x = np.concatenate([np.linspace(0.5, 0.9999, 15001), np.linspace(1.0001, 2, 15001), np.geomspace(1e-38, 1e38, 20001),
                        [1 - 2.0 ** -24, 1 + 2.0 ** -23, 1e-45, 3e-39]]).astype(np.float32)
    x = x[x != 1]
    y = run_unary("log", x).astype(np.float64)
    ref = np.log(x.astype(np.float64))
    assert (np.abs(y - ref) / np.abs(ref)).max() <= 3e-7  # relative (log 1 = 0 is checked in test_specials)
