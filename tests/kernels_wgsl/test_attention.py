"""WGSL kvwrite and attention kernels vs float64 numpy (the cases of tests/kernels/test_attention.py),
plus workgroup sizes smaller and larger than the key range and the head dim."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_attention import GRID, KV_CASES, attention_case, kv_positions, ref_attention


def run_attention(params, inputs, schedule=None):
    text, dispatch, _ = build("attention", params, schedule)
    H, S, D = params["H"], params["S"], params["D"]
    return run_kernel(text, dispatch, inputs, [((H, S, D), np.float32)])[0]


def check(out, ref):
    scale = max(np.abs(ref).max(), 1e-30)
    err = np.abs(out - ref).max() / scale
    assert err <= 1e-5, f"error {err:.3g} of max|ref|"


# ---------------------------------------------------------------------------------------------- kvwrite

@pytest.mark.parametrize("pos_dtype", ["int64", "int32"])
@pytest.mark.parametrize("H,S,D,T", KV_CASES)
def test_kvwrite(H, S, D, T, pos_dtype):
    """The cache starts as NaN guard words: rows named by pos get src, every other row keeps its bits."""
    rng = np.random.default_rng(H + S + D + T)
    src = rng.standard_normal((H, S, D)).astype(np.float32)
    pos = kv_positions(S, T, rng, pos_dtype)
    text, dispatch, _ = build("kvwrite", dict(H=H, S=S, D=D, T=T, pos_dtype=pos_dtype))
    (got,) = run_kernel(text, dispatch, [src, pos], [((H, T, D), np.float32)])
    written = {int(p): s for s, p in enumerate(pos) if 0 <= p < T}
    for p in range(T):
        if p in written:
            np.testing.assert_array_equal(got[:, p], src[:, written[p]])
        else:
            assert (got[:, p].view(np.uint32) == 0xFFFFFFFF).all()


# -------------------------------------------------------------------------------------------- attention

@pytest.mark.parametrize("H,Hkv,S,D,T,W", GRID)
def test_attention_grid(H, Hkv, S, D, T, W):
    params, inputs, ref = attention_case(H, Hkv, S, D, T, W, "int64")
    check(run_attention(params, inputs), ref)


@pytest.mark.parametrize("pos_dtype", ["int64", "int32"])
@pytest.mark.parametrize("window", [0, 3])
def test_attention_positions(pos_dtype, window):
    H, Hkv, S, D, T = 4, 2, 8, 37, 130
    pos = [-1, 0, 1, 2, 65, 129, 200, -5]
    params, inputs, ref = attention_case(H, Hkv, S, D, T, window, pos_dtype, pos=pos)
    out = run_attention(params, inputs)
    check(out, ref)
    zero = [0, 7] + ([6] if window else [])
    assert (out[:, zero].view(np.uint32) == 0).all()


@pytest.mark.parametrize("wg", [1, 2, 32, 256])
@pytest.mark.parametrize("D,T,pos", [(7, 130, [129, 3, -1]), (300, 20, [19, 0, 7]), (64, 600, [599, 270, 1])])
def test_workgroup_sizes(wg, D, T, pos):
    """Key ranges shorter and longer than a chunk, head dims past the workgroup size (several per thread)."""
    params, inputs, ref = attention_case(4, 2, len(pos), D, T, 0, "int32", pos=pos)
    check(run_attention(params, inputs, {"wg": wg}), ref)


def test_attention_reads_no_key_past_p():
    H, Hkv, S, D, T = 2, 1, 5, 7, 40
    params, (q, pos, k, v), _ = attention_case(H, Hkv, S, D, T, 0, "int32", pos=[0, 3, 5, 17, 21])
    k[:, 22:] = np.nan
    v[:, 22:] = np.nan
    out = run_attention(params, [q, pos, k, v])
    assert np.isfinite(out).all()
    check(out, ref_attention(q, pos, k, v, params["scale"], 0))


def test_attention_large_scores():
    H, Hkv, S, D, T = 1, 1, 2, 9, 200
    params, (q, pos, k, v), _ = attention_case(H, Hkv, S, D, T, 0, "int64", pos=[199, 130])
    k *= np.linspace(1, 40, T, dtype=np.float32)[None, :, None]
    out = run_attention(params, [q, pos, k, v])
    assert np.isfinite(out).all()
    check(out, ref_attention(q, pos, k, v, params["scale"], 0))


def test_attention_prefill():
    S, H, Hkv, D, T = 128, 2, 1, 16, 160
    params, inputs, ref = attention_case(H, Hkv, S, D, T, 4, "int64", pos=list(range(S)))
    check(run_attention(params, inputs), ref)


def test_many_rows_fold_dispatch():
    """More query rows than 65535 workgroups can take in one dimension."""
    H, Hkv, S, D, T = 2, 1, 33000, 1, 2
    params, inputs, ref = attention_case(H, Hkv, S, D, T, 0, "int32", pos=[1, 0, -1] * 11000)
    text, dispatch, _ = build("attention", params, {"wg": 1})
    assert dispatch[1] > 1
    (out,) = run_kernel(text, dispatch, inputs, [((H, S, D), np.float32)])
    check(out, ref)


def test_long_context():
    """lavapipe stops every loop of an invocation after 65535 back-edges in all (its infinite-loop guard):
    a 20000-key row must stay far inside that."""
    H, Hkv, S, D, T = 2, 1, 2, 64, 20000
    params, inputs, ref = attention_case(H, Hkv, S, D, T, 0, "int64", pos=[T - 1, 5000])
    check(run_attention(params, inputs), ref)
