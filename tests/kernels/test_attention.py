"""kvwrite and attention kernels (decoder KV cache) vs float64 numpy: padding, first, middle and last
positions, grouped-query heads, sliding windows, odd head dims; guard bytes around every buffer; run_part
in 2 and 3 parts bit-equal to run; kvwrite leaves every other cache row as it was."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel


def ref_kvwrite(src, pos, cache):
    out = cache.copy()
    T = cache.shape[1]
    for s, p in enumerate(pos):
        if 0 <= p < T:
            out[:, p] = src[:, s]
    return out


def ref_attention(q, pos, k, v, scale, window):
    H, S, D = q.shape
    Hkv, T, _ = k.shape
    out = np.zeros((H, S, D))
    for h in range(H):
        g = h // (H // Hkv)
        for s, p in enumerate(pos):
            if p < 0:
                continue
            hi = min(p, T - 1)
            lo = max(0, p - window + 1) if window else 0
            if lo > hi:
                continue
            sc = scale * (k[g, lo:hi + 1].astype(np.float64) @ q[h, s].astype(np.float64))
            e = np.exp(sc - sc.max())
            out[h, s] = (e / e.sum()) @ v[g, lo:hi + 1].astype(np.float64)
    return out


def pos_array(pos, dtype):
    return np.asarray(pos, dtype=np.int64 if dtype == "int64" else np.int32)


def run_entry(binary, inputs, out_init, parts=None):
    """run (or run_part in `parts` parts) with the output prefilled by out_init; guards checked."""
    return run_kernel(binary, list(inputs), [(out_init.shape, out_init.dtype)], out_init=[out_init], parts=parts)[0]


def kv_positions(S, T, rng, dtype):
    """S distinct cache rows to write: padding (-1), 0, the middle, T-1, rows past the end (skipped),
    a negative and the int32 maximum first, then random rows."""
    cand = [-1, 0, T // 2, T - 1, T, T + 5, -7, 2 ** 31 - 1]
    pos = []
    for x in cand + list(rng.permutation(T)):
        if len(pos) == S:
            break
        if not (0 <= x < T and x in pos):
            pos.append(int(x))
    return pos_array(pos, dtype)


def positions(S, T, k):
    """S positions: T-1, padding (-1), 0 and T//2 (rotated by k, so S = 1 cases differ), then random ones."""
    base = [T - 1, -1, 0, T // 2]
    base = base[k % 4:] + base[:k % 4]
    rest = np.random.default_rng(S * 1000 + T + k).integers(-1, T, max(S - 4, 0)).tolist()
    return (base + rest)[:S]


# ---------------------------------------------------------------------------------------------- kvwrite

KV_CASES = [(2, 7, 37, 130), (1, 1, 1, 1), (3, 7, 7, 130), (2, 1, 64, 130), (1, 7, 4, 9), (2, 5, 6, 8)]


@pytest.mark.parametrize("pos_dtype", ["int64", "int32"])
@pytest.mark.parametrize("H,S,D,T", KV_CASES)
def test_kvwrite(H, S, D, T, pos_dtype):
    rng = np.random.default_rng(H + S + D + T)
    src = rng.standard_normal((H, S, D)).astype(np.float32)
    cache = rng.standard_normal((H, T, D)).astype(np.float32)
    pos = kv_positions(S, T, rng, pos_dtype)
    plain, relaxed = build("kvwrite", dict(H=H, S=S, D=D, T=T, pos_dtype=pos_dtype))
    assert relaxed is None
    got = run_entry(plain, [src, pos], cache)
    ref = ref_kvwrite(src, pos, cache)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_kvwrite_only_touches_its_rows():
    """Through run_kernel the cache starts as NaN guard bytes: every row not named by pos keeps them."""
    H, S, D, T = 2, 3, 5, 6
    src = np.arange(H * S * D, dtype=np.float32).reshape(H, S, D)
    pos = np.array([4, -1, 1], np.int64)
    plain, _ = build("kvwrite", dict(H=H, S=S, D=D, T=T, pos_dtype="int64"))
    (got,) = run_kernel(plain, [src, pos], [((H, T, D), np.float32)])
    bits = got.view(np.uint32)
    for p in range(T):
        if p == 4:
            np.testing.assert_array_equal(got[:, p], src[:, 0])
        elif p == 1:
            np.testing.assert_array_equal(got[:, p], src[:, 2])
        else:
            assert (bits[:, p] == 0xFFFFFFFF).all()


def test_kvwrite_int64_high_word_ignored():
    """The low 32 bits decide: -1 as int64 is all ones and is skipped."""
    H, S, D, T = 1, 2, 3, 4
    src = np.ones((H, S, D), np.float32)
    cache = np.zeros((H, T, D), np.float32)
    pos = np.array([-1, 3], np.int64)
    plain, _ = build("kvwrite", dict(H=H, S=S, D=D, T=T, pos_dtype="int64"))
    got = run_entry(plain, [src, pos], cache)
    np.testing.assert_array_equal(got[0, :, 0], [0, 0, 0, 1])


# -------------------------------------------------------------------------------------------- attention

def attention_case(H, Hkv, S, D, T, window, pos_dtype, seed=0, pos=None):
    rng = np.random.default_rng(seed + H + 3 * S + 5 * D + 7 * T + window)
    q = rng.standard_normal((H, S, D)).astype(np.float32)
    k = rng.standard_normal((Hkv, T, D)).astype(np.float32)
    v = rng.standard_normal((Hkv, T, D)).astype(np.float32)
    pos = pos_array(positions(S, T, D + window) if pos is None else pos, pos_dtype)
    params = dict(H=H, Hkv=Hkv, S=S, D=D, T=T, scale=float(1.5 / np.sqrt(D)), window=window, pos_dtype=pos_dtype)
    return params, [q, pos, k, v], ref_attention(q, pos, k, v, params["scale"], window)


def check_attention(params, inputs, ref, parts=(2, 3)):
    H, S, D = params["H"], params["S"], params["D"]
    plain, relaxed = build("attention", params)
    assert relaxed is not None
    out0 = np.full((H, S, D), np.nan, np.float32)
    scale = max(np.abs(ref).max(), 1e-30)
    for name, binary in (("plain", plain), ("relaxed", relaxed)):
        full = run_entry(binary, inputs, out0)
        err = np.abs(full - ref).max() / scale
        assert err <= 1e-5, f"{name} {params}: error {err:.3g} of max|ref|"
        # relative per element where the output is not a cancellation near 0
        big = np.abs(ref) > 1e-2 * scale
        rel = (np.abs(full - ref)[big] / np.abs(ref)[big]).max(initial=0)
        assert rel <= 1e-4, f"{name} {params}: relative error {rel:.3g}"
        for n in parts:
            got = run_entry(binary, inputs, out0, n)
            assert np.array_equal(got.view(np.uint32), full.view(np.uint32)), f"{name} {params}: run_part x{n} != run"
    return full


GRID = [(H, Hkv, S, D, T, W)
        for H, Hkv in [(4, 1), (2, 2)]
        for S in (1, 7)
        for D in (1, 7, 37, 64)
        for T in (1, 130)
        for W in (0, 3)]


@pytest.mark.parametrize("H,Hkv,S,D,T,W", GRID)
def test_attention_grid(H, Hkv, S, D, T, W):
    params, inputs, ref = attention_case(H, Hkv, S, D, T, W, "int64")
    check_attention(params, inputs, ref)


@pytest.mark.parametrize("pos_dtype", ["int64", "int32"])
def test_attention_positions(pos_dtype):
    """Padding rows are exactly 0; p past the end sees every key; a window past the end sees none."""
    H, Hkv, S, D, T = 4, 2, 8, 37, 130
    pos = [-1, 0, 1, 2, 65, 129, 200, -5]
    params, inputs, ref = attention_case(H, Hkv, S, D, T, 0, pos_dtype, pos=pos)
    out = check_attention(params, inputs, ref)
    assert (out[:, [0, 7]].view(np.uint32) == 0).all()
    # key 0 only: the output is V[g, 0] itself
    np.testing.assert_allclose(out[:, 1], inputs[3][[0, 0, 1, 1], 0], rtol=1e-6)
    params, inputs, ref = attention_case(H, Hkv, S, D, T, 3, pos_dtype, pos=pos)
    out = check_attention(params, inputs, ref)
    assert (out[:, [0, 6, 7]].view(np.uint32) == 0).all()  # 200 - 3 + 1 > T - 1: no key in its window


def test_attention_reads_no_key_past_p():
    """Keys after hi are NaN: any read of them would poison the output."""
    H, Hkv, S, D, T = 2, 1, 5, 7, 40
    pos = [0, 3, 5, 17, 21]
    params, (q, pos_a, k, v), _ = attention_case(H, Hkv, S, D, T, 0, "int32", pos=pos)
    k[:, 22:] = np.nan
    v[:, 22:] = np.nan
    ref = ref_attention(q, pos_a, k, v, params["scale"], 0)
    out = check_attention(params, [q, pos_a, k, v], ref)
    assert np.isfinite(out).all()


def test_attention_large_scores():
    """Scores far apart (e^-100 weights) and a block max that keeps rising: the online rescale."""
    H, Hkv, S, D, T = 1, 1, 2, 9, 50
    params, (q, pos, k, v), _ = attention_case(H, Hkv, S, D, T, 0, "int64", pos=[49, 30])
    k *= np.linspace(1, 40, T, dtype=np.float32)[None, :, None]
    ref = ref_attention(q, pos, k, v, params["scale"], 0)
    out = check_attention(params, [q, pos, k, v], ref)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("S,H,Hkv", [(128, 2, 1), (3, 8, 2)])
def test_attention_prefill_and_decode_parts(S, H, Hkv):
    """A prefill (positions 0..S-1) and more parts than rows."""
    D, T = 16, 160
    params, inputs, ref = attention_case(H, Hkv, S, D, T, 0, "int64", pos=list(range(S)))
    check_attention(params, inputs, ref, parts=(2, 3, 5, 64))
