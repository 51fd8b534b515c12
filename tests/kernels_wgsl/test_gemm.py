"""WGSL gemm (kernels_wgsl/gemm.wgsl.j2) against float64 numpy, through wgpu (lavapipe here), and the
WebGPU schedule space (compiler/codegen/wgsl_space.py). Shapes are odd and small: lavapipe is a CPU."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from nnjit.compiler.codegen import wgsl
from nnjit.compiler.codegen.gemm_pack import pack_b
from nnjit.compiler.codegen.wgsl_space import (
    DEFAULT_LIMITS, all_schedules, full, gemm_wgsl_candidates, regs, tile, valid, workgroup_bytes)
from nnjit.compiler.wgpu_native import run_kernel

_erf = np.vectorize(math.erf)
ACTS = {
    "none": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "clip": lambda x: np.clip(x, -0.5, 0.75),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
}


def params(M, N, K, *, packed=False, nr=8, bias=None, residual=False, act="none", batch=(), a_strides=(),
           b_strides=(), c_strides=()):
    return dict(M=M, N=N, K=K, batch=list(batch), a_strides=list(a_strides), b_strides=list(b_strides),
                c_strides=list(c_strides), b_packed=packed, bias=bias, residual=residual, act=act,
                act_min=-0.5 if act == "clip" else None, act_max=0.75 if act == "clip" else None, nr=nr)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def reference(p, a, b, bias_v, res):
    """float64 C for flat operand buffers addressed through the batch strides."""
    M, N, K, batch = p["M"], p["N"], p["K"], p["batch"]
    out = np.zeros(tuple(batch) + (M, N))
    for idx in itertools.product(*[range(d) for d in batch]):
        ao = sum(i * s for i, s in zip(idx, p["a_strides"]))
        bo = sum(i * s for i, s in zip(idx, p["b_strides"]))
        co = sum(i * s for i, s in zip(idx, p["c_strides"]))
        c = a.ravel()[ao:ao + M * K].reshape(M, K).astype(np.float64) @ b.ravel()[bo:bo + K * N].reshape(K, N)
        if bias_v is not None:
            c = c + (bias_v[:, None] if p["bias"] == "m" else bias_v[None, :])
        if res is not None:
            c = c + res.ravel()[co:co + M * N].reshape(M, N)
        out[idx] = ACTS[p["act"]](c)
    return out


def check(p, s, a, b, bias_v=None, res=None, tol=1e-5):
    text, dispatch, info = wgsl.build("gemm", p, s)
    assert info["workgroup"] and info["workgroup"][0] * info["workgroup"][1] <= 256
    b_mem = pack_b(b, p["nr"]) if p["b_packed"] else b
    inputs = [a, b_mem] + ([bias_v] if bias_v is not None else []) + ([res] if res is not None else [])
    shape = tuple(p["batch"]) + (p["M"], p["N"])
    out, = run_kernel(text, dispatch, inputs, [(shape, "float32")])
    ref = reference(p, a, b, bias_v, res)
    err = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err <= tol, f"{s} {p}: max error {err:.3g} relative to max|ref|"


SHAPES = [(1, 1, 1), (3, 7, 1), (7, 3, 37), (37, 130, 7), (130, 37, 130), (1, 130, 37), (130, 1, 3),
          (7, 37, 130), (3, 3, 7), (37, 7, 37), (64, 64, 64), (33, 20, 24)]


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("packed", [False, True])
def test_shapes_default_schedule(M, N, K, packed):
    rng = np.random.default_rng(M * 10000 + N * 100 + K)
    a, b = rand(rng, M, K), rand(rng, K, N)
    check(params(M, N, K, packed=packed), gemm_wgsl_candidates(M, N, K)[0], a, b)


@pytest.mark.parametrize("M,N,K", [(37, 130, 7), (20, 12, 36)])
def test_template_default(M, N, K):
    # s = {} is the template's own default (8x8 threads of 4x4, BK 32, staged, vec4).
    rng = np.random.default_rng(1)
    check(params(M, N, K), {}, rand(rng, M, K), rand(rng, K, N))
    check(params(M, N, K, packed=True, nr=12), {}, rand(rng, M, K), rand(rng, K, N))


# Shapes whose candidate lists together cover the kinds of schedules the space produces: big square,
# transformer projection, GEMV, skinny and tiny.
CANDIDATE_SHAPES = [(512, 512, 512), (128, 768, 768), (1, 1000, 1280), (37, 130, 7), (196, 4, 8), (3, 7, 1)]


def distinct_candidates():
    seen = {}
    for shp in CANDIDATE_SHAPES:
        for s in gemm_wgsl_candidates(*shp):
            seen.setdefault(json.dumps(s, sort_keys=True), s)
    return list(seen.values())


def _odd_cases(s):
    """Two odd problems per schedule: more than one tile with M, N and K remainders; one with every
    operand vectorisable (K, N multiples of 4) and one with none (N % 4 = 3, K odd, packed B)."""
    bm, bn = tile(s)
    bk = full(s).get("bk", 8)
    m1 = min(bm + 3, 2 * bm - 1) if bm > 1 else 2
    return [(m1, bn + 4, 2 * bk + 4, False, 8), (max(1, bm - 1), bn + 3, bk + 5, True, 12)]


@pytest.mark.parametrize("s", distinct_candidates(), ids=lambda s: json.dumps(s, separators=(",", ":")))
def test_every_candidate(s):
    rng = np.random.default_rng(abs(hash(json.dumps(s, sort_keys=True))) % 2**32)
    for M, N, K, packed, nr in _odd_cases(s):
        check(params(M, N, K, packed=packed, nr=nr), s, rand(rng, M, K), rand(rng, K, N))


def test_candidates_render_and_validate():
    # Every candidate for every test shape renders and compiles (naga), beyond the ones run above.
    for shp in SHAPES + CANDIDATE_SHAPES + [(256, 256, 100), (2, 64, 64), (1, 4096, 4096)]:
        for packed in (False, True):
            for s in gemm_wgsl_candidates(*shp):
                text = wgsl.build("gemm", params(*shp, packed=packed), s)[0]
                wgsl.validate(text, f"gemm {shp} {s}")


@pytest.mark.parametrize("shape", SHAPES + CANDIDATE_SHAPES + [(1, 4096, 4096), (4096, 1, 64)])
def test_candidate_rules(shape):
    cands = gemm_wgsl_candidates(*shape)
    assert 8 <= len(cands) <= 30
    assert len({json.dumps(c, sort_keys=True) for c in cands}) == len(cands)
    for c in cands:
        f = full(c)
        assert valid(c)
        assert f["wg"][0] * f["wg"][1] <= DEFAULT_LIMITS["max_invocations"]
        assert workgroup_bytes(c) <= DEFAULT_LIMITS["max_workgroup_storage"]
        assert regs(f["tm"], f["tn"]) <= DEFAULT_LIMITS["max_regs"]
    # Skinny problems get skinny tiles (rule 5).
    M, N, _ = shape
    if M == 1 and N >= 64:
        assert all(tile(c)[0] <= 2 for c in cands)


def test_template_default_matches_space():
    a = wgsl.build("gemm", params(37, 130, 7), {})[0]
    b = wgsl.build("gemm", params(37, 130, 7), full({}))[0]
    assert a == b


def test_candidate_limits():
    lim = {"max_invocations": 128, "max_workgroup_storage": 8192, "max_regs": 40}
    for c in gemm_wgsl_candidates(512, 512, 512, limits=lim):
        f = full(c)
        assert f["wg"][0] * f["wg"][1] <= 128 and workgroup_bytes(c) <= 8192 and regs(f["tm"], f["tn"]) <= 40
    assert all(valid(s) for s in all_schedules())
    assert gemm_wgsl_candidates(512, 512, 512)[0]["stage"]


@pytest.mark.parametrize("bias", ["m", "n"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("N", [130, 36])
def test_bias_residual(bias, residual, N):
    rng = np.random.default_rng(7)
    M, K = 37, 9
    for s in gemm_wgsl_candidates(M, N, K)[:2] + [{"stage": False}]:
        res = rand(rng, M, N) if residual else None
        check(params(M, N, K, packed=True, bias=bias, residual=residual), s,
              rand(rng, M, K), rand(rng, K, N), rand(rng, M if bias == "m" else N), res)


@pytest.mark.parametrize("act", list(ACTS))
def test_activations(act):
    rng = np.random.default_rng(9)
    # N = 21: scalar epilogue; N = 24: vec4 epilogue (vec4 activation functions).
    for M, N, K in [(13, 21, 9), (13, 24, 8)]:
        a, b = rand(rng, M, K), rand(rng, K, N)
        check(params(M, N, K, act=act, bias="n", residual=True), {}, a, b, rand(rng, N), rand(rng, M, N))
        check(params(M, N, K, act=act, bias="m", packed=True), {"stage": False, "wg": [8, 8]}, a, b, rand(rng, M))


def test_relu_clip_keep_nan_and_bounds():
    a = np.ones((1, 1), np.float32)
    b = np.array([[np.nan, -2.0, 0.1, 3.0, 1e30]], np.float32)
    p = params(1, 5, 1, act="clip")
    p["act_min"], p["act_max"] = -1.0, 1e40
    text, d, _ = wgsl.build("gemm", p, {})
    out, = run_kernel(text, d, [a, b], [((1, 5), "float32")])
    np.testing.assert_array_equal(out, np.array([[np.nan, -1.0, 0.1, 3.0, 1e30]], np.float32))
    p = params(1, 5, 1, act="relu")
    text, d, _ = wgsl.build("gemm", p, {})
    out, = run_kernel(text, d, [a, b], [((1, 5), "float32")])
    np.testing.assert_array_equal(out, np.array([[np.nan, 0.0, 0.1, 3.0, 1e30]], np.float32))


def test_k_padding_is_exact_zero():
    # An inf in the last B row must not leak into other columns as 0·inf = NaN from the K padding.
    M, N, K = 5, 8, 5
    a = np.ones((M, K), np.float32)
    b = np.ones((K, N), np.float32)
    b[K - 1, 3] = np.inf
    for s in [{}, {"stage": False}, {"vec": 1}]:
        text, d, _ = wgsl.build("gemm", params(M, N, K), s)
        out, = run_kernel(text, d, [a, b], [((M, N), "float32")])
        want = np.full((M, N), K, np.float32)
        want[:, 3] = np.inf
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("s", [{}, {"stage": False, "wg": [8, 8], "tm": 2, "tn": 8}])
def test_batched_broadcast_strides(s):
    rng = np.random.default_rng(10)
    M, N, K = 7, 13, 5
    batch = (2, 3)
    # A broadcast over the first batch dim, B over the second, C/residual contiguous.
    a = rand(rng, 3, M, K)
    b = rand(rng, 2, K, N)
    res = rand(rng, 2, 3, M, N)
    p = params(M, N, K, residual=True, bias="n", act="relu", batch=batch,
               a_strides=(0, M * K), b_strides=(K * N, 0), c_strides=(3 * M * N, M * N))
    check(p, s, a, b, rand(rng, N), res)
    # Same with vectorisable shapes (K, N multiples of 4).
    M, N, K = 9, 12, 8
    a, b, res = rand(rng, 3, M, K), rand(rng, 2, K, N), rand(rng, 2, 3, M, N)
    p = params(M, N, K, residual=True, bias="m", act="gelu", batch=batch,
               a_strides=(0, M * K), b_strides=(K * N, 0), c_strides=(3 * M * N, M * N))
    check(p, s, a, b, rand(rng, M), res)


def test_batched_packed_b_shared():
    rng = np.random.default_rng(11)
    M, N, K = 5, 11, 6
    p = params(M, N, K, packed=True, nr=12, bias="m", batch=(4,), a_strides=(M * K,), b_strides=(0,),
               c_strides=(M * N,))
    for s in [{}, {"stage": False}]:
        check(p, s, rand(rng, 4, M, K), rand(rng, K, N), rand(rng, M))


def test_batched_folded_dispatch():
    # More batch entries than one dispatch dimension allows: the grid is folded over x·y.
    rng = np.random.default_rng(12)
    nb, M, N, K = 70000, 1, 3, 2
    p = params(M, N, K, batch=(nb,), a_strides=(M * K,), b_strides=(0,), c_strides=(M * N,))
    s = {"wg": [64, 1], "tm": 1, "tn": 4, "stage": False}
    dispatch = wgsl.build("gemm", p, s)[1]
    assert dispatch[1] > 1 and all(d <= 65535 for d in dispatch)
    check(p, s, rand(rng, nb, M, K), rand(rng, K, N))


def test_large_default_schedule():
    # A transformer-projection-like size where the steady-state K loop runs many slices.
    rng = np.random.default_rng(13)
    M, N, K = 64, 96, 256
    check(params(M, N, K, packed=True, bias="n"), gemm_wgsl_candidates(M, N, K)[0],
          rand(rng, M, K), rand(rng, K, N), rand(rng, N))
