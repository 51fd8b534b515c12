"""The WASM gemm schedule space (compiler/space.py) and the kernel features it uses: every candidate
kind on odd shapes, candidates of the zoo's gemm shapes, and run_part against run."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nnjit.compiler.codegen import wasm
from nnjit.compiler.codegen.gemm_pack import gemm_candidates, pack_b, vregs_needed
from nnjit.compiler.space import DEVICES, packing_width, wasm_gemm_space, wasm_gemm_space_all
from nnjit.compiler.wasm_native import GUARD, Memory, run_kernel

from ..tiers import keep
from .test_gemm import ACTS, rand

BIG = [(512, 512, 512), (128, 768, 768), (32, 1024, 784), (1, 1000, 1280), (2, 64, 64), (3, 96, 48),
       (1280, 49, 320), (96, 12544, 16), (4096, 64, 2048)]
ODD = [(1, 1, 1), (3, 7, 1), (7, 3, 37), (37, 130, 7), (130, 37, 130), (1, 130, 37), (130, 1, 3), (37, 7, 37)]
# (bias, residual, act), rotated over the runs so that each appears with many kinds.
EPILOGUES = [(None, False, "none"), ("m", True, "relu"), ("n", True, "clip"), ("n", False, "sigmoid"),
             ("m", False, "tanh"), (None, True, "gelu"), ("n", False, "none"), ("m", True, "none")]


def _key(e, M, K):
    kb, mb = e.get("kb", 0), e.get("mb", 0)
    return (e["mr"], e["nr"], 0 if kb >= K else kb, 0 if mb >= M else mb, e.get("kunroll", 1))


def spaces():
    for (M, N, K), packed in itertools.product(BIG + ODD, (False, True)):
        pw = packing_width(M, N, K) if packed else None
        yield (M, N, K), pw


def test_space_rules_and_default_first():
    for (M, N, K), pw in spaces():
        union = wasm_gemm_space_all(M, N, K, packed_nr=pw)
        today = [c for c in gemm_candidates(M, N, K) if not pw or pw % c["nr"] == 0][0]
        assert {"mr": union[0]["mr"], "nr": union[0]["nr"]} == today
        assert len({_key(e, M, K) for e in union}) == len(union), "two entries for one kernel"
        assert len(union) <= 60
        for device, dev in DEVICES.items():
            space = wasm_gemm_space(M, N, K, packed_nr=pw, device=device)
            assert space[0] == union[0]
            assert all(_key(e, M, K) in {_key(u, M, K) for u in union} for e in space)
            for e in space:
                assert vregs_needed(e["mr"], e["nr"]) <= dev.vregs, (device, e)
                assert e["nr"] % 4 == 0 and e["mr"] <= max(M, 1)
                assert e.get("kb", 0) == 0 or 0 < e["kb"] < K
                assert e.get("mb", 0) == 0 or 0 < e["mb"] < M
                assert pw or ("kb" in e and "mb" in e), "run-time B entries must override a blocked default"
                assert e.get("mb", 0) % e["mr"] == 0 and e.get("kunroll", 1) in (1, 2, 4)
                if pw:
                    assert pw % e["nr"] == 0 and e.get("pw", e["nr"]) == pw
                else:
                    assert "pw" not in e
    # Big M fills the register file: nothing under the fill rule, and no x86 tile over 15 registers.
    x86 = wasm_gemm_space(512, 512, 512, device="x86-64")
    assert min(vregs_needed(e["mr"], e["nr"]) for e in x86) >= 0.7 * 15
    assert any(vregs_needed(e["mr"], e["nr"]) > 15 for e in wasm_gemm_space(512, 512, 512, device="arm64"))
    assert 10 <= len(wasm_gemm_space_all(512, 512, 512)) <= 60
    # Run-time B: the default is blocked where the caches call for it (measured, docs/space.md).
    assert wasm_gemm_space_all(512, 512, 512)[0] == {"mr": 4, "nr": 8, "kb": 256, "mb": 256}
    assert wasm_gemm_space_all(160, 49, 960)[0] == {"mr": 4, "nr": 8, "kb": 320, "mb": 0}
    assert wasm_gemm_space_all(16, 12544, 32)[0] == {"mr": 4, "nr": 8, "kb": 0, "mb": 0}
    assert wasm_gemm_space_all(512, 512, 512, packed_nr=8)[0] == {"mr": 4, "nr": 8}
    # A tiny gemm has few distinct kernels, and the space does not pretend otherwise.
    assert len(wasm_gemm_space_all(1, 1, 1)) <= 3


def test_packing_width_rule():
    assert packing_width(512, 512, 512) == 16
    assert packing_width(32, 10, 1024) == 8           # narrow N: no padding beyond the default tile
    assert packing_width(1, 1000, 1280) == 24         # default 1x24 does not divide 16: keep its nr
    for (M, N, K), pw in spaces():
        if pw:
            assert pw % wasm_gemm_space_all(M, N, K, packed_nr=pw)[0]["nr"] == 0


def kinds():
    """Every distinct candidate kind of the spaces above: tile × (kb?, mb?, kunroll)."""
    out = {}
    for (M, N, K), pw in spaces():
        for e in wasm_gemm_space_all(M, N, K, packed_nr=pw):
            out.setdefault((e["mr"], e["nr"], bool(e.get("kb")), bool(e.get("mb")), e.get("kunroll", 1)), None)
    return sorted(out)


KINDS = kinds()


def test_kinds_cover_every_dimension():
    assert {1, 2} <= {k[4] for k in KINDS}
    # The batched 37×130 case cuts each matrix by row tiles (tiles ≥ panels) for some kinds, by column
    # panels for others: run_part's two ways of cutting a matrix are both checked over 3 matrices.
    assert {-(-37 // k[0]) >= -(-130 // k[1]) for k in KINDS} == {True, False}
    assert any(k[2] and k[3] for k in KINDS) and any(k[2] and not k[3] for k in KINDS)
    assert any(k[3] and not k[2] for k in KINDS)


def gemm_params(M, N, K, sched, *, packed, epi, batch=()):
    bias, residual, act = epi
    nb = len(batch)
    inner = [int(np.prod(batch[d + 1:])) for d in range(nb)]
    return dict(M=M, N=N, K=K, batch=list(batch), a_strides=[i * M * K for i in inner],
                b_strides=[0 if packed else i * K * N for i in inner], c_strides=[i * M * N for i in inner],
                b_packed=packed, bias=bias, residual=residual, act=act,
                act_min=-0.5 if act == "clip" else None, act_max=0.75 if act == "clip" else None, **sched)


def operands(rng, p):
    M, N, K, batch = p["M"], p["N"], p["K"], tuple(p["batch"])
    a = rand(rng, *batch, M, K)
    b = rand(rng, K, N) if p["b_packed"] else rand(rng, *batch, K, N)
    bias_v = rand(rng, M if p["bias"] == "m" else N) if p["bias"] else None
    res = rand(rng, *batch, M, N) if p["residual"] else None
    ref = a.astype(np.float64) @ b
    if bias_v is not None:
        ref = ref + (bias_v[:, None] if p["bias"] == "m" else bias_v)
    if res is not None:
        ref = ref + res
    b_mem = pack_b(b, p.get("pw") or p["nr"]) if p["b_packed"] else b
    inputs = [a, b_mem] + ([bias_v] if bias_v is not None else []) + ([res] if res is not None else [])
    return inputs, ref   # before the activation: errors scale with it, not with act(ref)


def run_entry(binary, inputs, out_shape, parts=None):
    """run, or run_part(..., t, parts) for t = 0..parts-1 in sequence, on guarded memory; returns C."""
    return run_kernel(binary, inputs, [(out_shape, np.float32)], parts=parts)[0]


def check_all(p, rng, parts=()):
    """Both binaries against float64 numpy; run_part for each of `parts` bit-equal to run."""
    inputs, pre = operands(rng, p)
    ref = ACTS[p["act"]](pre)
    out_shape = tuple(p["batch"]) + (p["M"], p["N"])
    # Relative to the largest sum (clip bounds the output, not the sum's rounding); the math
    # functions' contract is absolute below |y| = 1.
    scale = max(np.abs(pre).max(), 1e-30 if p["act"] in ("none", "relu", "clip") else 1.0)
    for name, binary in zip(("plain", "relaxed"), wasm.build("gemm", p)):
        full = run_entry(binary, inputs, out_shape)
        err = np.abs(full - ref).max() / scale
        assert err <= 1e-5, f"{name} {p}: error {err:.3g} of max|ref|"
        for n in parts:
            got = run_entry(binary, inputs, out_shape, n)
            assert np.array_equal(got.view(np.uint32), full.view(np.uint32)), f"{name} {p}: run_part x{n} != run"


def small_variant(kind, K, M):
    """The kind's schedule with kb/mb small enough to block these odd shapes."""
    mr, nr, kb, mb, u = kind
    s = {"mr": mr, "nr": nr}
    if kb:
        s["kb"] = max(1, min(K - 1, 5 if K < 20 else 16))
    if mb:
        s["mb"] = 2 * mr
    if u != 1:
        s["kunroll"] = u
    return s


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: "%dx%d%s%s-u%d" % (k[0], k[1], "-kb" if k[2] else "", "-mb" if k[3] else "", k[4]))
def test_every_kind_on_odd_shapes(kind):
    rng = np.random.default_rng(abs(hash(kind)) % 2**32)
    mr, nr = kind[:2]
    j = KINDS.index(kind)
    for i, (M, N, K) in enumerate([(2 * mr + 1, 2 * nr + 3, 37), (37, 130, 7), (mr, nr + 1, 9), (130, 37, 130)]):
        epi = EPILOGUES[(i + j) % len(EPILOGUES)]
        if epi[2] in ("sigmoid", "tanh", "gelu") and M * N < 16:
            epi = (epi[0], epi[1], "relu")
        s = small_variant(kind, K, M)
        packed = (i + j) % 2 == 0
        if packed and i % 3 == 0 and nr <= 16:
            s["pw"] = 2 * nr if nr != 12 else 24   # panels wider than the tile
        batch = [(), (3,), (2, 2), ()][i]
        check_all(gemm_params(M, N, K, s, packed=packed, epi=epi, batch=batch), rng,
                  parts=(1, 2, 3, 4) if i < 3 else (2,))   # batch (3,) with 4 parts: every matrix cut


@pytest.fixture(scope="module")
def zoo_gemm_shapes():
    """(M, N, K, batch, b_packed) of every gemm step of the zoo models, from the lowering."""
    from nnjit.bench import zoo
    from nnjit.compiler.lower import lower
    from nnjit.compiler.onnx_import import import_onnx
    from nnjit.compiler.pipeline import optimize
    bind = {"digits-cnn": {"input": [1, 1, 8, 8]},
            "minilm-l6": {k: [1, 128] for k in ("input_ids", "attention_mask", "token_type_ids")}}
    shapes = set()
    for name in zoo.names():
        if any(i["name"].startswith("past.") for i in zoo.spec(name).inputs):
            continue  # decoders: their gemms are the shapes of tests/test_decoders.py's bundles
        dynamic = {i["name"]: [d if isinstance(d, int) else 1 for d in i["shape"]]
                   for i in zoo.spec(name).inputs if any(isinstance(d, str) for d in i["shape"])}
        g = import_onnx(zoo.cached(name), bind.get(name) or dynamic or None)
        optimize(g)
        for s in lower(g, name).steps:
            if s.family == "gemm":
                p = s.params
                shapes.add((p["M"], p["N"], p["K"], tuple(p["batch"]), p["b_packed"]))
    return sorted(shapes)


def test_zoo_gemm_candidates(zoo_gemm_shapes):
    """Every candidate of every zoo gemm shape, plain and relaxed, against numpy (`make test-all`,
    ~100 s on 2 cores); `make test` checks the default and a rotating quarter of each shape's space."""
    assert len(zoo_gemm_shapes) >= 15
    rng = np.random.default_rng(2026)
    for n, (M, N, K, batch, packed) in enumerate(zoo_gemm_shapes):
        pw = packing_width(M, N, K) if packed else None
        space = wasm_gemm_space_all(M, N, K, packed_nr=pw)
        for i, s in enumerate(space):
            if not keep(i, n, 4):
                continue
            epi = EPILOGUES[(n + i) % len(EPILOGUES)]
            if epi[2] in ("sigmoid", "tanh", "gelu") and M * N < 16:
                epi = (epi[0], epi[1], "relu")
            check_all(gemm_params(M, N, K, s, packed=packed, epi=epi, batch=batch), rng,
                      parts=(3,) if i == 0 else ())


@pytest.mark.parametrize("sched", [{"mr": 4, "nr": 8}, {"mr": 3, "nr": 8, "kb": 5, "mb": 6, "pw": 16},
                                   {"mr": 2, "nr": 16, "kb": 4, "kunroll": 2}])
def test_residual_in_place(sched):
    """The residual may be C itself: K blocks add it with the first block, before C holds sums."""
    rng = np.random.default_rng(5)
    M, N, K = 37, 21, 19
    p = gemm_params(M, N, K, sched, packed=True, epi=("n", True, "relu"))
    a, b, bias_v, res = rand(rng, M, K), rand(rng, K, N), rand(rng, N), rand(rng, M, N)
    ref = np.maximum(a.astype(np.float64) @ b + bias_v + res, 0)
    for binary in wasm.build("gemm", p):
        for parts in (None, 2):
            # run(a, b, bias, res, c) with res == c: lay C out as the residual input, pass it twice.
            inputs = [a, pack_b(b, sched.get("pw", sched["nr"])), bias_v]
            sizes = [x.nbytes for x in inputs] + [res.nbytes]
            addrs, cur = [], GUARD
            for n in sizes:
                addrs.append(cur)
                cur += -(-n // 64) * 64 + GUARD
            mem = Memory(cur + GUARD)
            for x, addr in zip(inputs + [res], addrs):
                mem.view(addr, x.shape, np.float32)[:] = x
            ex = mem.instantiate_module(binary).exports(mem.store)
            args = addrs + [addrs[-1]]
            for t in ([None] if parts is None else range(parts)):
                mem.call(ex["run"], *args) if t is None else mem.call(ex["run_part"], *args, t, parts)
            out = mem.view(addrs[-1], (M, N), np.float32)
            assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
