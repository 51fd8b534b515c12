"""The WGSL LoRA-Switch kernels (kernels_wgsl/lora_switch*.wgsl.j2) against numpy, on wgpu-py (lavapipe):
the same odd shapes, ranks and gate cases as the wasm kernels (tests/kernels/test_lora_switch.py)."""
from __future__ import annotations

import numpy as np
import pytest
from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.passes.lora_switch import layout
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_lora_switch import SHAPES, _case, _reference


def _run(items, ids, pool: int, ids_dtype: str = "int64", gate=None, schedule=None):
    W, A, B, segs = layout(items)
    text, dispatch, _ = build("lora_switch", {"k": len(ids), "ids_dtype": ids_dtype, "pool": pool, "segments": segs,
                                              "total": int(W.size)}, schedule)
    gate = np.zeros(2 + len(ids), np.int32) if gate is None else np.asarray(gate, np.int32)
    m, g = run_kernel(text, dispatch, [np.array(ids, ids_dtype), W, A, B], [((W.size,), np.float32), (gate.shape, np.int32)],
                      out_init=[np.full(W.size, 7.0, np.float32), gate])
    np.testing.assert_array_equal(g, gate)
    return [m[s["w"]:s["w"] + s["K"] * s["N"]].reshape(s["K"], s["N"]) for s in segs]


def _commit(ids, gate, ids_dtype: str = "int64"):
    text, dispatch, _ = build("lora_switch_commit", {"k": len(ids), "ids_dtype": ids_dtype})
    (g,) = run_kernel(text, dispatch, [np.array(ids, ids_dtype)], [((len(gate),), np.int32)],
                      out_init=[np.asarray(gate, np.int32)])
    return g.tolist()


@pytest.mark.parametrize("r", [1, 3])
@pytest.mark.parametrize("schedule", [None, {"wg": 3, "cb": 5}])
def test_merge_all_segments_matches_numpy(r, schedule):
    pool = 5
    items = _case(SHAPES, r, pool, seed=r)
    for ids in ([3, 1], [0, 4], [2, 2]):
        for got, want in zip(_run(items, ids, pool, schedule=schedule), _reference(items, ids, pool)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_k3_int32_ids_out_of_pool_and_gate():
    pool = 4
    items = _case([(7, 37), (37, 7)], 3, pool, seed=7)
    for ids in ([3, 0, 2], [1, 9, 2]):
        for got, want in zip(_run(items, ids, pool, "int32"), _reference(items, ids, pool)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    got = _run(items, [2, 0, 3], pool, "int32", gate=[4, 1, 3, 2, 0])
    assert all((m == 7.0).all() for m in got)  # the gate holds this set: nothing to merge


@pytest.mark.parametrize("ids_dtype", ["int64", "int32"])
def test_commit_records_the_set_and_counts_changes(ids_dtype):
    assert _commit([3, 1], [0, 0, 0, 0], ids_dtype) == [1, 1, 3, 1]
    assert _commit([1, 3], [1, 1, 3, 1], ids_dtype) == [1, 1, 3, 1]
    assert _commit([1, 2], [1, 1, 3, 1], ids_dtype) == [2, 1, 1, 2]


def _gate(ids, gate, ids_dtype: str = "int64"):
    text, dispatch, _ = build("lora_switch_gate", {"k": len(ids), "ids_dtype": ids_dtype})
    (go,) = run_kernel(text, dispatch, [np.array(ids, ids_dtype), np.asarray(gate, np.int32)], [((8,), np.uint32)],
                       out_init=[np.array([9, 9, 9, 9, 37, 5, 1, 9], np.uint32)])
    return go.tolist()


@pytest.mark.parametrize("ids_dtype", ["int64", "int32"])
def test_gate_writes_the_merge_grid_or_zero_workgroups(ids_dtype):
    # go = indirect dispatch arguments: the merge's grid (words 4-6) when the set changed, else 0 workgroups.
    grid, none, rest = [37, 5, 1], [0, 0, 0], [9, 37, 5, 1, 9]
    assert _gate([3, 1], [0, 0, 0, 0], ids_dtype) == grid + rest
    assert _gate([1, 3], [5, 1, 3, 1], ids_dtype) == none + rest
    assert _gate([1, 2], [5, 1, 3, 1], ids_dtype) == grid + rest
    assert _gate([2, 0, 7], [5, 1, 7, 2, 0], ids_dtype) == none + rest
    assert _gate([2, 0, 7], [5, 1, 7, 2, 1], ids_dtype) == grid + rest
