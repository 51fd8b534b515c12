"""gemm kernel family against float64 numpy references (docs/kernels.md, gemm)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnjit.compiler.codegen import wasm
from nnjit.compiler.codegen.gemm_pack import (
    SCHEDULES, gemm_candidates, pack_b, packed_size, valid_schedule, vregs_needed)
from nnjit.compiler.wasm_native import run_kernel

_erf = np.vectorize(math.erf)

ACTS = {
    "none": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "clip": lambda x: np.clip(x, -0.5, 0.75),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
}


def params(M, N, K, mr, nr, *, packed=True, bias=None, residual=False, act="none",
           batch=(), a_strides=(), b_strides=(), c_strides=()):
    return dict(M=M, N=N, K=K, batch=list(batch), a_strides=list(a_strides), b_strides=list(b_strides),
                c_strides=list(c_strides), b_packed=packed, bias=bias, residual=residual, act=act,
                act_min=-0.5 if act == "clip" else None, act_max=0.75 if act == "clip" else None,
                mr=mr, nr=nr)


def check(p, a, b, bias_v=None, res=None, *, variants=("plain", "relaxed")):
    """Run every requested binary of p and compare with the float64 reference."""
    M, N = p["M"], p["N"]
    batch = p["batch"]
    # Reference: broadcast operands to the batch shape through their strides.
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = a64 @ b64
    if bias_v is not None:
        ref = ref + (bias_v[:, None] if p["bias"] == "m" else bias_v[None, :])
    if res is not None:
        ref = ref + res
    ref = ACTS[p["act"]](ref)
    b_mem = pack_b(b, p.get("pw") or p["nr"]) if p["b_packed"] else b
    inputs = [a, b_mem] + ([bias_v] if bias_v is not None else []) + ([res] if res is not None else [])
    plain, relaxed = wasm.build("gemm", p)
    binaries = {"plain": plain, "relaxed": relaxed}
    assert relaxed is not None, "gemm has multiply-adds: build must return a relaxed binary"
    for name in variants:
        out, = run_kernel(binaries[name], inputs, [(tuple(batch) + (M, N), "float32")])
        scale = max(np.abs(ref).max(), 1e-30)
        err = np.abs(out - ref).max() / scale
        assert err <= 1e-5, f"{name} {p}: max error {err:.3g} relative to max|ref|"


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# A covering set of odd shapes: K=1, N below/between multiples of 4 and nr, M below/between mr.
SHAPES = [(1, 1, 1), (3, 7, 1), (7, 3, 37), (37, 130, 7), (130, 37, 130), (1, 130, 37),
          (130, 1, 3), (7, 37, 130), (3, 3, 7), (37, 7, 37)]


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("packed", [True, False])
def test_shapes_default_schedule(M, N, K, packed):
    rng = np.random.default_rng(M * 10000 + N * 100 + K)
    s = gemm_candidates(M, N, K)[0]
    check(params(M, N, K, s["mr"], s["nr"], packed=packed), rand(rng, M, K), rand(rng, K, N))


@pytest.mark.parametrize("mr,nr", SCHEDULES)
def test_every_candidate_schedule(mr, nr):
    rng = np.random.default_rng(mr * 100 + nr)
    # M, N chosen so that each schedule has full tiles plus an M and an N remainder (N % 4 == 1, 3).
    for M, N, K, packed in [(2 * mr + 1, 2 * nr + 3, 13, True), (mr + 2, nr + 1, 5, False), (1, 5, 3, True)]:
        check(params(M, N, K, mr, nr, packed=packed), rand(rng, M, K), rand(rng, K, N))


def test_candidates_valid_and_cover_shapes():
    for M, N, K in SHAPES + [(512, 512, 512), (128, 768, 768), (1, 1000, 1280), (2, 64, 64), (196, 4, 8)]:
        cands = gemm_candidates(M, N, K)
        assert 4 <= len(cands) <= 10
        assert len({(c["mr"], c["nr"]) for c in cands}) == len(cands)
        for c in cands:
            assert set(c) == {"mr", "nr"} and valid_schedule(c["mr"], c["nr"])
            assert (c["mr"], c["nr"]) in SCHEDULES
        # The default also fits the plain (mul + add) variant in registers.
        assert vregs_needed(cands[0]["mr"], cands[0]["nr"], relaxed=False) <= 15
    assert gemm_candidates(512, 512, 512)[0] == {"mr": 4, "nr": 8}
    assert all(c["mr"] == 1 for c in gemm_candidates(1, 1000, 1280))


def test_pack_b_layout():
    B = np.arange(5 * 10, dtype=np.float32).reshape(5, 10)
    P = pack_b(B, 8)
    assert P.shape == (2, 5, 8) and P.dtype == np.float32 and P.flags.c_contiguous
    assert P.size == packed_size(5, 10, 8)
    np.testing.assert_array_equal(P[0], B[:, :8])
    np.testing.assert_array_equal(P[1, :, :2], B[:, 8:])
    assert not P[1, :, 2:].any()
    with pytest.raises(ValueError):
        pack_b(B, 6)


@pytest.mark.parametrize("bias", ["m", "n"])
@pytest.mark.parametrize("residual", [False, True])
def test_bias_residual(bias, residual):
    rng = np.random.default_rng(7)
    M, N, K = 37, 130, 7
    for s in gemm_candidates(M, N, K)[:2]:
        res = rand(rng, M, N) if residual else None
        check(params(M, N, K, s["mr"], s["nr"], bias=bias, residual=residual),
              rand(rng, M, K), rand(rng, K, N), rand(rng, M if bias == "m" else N), res)


def test_residual_only_unpacked():
    rng = np.random.default_rng(8)
    M, N, K = 7, 37, 3
    check(params(M, N, K, 3, 12, packed=False, residual=True), rand(rng, M, K), rand(rng, K, N),
          None, rand(rng, M, N))


@pytest.mark.parametrize("act", [
    "none", "relu", "clip",
    "sigmoid", "tanh",
    "gelu"])
def test_activations(act):
    rng = np.random.default_rng(9)
    M, N, K = 13, 21, 9
    a, b = rand(rng, M, K), rand(rng, K, N)
    check(params(M, N, K, 4, 8, act=act, bias="n", residual=True), a, b, rand(rng, N), rand(rng, M, N))
    check(params(M, N, K, 2, 16, act=act, bias="m", packed=False), a, b, rand(rng, M))


def test_clip_relu_keep_nan_and_bounds():
    # relu/clip map NaN to NaN (numpy semantics); huge bounds saturate to inf instead of failing.
    M, N, K = 1, 5, 1
    a = np.ones((1, 1), np.float32)
    b = np.array([[np.nan, -2.0, 0.1, 3.0, 1e30]], np.float32)
    p = params(M, N, K, 1, 8, act="clip")
    p["act_min"], p["act_max"] = -1.0, 1e40
    out, = run_kernel(wasm.build("gemm", p)[0], [a, pack_b(b, 8)], [((1, 5), "float32")])
    np.testing.assert_array_equal(out, np.array([[np.nan, -1.0, 0.1, 3.0, 1e30]], np.float32))
    p = params(M, N, K, 1, 8, act="relu")
    out, = run_kernel(wasm.build("gemm", p)[1], [a, pack_b(b, 8)], [((1, 5), "float32")])
    np.testing.assert_array_equal(out, np.array([[np.nan, 0.0, 0.1, 3.0, 1e30]], np.float32))


def test_batched_broadcast_strides():
    rng = np.random.default_rng(10)
    M, N, K = 7, 13, 5
    batch = (2, 3)
    # A broadcast over the first batch dim, B over the second, C/residual contiguous.
    a = rand(rng, 3, M, K)
    b = rand(rng, 2, K, N)
    res = rand(rng, 2, 3, M, N)
    p = params(M, N, K, 4, 8, packed=False, residual=True, bias="n", act="relu", batch=batch,
               a_strides=(0, M * K), b_strides=(K * N, 0), c_strides=(3 * M * N, M * N))
    bias_v = rand(rng, N)
    ref = np.maximum(a[None].astype(np.float64) @ b[:, None] + bias_v + res, 0.0)
    plain, relaxed = wasm.build("gemm", p)
    for binary in (plain, relaxed):
        out, = run_kernel(binary, [a, b, bias_v, res], [((2, 3, M, N), "float32")])
        assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


def test_batched_packed_b_shared():
    rng = np.random.default_rng(11)
    M, N, K = 5, 11, 6
    a = rand(rng, 4, M, K)
    b = rand(rng, K, N)
    p = params(M, N, K, 3, 12, packed=True, bias="m", batch=(4,), a_strides=(M * K,), b_strides=(0,),
               c_strides=(M * N,))
    bias_v = rand(rng, M)
    ref = a.astype(np.float64) @ b + bias_v[:, None]
    plain, relaxed = wasm.build("gemm", p)
    for binary in (plain, relaxed):
        out, = run_kernel(binary, [a, pack_b(b, 12), bias_v], [((4, M, N), "float32")])
        assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


def test_large_default_schedule():
    # Sizes of a transformer projection, at which a tile bug in the steady-state loops would show.
    rng = np.random.default_rng(12)
    M, N, K = 64, 96, 256
    s = gemm_candidates(M, N, K)[0]
    check(params(M, N, K, s["mr"], s["nr"], bias="n"), rand(rng, M, K), rand(rng, K, N), rand(rng, N),
          variants=("relaxed",))


def test_schedule_defaults_render_todays_kernel():
    # kb/mb/kunroll/pw at their defaults, or at values that block nothing, are the same kernel.
    for M, N, K, mr, nr in [(37, 130, 7, 4, 8), (130, 37, 130, 3, 12), (1, 1, 1, 1, 8)]:
        base = params(M, N, K, mr, nr, bias="n", residual=True, act="relu")
        text = wasm.render("gemm", base)
        for extra in [dict(kb=0, mb=0, kunroll=1, pw=nr), dict(kb=K), dict(kb=K + 5, mb=M), dict(mb=M + mr)]:
            assert wasm.render("gemm", {**base, **extra}) == text, extra
    with pytest.raises(Exception):
        wasm.render("gemm", {**params(8, 8, 8, 2, 8), "pw": 12})   # nr must divide pw


@pytest.mark.parametrize("kb,mb,kunroll,pw", [(1, 0, 1, 16), (3, 6, 2, 8), (8, 3, 4, 24), (0, 9, 1, 16), (5, 0, 4, 8)])
def test_blocking_unroll_panel_width(kb, mb, kunroll, pw):
    rng = np.random.default_rng(kb * 100 + mb * 10 + kunroll)
    for M, N, K, mr, nr in [(37, 130, 13, 3, 8), (7, 3, 37, 3, 4), (130, 37, 9, 3, 8)]:
        if pw % nr:
            continue
        p = params(M, N, K, mr, nr, bias="m", residual=True, act="clip")
        p.update(kb=kb, mb=mb, kunroll=kunroll, pw=pw)
        check(p, rand(rng, M, K), rand(rng, K, N), rand(rng, M), rand(rng, M, N))
        p.update(b_packed=False, bias="n", act="none")
        check(p, rand(rng, M, K), rand(rng, K, N), rand(rng, N), rand(rng, M, N))


def test_pack_b_wider_panels_hold_narrow_tiles():
    B = np.arange(5 * 20, dtype=np.float32).reshape(5, 20)
    P = pack_b(B, 16)   # a 4x8 tile reads columns 8..15 of panel 0 as its second panel
    np.testing.assert_array_equal(P[0, :, 8:16], B[:, 8:16])
    np.testing.assert_array_equal(P[1, :, :4], B[:, 16:])
