"""moe kernel (the experts half of a MoE FFN) vs the float64 numpy reference on odd shapes: tokens 1, 7,
37; hidden 1, 7, 37, 130; k 1, 2; 3 and 8 experts; slot tables that keep, substitute and skip
experts; run_tokens over a sub-range; guard bytes around every buffer (run_kernel)."""
import itertools

import numpy as np
import pytest

from nnjit.compiler import moe_layout
from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel


def params(T, H, F, E, k, act="relu", idx_bytes=8, gated=False):
    return {"T": T, "H": H, "F": F, "E": E, "k": k, "act": act, "idx_bytes": idx_bytes, "gated": gated,
            **moe_layout.layout(H, F, gated)}


def case(T, H, F, E, k, rng, gated=False):
    F1 = 2 * F if gated else F
    w1 = rng.standard_normal((E, H, F1)).astype(np.float32) / np.sqrt(H)
    b1 = rng.standard_normal((E, F1)).astype(np.float32)
    w2 = rng.standard_normal((E, F, H)).astype(np.float32) / np.sqrt(F)
    b2 = rng.standard_normal((E, H)).astype(np.float32)
    x = rng.standard_normal((T, H)).astype(np.float32)
    ids = np.stack([rng.permutation(E)[:k] for _ in range(T)]).astype(np.int64)
    g = rng.random((T, k)).astype(np.float32) + 0.05
    return x, ids, (g / g.sum(1, keepdims=True)).astype(np.float32), moe_layout.pack(w1, b1, w2, b2)


def run(binary, x, ids, gates, table, store, F, tokens=None, gated=False):
    T, H = x.shape
    y_init = np.full((T, H), 7.0, np.float32)
    args = [x, ids, gates, np.asarray(table, np.int32), store]
    if tokens is None:
        return run_kernel(binary, args, [((T, H), np.float32)], scratch_bytes=[4 * moe_layout.scratch_floats(F, gated)],
                          out_init=[y_init])[0]
    return _run_tokens(binary, args, (T, H), F, tokens, y_init)


def _run_tokens(binary, args, yshape, F, tokens, y_init):
    from nnjit.compiler.wasm_native import Memory
    arrays = [np.ascontiguousarray(a) for a in args] + [y_init, np.zeros(-(-F // 4) * 4, np.float32)]
    addrs, cur = [], 64
    for a in arrays:
        addrs.append(cur)
        cur += -(-a.nbytes // 64) * 64 + 64
    mem = Memory(cur + 64)
    for a, addr in zip(arrays, addrs):
        mem.bytes()[addr:addr + a.nbytes] = a.view(np.uint8).reshape(-1)
    fn = mem.instantiate_module(binary).exports(mem.store)["run_tokens"]
    mem.call(fn, *addrs, *tokens)
    return mem.view(addrs[5], yshape, np.float32).copy()


SHAPES = list(itertools.product([1, 7, 37], [1, 7, 37, 130], [1, 2], [3, 8]))


@pytest.mark.parametrize("T,H,k,E", SHAPES)
def test_moe_all_resident(T, H, k, E):
    rng = np.random.default_rng(T * 1000 + H * 10 + k + E)
    F = 2 * H + 3 if H < 100 else 19
    x, ids, g, store = case(T, H, F, E, k, rng)
    table = np.arange(E)
    plain, relaxed = build("moe", params(T, H, F, E, k))
    want = moe_layout.reference(x, ids, g, table, store, H, F, "relu")
    for binary in (plain, relaxed):
        got = run(binary, x, ids, g, table, store, F)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("T,H,E,k", [(7, 37, 8, 2), (37, 7, 3, 2), (1, 130, 8, 1)])
def test_moe_substitute_and_skip(T, H, E, k):
    """Two resident slots; the table maps some experts to a substitute slot and skips the rest: the
    kept gates take the skipped ones' mass, a token whose experts are all skipped gets zeros."""
    rng = np.random.default_rng(5)
    F = 9
    x, ids, g, store = case(T, H, F, E, k, rng)
    resident = store[[1, E - 1]]  # slot 0 holds expert 1, slot 1 expert E-1
    table = np.full(E, -1)
    table[1], table[E - 1], table[0] = 0, 1, 1  # expert 0 substituted by expert E-1's slot
    binary = build("moe", params(T, H, F, E, k))[0]
    got = run(binary, x, ids, g, table, resident, F)
    want = moe_layout.reference(x, ids, g, table, resident, H, F, "relu")
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(want).max()))
    dropped = [t for t in range(T) if all(table[e] < 0 for e in ids[t])]
    for t in dropped:
        assert np.all(got[t] == 0)


@pytest.mark.parametrize("act", ["gelu", "silu", "tanh"])
def test_moe_activations_int32_ids(act):
    rng = np.random.default_rng(11)
    T, H, F, E, k = 7, 37, 21, 3, 2
    x, ids, g, store = case(T, H, F, E, k, rng)
    binary = build("moe", params(T, H, F, E, k, act=act, idx_bytes=4))[0]
    got = run(binary, x, ids.astype(np.int32), g, np.arange(E), store, F)
    want = moe_layout.reference(x, ids, g, np.arange(E), store, H, F, act)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("T,H,F,E,k", [(7, 37, 5, 8, 2), (1, 130, 19, 3, 1), (37, 1, 1, 3, 2), (7, 7, 130, 8, 2)])
def test_moe_gated_swiglu(T, H, F, E, k):
    """Mixtral's experts: silu(x·Wg)·(x·Wu)·W2, W1 holding the gate columns then the up columns."""
    rng = np.random.default_rng(T + H + F)
    x, ids, g, store = case(T, H, F, E, k, rng, gated=True)
    table = np.array([(e + 1) % E for e in range(E)])  # a permuted table: every expert reads another slot
    plain, relaxed = build("moe", params(T, H, F, E, k, act="silu", gated=True))
    want = moe_layout.reference(x, ids, g, table, store, H, F, "silu", gated=True)
    for binary in (plain, relaxed):
        got = run(binary, x, ids, g, table, store, F, gated=True)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(want).max()))


def test_moe_run_tokens_range_leaves_other_rows():
    rng = np.random.default_rng(3)
    T, H, F, E, k = 7, 7, 5, 8, 2
    x, ids, g, store = case(T, H, F, E, k, rng)
    binary = build("moe", params(T, H, F, E, k))[0]
    got = run(binary, x, ids, g, np.arange(E), store, F, tokens=(2, 5))
    want = moe_layout.reference(x, ids, g, np.arange(E), store, H, F, "relu")
    np.testing.assert_allclose(got[2:5], want[2:5], rtol=2e-5, atol=2e-5)
    assert np.all(got[:2] == 7.0) and np.all(got[5:] == 7.0)
    full = run(binary, x, ids, g, np.arange(E), store, F)
    assert np.array_equal(got[2:5], full[2:5])  # a range computes the same bits as the whole batch
