"""Execution plan and memory plan.

Every non-constant buffer lives in one arena in wasm linear memory. A value's lifetime runs from the
first step that writes it (or before step 0 for model inputs) to the last step that reads it (or past
the end for model outputs); aliases (reshapes) extend their root's lifetime. Values whose lifetimes
do not overlap share bytes. Placement is greedy by size, largest first, at the lowest offset that
clears every overlapping neighbour — the classic offline heuristic, near-optimal for inference graphs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .ir import Graph, tensor_bytes, to_bytes
from .weights_codec import f16_eligible
from .lower import resolve
from .ops.common import Lowering

# 256: WebGPU binds sub-ranges of one buffer only at minStorageBufferOffsetAlignment (256 by default).
ALIGN = 256


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class Plan:
    tensors: list[dict]          # manifest tensors
    ids: dict[str, int]          # value name → tensor id
    weights: bytes
    f16_ranges: list             # (offset, bytes) of float32 weights an f16 bundle stores as half floats
    arena_bytes: int
    intermediate_bytes: int
    weights_base: int
    arena_base: int


def _nbytes(g: Graph, name: str) -> int:
    v = g.values[name]
    return tensor_bytes(v.dtype, int(np.prod(v.shape, dtype=np.int64)))


class WeightPool:
    """The weights blob, shared by the plans of one bundle (a decoder's prefill and decode steps read
    the same weights): a constant with the same name and bytes is stored once."""

    def __init__(self):
        self.blob = bytearray()
        self.offsets: dict[tuple[str, bytes], int] = {}
        self.f16_ranges: list[tuple[int, int]] = []  # float32 weights an f16 bundle may halve

    def add(self, name: str, raw: bytes, f16_ok: bool = False) -> int:
        key = (name, hashlib.blake2b(raw, digest_size=16).digest())
        if key not in self.offsets:
            self.offsets[key] = len(self.blob)
            padded = _align(max(len(raw), 1))
            if f16_ok:
                self.f16_ranges.append((len(self.blob), padded))
            self.blob += raw + bytes(padded - len(raw))
        return self.offsets[key]


def plan_memory(g: Graph, L: Lowering, reserved: dict[str, int] | None = None,
                pool: WeightPool | None = None) -> Plan:
    """`reserved`: values pinned at fixed arena offsets for the whole run and across runs (a decoder's
    KV caches); everything else is placed around them."""
    reserved = reserved or {}
    pool = pool if pool is not None else WeightPool()
    steps = L.steps
    used = list(dict.fromkeys([n for s in steps for n in s.args] + g.inputs + g.outputs))
    roots = {n: resolve(L.aliases, n) for n in used}
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    for i in g.inputs:
        start[roots.get(i, i)] = -1
    for k, s in enumerate(steps):
        for a in s.args:
            r = roots[a]
            if a in s.outputs:
                start.setdefault(r, k)
            end[r] = max(end.get(r, k), k)
    for o in g.outputs:
        end[roots[o]] = len(steps)
    arena_roots = [r for r in dict.fromkeys(roots.values()) if not g.is_const(r)]
    for r in arena_roots:
        start.setdefault(r, -1)
        end.setdefault(r, start[r])

    offsets: dict[str, int] = {}
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, start, end)
    for r, off in reserved.items():
        offsets[r] = off
        placed.append((off, _align(max(_nbytes(g, r), 1)), -2, len(steps) + 1))
    for r in sorted([r for r in arena_roots if r not in reserved], key=lambda r: (-_nbytes(g, r), start[r])):
        size = _align(max(_nbytes(g, r), 1))
        clash = sorted((o, sz) for o, sz, s0, e0 in placed if not (e0 < start[r] or end[r] < s0))
        off = 0
        for o, sz in clash:
            if off + size <= o:
                break
            off = max(off, o + sz)
        offsets[r] = off
        placed.append((off, size, start[r], end[r]))
    arena_bytes = max((o + sz for o, sz, _, _ in placed), default=0)

    weight_offsets: dict[str, int] = {}
    for r in dict.fromkeys(roots.values()):
        if g.is_const(r):
            arr = np.ascontiguousarray(g.const(r)).astype(_np(g.values[r].dtype), copy=False)
            dt = g.values[r].dtype
            weight_offsets[r] = pool.add(r, to_bytes(arr, dt), f16_eligible(arr, dt))
    blob = pool.blob

    weights_base = ALIGN
    arena_base = weights_base + _align(len(blob))
    tensors, ids = [], {}
    for n in used:
        r = roots[n]
        v = g.values[n]
        const = g.is_const(r)
        ids[n] = len(tensors)
        tensors.append({"id": len(tensors), "name": n, "dtype": v.dtype, "shape": list(v.shape),
                        "bytes": _nbytes(g, n), "storage": "weight" if const else "arena",
                        "offset": weight_offsets[r] if const else offsets[r]})
    return Plan(tensors, ids, bytes(blob), list(pool.f16_ranges), arena_bytes,
                sum(_nbytes(g, r) for r in arena_roots if r not in reserved), weights_base, arena_base)


def _np(dtype: str):
    from .ir import NP_DTYPES
    return NP_DTYPES[dtype]
