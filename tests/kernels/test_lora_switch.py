"""The fused LoRA-Switch merge kernel (kernels_wasm/lora_switch.wat.j2) against numpy: odd shapes
(vector body plus scalar tail columns, single rows/columns), ranks 1 and 3, several segments at once,
int64 and int32 ids, indices in any order, and an index outside the pool contributing nothing."""
from __future__ import annotations

import numpy as np
import pytest
from nnjit.compiler.codegen import wasm
from nnjit.compiler.passes.lora_switch import layout
from nnjit.compiler.wasm_native import run_kernel

# (K, N) per segment: one-element, tail-only, vector+tail, wider than a cache line, a tall one.
SHAPES = [(1, 1), (7, 3), (37, 130), (130, 37), (5, 8)]


def _case(shapes, r: int, pool: int, seed: int):
    rng = np.random.default_rng(seed)
    items = []
    for K, N in shapes:
        items.append((rng.standard_normal((K, N)).astype(np.float32),
                      rng.standard_normal((pool, K, r)).astype(np.float32),
                      rng.standard_normal((pool, r, N)).astype(np.float32),
                      float(rng.uniform(0.25, 2.0))))
    return items


def _reference(items, ids, pool: int) -> list[np.ndarray]:
    out = []
    for w, A, B, scale in items:
        m = w.astype(np.float64)
        for i in ids:
            if 0 <= i < pool:
                m = m + scale * (A[i].astype(np.float64) @ B[i].astype(np.float64))
        out.append(m)
    return out


def _run(items, ids, pool: int, ids_dtype: str = "int64", relaxed: bool = False, gate=None):
    """The merged weights per segment; `gate`: the gate's words before the call (default: empty)."""
    W, A, B, segs = layout(items)
    params = {"k": len(ids), "ids_dtype": ids_dtype, "pool": pool, "segments": segs, "total": int(W.size)}
    plain, rel = wasm.build("lora_switch", params)
    code = rel if relaxed and rel is not None else plain
    gate = np.zeros(2 + len(ids), np.int32) if gate is None else np.asarray(gate, np.int32)
    m, g = run_kernel(code, [np.array(ids, ids_dtype), W, A, B], [((W.size,), np.float32), (gate.shape, np.int32)],
                      out_init=[np.full(W.size, 7.0, np.float32), gate])
    np.testing.assert_array_equal(g, gate)  # the merge reads the gate; the commit kernel writes it
    return [m[s["w"]:s["w"] + s["K"] * s["N"]].reshape(s["K"], s["N"]) for s in segs]


def _commit(ids, gate, ids_dtype: str = "int64"):
    code, _ = wasm.build("lora_switch_commit", {"k": len(ids), "ids_dtype": ids_dtype})
    (g,) = run_kernel(code, [np.array(ids, ids_dtype)], [((len(gate),), np.int32)], out_init=[np.asarray(gate, np.int32)])
    return g.tolist()


@pytest.mark.parametrize("r", [1, 3])
@pytest.mark.parametrize("relaxed", [False, True])
def test_merge_all_segments_matches_numpy(r, relaxed):
    pool = 5
    items = _case(SHAPES, r, pool, seed=r)
    for ids in ([3, 1], [0, 4], [2, 2]):
        got = _run(items, ids, pool, relaxed=relaxed)
        for g, want in zip(got, _reference(items, ids, pool)):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5)


def test_k3_int32_ids_and_out_of_pool_index_adds_nothing():
    pool = 4
    items = _case([(7, 37), (37, 7)], 3, pool, seed=7)
    for ids in ([3, 0, 2], [1, 9, 2], [-1, 0, 3]):
        got = _run(items, ids, pool, ids_dtype="int32")
        for g, want in zip(got, _reference(items, ids, pool)):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5)


def test_the_merged_weights_differ_from_the_base():
    # A kernel that copied W without adding the adapters would fail the tests above only through
    # tolerance; here the difference is asserted outright.
    items = _case([(37, 130)], 3, 4, seed=3)
    (m,) = _run(items, [1, 2], 4)
    assert np.abs(m - items[0][0]).max() > 0.5


def test_a_gate_holding_the_same_set_leaves_the_weights_alone():
    items = _case([(7, 37)], 3, 4, seed=5)
    (m,) = _run(items, [2, 1], 4, gate=[5, 1, 1, 2])  # same set, other order
    assert (m == 7.0).all()
    for gate in ([5, 0, 1, 2], [5, 1, 1, 3], [5, 1, 2, 2]):  # not valid / another set / a multiset
        (m,) = _run(items, [2, 1], 4, gate=gate)
        np.testing.assert_allclose(m, _reference(items, [2, 1], 4)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ids_dtype", ["int64", "int32"])
def test_commit_records_the_set_and_counts_changes(ids_dtype):
    assert _commit([3, 1], [0, 0, 0, 0], ids_dtype) == [1, 1, 3, 1]
    assert _commit([1, 3], [1, 1, 3, 1], ids_dtype) == [1, 1, 3, 1]  # same set: nothing to record
    assert _commit([1, 2], [1, 1, 3, 1], ids_dtype) == [2, 1, 1, 2]
    assert _commit([0, 4, 2], [9, 1, 2, 4, 1], ids_dtype) == [10, 1, 0, 4, 2]


def _gate(ids, gate, ids_dtype: str = "int64"):
    code, _ = wasm.build("lora_switch_gate", {"k": len(ids), "ids_dtype": ids_dtype})
    (go,) = run_kernel(code, [np.array(ids, ids_dtype), np.asarray(gate, np.int32)], [((8,), np.int32)],
                       out_init=[np.full(8, 9, np.int32)])
    return go.tolist()


@pytest.mark.parametrize("ids_dtype", ["int64", "int32"])
def test_gate_says_whether_the_merge_must_run(ids_dtype):
    # go[0]: 1 = merge (no valid gate, or another set), 0 = same set in any order; the other words untouched.
    assert _gate([3, 1], [0, 0, 0, 0], ids_dtype) == [1] + [9] * 7
    assert _gate([1, 3], [5, 1, 3, 1], ids_dtype) == [0] + [9] * 7
    assert _gate([1, 2], [5, 1, 3, 1], ids_dtype) == [1] + [9] * 7
    assert _gate([2, 0, 7], [5, 1, 7, 2, 0], ids_dtype) == [0] + [9] * 7
    assert _gate([2, 0, 7], [5, 1, 7, 2, 1], ids_dtype) == [1] + [9] * 7
