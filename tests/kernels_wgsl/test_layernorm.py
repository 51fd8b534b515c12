"""WGSL layernorm kernel vs a float64 reference; constant rows give exactly bias; large common offsets."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_layernorm import ref_layernorm


def run_layernorm(x, scale, bias, eps=1e-5, schedule=None):
    outer, n = x.shape
    params = dict(outer=outer, n=n, eps=eps, bias=bias is not None)
    inputs = [x, scale] + ([bias] if bias is not None else [])
    text, dispatch, _ = build("layernorm", params, schedule)
    return run_kernel(text, dispatch, inputs, [(x.shape, np.float32)])[0]


def close(y, ref):
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("outer,n", [(1, 1), (3, 7), (2, 37), (4, 130), (2, 384), (5, 3), (1, 4), (2, 9),
                                     (70, 5), (3, 1000)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_random(outer, n, with_bias):
    rng = np.random.default_rng(outer * 1000 + n)
    x = (rng.standard_normal((outer, n)) * 3 + 1).astype(np.float32)
    scale = rng.uniform(0.5, 2, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    close(run_layernorm(x, scale, bias), ref_layernorm(x, scale, bias, 1e-5))


@pytest.mark.parametrize("wg", [1, 4, 64, 256])
@pytest.mark.parametrize("outer,n", [(3, 7), (2, 300)])
def test_workgroup_sizes(wg, outer, n):
    rng = np.random.default_rng(wg + n)
    x = rng.standard_normal((outer, n)).astype(np.float32)
    scale = rng.uniform(0.5, 2, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    close(run_layernorm(x, scale, bias, schedule={"wg": wg}), ref_layernorm(x, scale, bias, 1e-5))


@pytest.mark.parametrize("n", [1, 7, 37, 130, 300])
def test_constant_rows_give_bias(n):
    rng = np.random.default_rng(n)
    x = np.stack([np.full(n, v, np.float32) for v in (0.0, 0.1, -3.3, 1000.5, 1e6)])
    scale = rng.uniform(0.5, 2, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(run_layernorm(x, scale, bias), np.broadcast_to(bias, x.shape))
    np.testing.assert_array_equal(run_layernorm(x, scale, None), 0)


def test_large_offset_small_spread():
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((3, 130))).astype(np.float32)
    scale = np.ones(130, np.float32)
    bias = np.zeros(130, np.float32)
    close(run_layernorm(x, scale, bias, eps=1e-12), ref_layernorm(x, scale, bias, 1e-12))


def test_nan_poisons_its_row_only():
    x = np.ones((2, 37), np.float32)
    x[1] = np.linspace(-1, 1, 37)
    x[0, 5] = np.nan
    scale = np.ones(37, np.float32)
    bias = np.zeros(37, np.float32)
    y = run_layernorm(x, scale, bias)
    assert np.isnan(y[0]).all()
    close(y[1], ref_layernorm(x[1:], scale, bias, 1e-5)[0])


@pytest.mark.parametrize("outer,n", [(0, 5), (3, 0)])
def test_empty_is_a_no_op(outer, n):
    text, dispatch, _ = build("layernorm", dict(outer=outer, n=n, eps=1e-5, bias=True))
    z = np.zeros(max(n, 1), np.float32)
    (y,) = run_kernel(text, dispatch, [np.zeros(1, np.float32), z, z], [((0,), np.float32)])
    assert y.size == 0
