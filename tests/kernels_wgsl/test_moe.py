"""WGSL moe kernel vs the float64 numpy reference on the odd shapes of tests/kernels/test_moe.py: all
resident, substitute/skip tables, int32 ids and other activations, gated SwiGLU experts, and workgroups
smaller than the hidden and output sizes."""
import numpy as np
import pytest

from nnjit.compiler import moe_layout
from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_moe import case, params


def run(p, x, ids, gates, table, store, schedule=None):
    text, dispatch, _ = build("moe", p, schedule)
    T, H = x.shape
    scratch = np.zeros(moe_layout.scratch_floats(p["F"], p["gated"]), np.float32)
    args = [x, ids, gates, np.asarray(table, np.int32), store]
    return run_kernel(text, dispatch, args, [((T, H), np.float32), (scratch.shape, np.float32)],
                      out_init=[np.full((T, H), 7.0, np.float32), scratch])[0]


def check(got, want):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("T,H,k,E", [(1, 1, 1, 3), (7, 37, 2, 8), (37, 7, 2, 3), (7, 130, 1, 8), (1, 130, 2, 8)])
def test_wgsl_moe_all_resident(T, H, k, E):
    rng = np.random.default_rng(T * 1000 + H * 10 + k + E)
    F = 2 * H + 3 if H < 100 else 19
    x, ids, g, store = case(T, H, F, E, k, rng)
    check(run(params(T, H, F, E, k), x, ids, g, np.arange(E), store),
          moe_layout.reference(x, ids, g, np.arange(E), store, H, F, "relu"))


def test_wgsl_moe_substitute_skip_int32_gelu_small_workgroup():
    rng = np.random.default_rng(5)
    T, H, F, E, k = 7, 37, 9, 8, 2
    x, ids, g, store = case(T, H, F, E, k, rng)
    resident = store[[1, E - 1]]
    table = np.full(E, -1)
    table[1], table[E - 1], table[0] = 0, 1, 1
    got = run(params(T, H, F, E, k, act="gelu", idx_bytes=4), x, ids.astype(np.int32), g, table, resident, {"wg": 4})
    check(got, moe_layout.reference(x, ids, g, table, resident, H, F, "gelu"))


@pytest.mark.parametrize("T,H,F,E,k", [(7, 37, 5, 8, 2), (1, 130, 19, 3, 1)])
def test_wgsl_moe_gated(T, H, F, E, k):
    rng = np.random.default_rng(T + H + F)
    x, ids, g, store = case(T, H, F, E, k, rng, gated=True)
    table = np.array([(e + 1) % E for e in range(E)])
    got = run(params(T, H, F, E, k, act="silu", gated=True), x, ids, g, table, store)
    check(got, moe_layout.reference(x, ids, g, table, store, H, F, "silu", gated=True))
