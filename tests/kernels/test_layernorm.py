"""layernorm kernel vs a float64 reference; constant rows give exactly bias; both SIMD builds."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel


def ref_layernorm(x, scale, bias, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * scale
    return y + bias if bias is not None else y


def run_layernorm(x, scale, bias, eps=1e-5):
    outer, n = x.shape
    params = dict(outer=outer, n=n, eps=eps, bias=bias is not None)
    inputs = [x, scale] + ([bias] if bias is not None else [])
    plain, relaxed = build("layernorm", params)
    assert (relaxed is not None) == (bias is not None)  # the multiply-add is scale·x̂ + bias
    return [run_kernel(w, inputs, [(x.shape, np.float32)])[0] for w in (plain, relaxed) if w is not None]


def close(y, ref):
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("outer,n", [(1, 1), (3, 7), (2, 37), (4, 130), (2, 384), (5, 3), (1, 4), (2, 9)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_random(outer, n, with_bias):
    rng = np.random.default_rng(outer * 1000 + n)
    x = (rng.standard_normal((outer, n)) * 3 + 1).astype(np.float32)
    scale = rng.uniform(0.5, 2, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    for y in run_layernorm(x, scale, bias):
        close(y, ref_layernorm(x, scale, bias, 1e-5))


@pytest.mark.parametrize("n", [1, 7, 37, 130])
def test_constant_rows_give_bias(n):
    rng = np.random.default_rng(n)
    x = np.stack([np.full(n, v, np.float32) for v in (0.0, 0.1, -3.3, 1000.5, 1e6)])
    scale = rng.uniform(0.5, 2, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    for y in run_layernorm(x, scale, bias):
        np.testing.assert_array_equal(y, np.broadcast_to(bias, x.shape))
    (y,) = run_layernorm(x, scale, None)
    np.testing.assert_array_equal(y, 0)


def test_large_offset_small_spread():
    """Mean far from zero relative to the spread: the shifted two-pass keeps f32 accuracy."""
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((3, 130))).astype(np.float32)
    scale = np.ones(130, np.float32)
    bias = np.zeros(130, np.float32)
    for y in run_layernorm(x, scale, bias, eps=1e-12):
        close(y, ref_layernorm(x, scale, bias, 1e-12))


def test_nan_poisons_its_row_only():
    x = np.ones((2, 37), np.float32)
    x[1] = np.linspace(-1, 1, 37)
    x[0, 5] = np.nan
    scale = np.ones(37, np.float32)
    bias = np.zeros(37, np.float32)
    for y in run_layernorm(x, scale, bias):
        assert np.isnan(y[0]).all()
        close(y[1], ref_layernorm(x[1:], scale, bias, 1e-5)[0])
