"""LoRA-Switch (docs/lora_switch.md): token-wise dynamic adapters, one router for all layers.

A model whose projections carry a pool of N adapters, selected per token by one router's TopK,
exports every adapted projection as (bench/zoo_switch.py)

    y = base(x) + ReduceSum((Unsqueeze(x) · Gather(A_pool, ids)) · Gather(B_pool, ids), [2, 3]) · scale

with ids = TopK(router logits, k).indices and A_pool [N, K, r], B_pool [N, r, Nout] constants. For one
token (the decode plan) that equals x·M with M = W + scale·Σ_{i∈ids} A_i·B_i, and M depends only on the
selected set. `rewrite` replaces every such projection by a plain gemm over its M and inserts one
`LoraSwitch` node right after the router's TopK that rebuilds all the Ms of all layers from the base
weights in one kernel (W_all, A_all, B_all: every site's tensors concatenated, so the kernel has five
arguments whatever the number of layers — WGSL's binding limit allows no more). The Ms live in the
arena at fixed offsets across runs (the decoder reserves them like the KV caches), so the runtime can
skip the merge when the set did not change.

Rebuilding M from W rather than subtracting the previous set and adding the new one reads and writes
the same bytes (read K·N, write K·N) with half the multiply-adds, and no rounding accumulates over a
long generation. `check` names the bad inputs for every plan: adapter shapes that do not fit the base
weight, a pool smaller than the router's choice, k larger than the pool.
NNJIT_LORA_SWITCH=0 leaves the graph as exported (the unfused dynamic baseline).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from ..ir import Graph, Node, Value
from .lora_merge import _Chain, _root, _scalar

# Segment starts in M_all at multiples of 64 floats: WebGPU binds each M at a 256-byte aligned offset.
SEG_ALIGN = 64


def enabled() -> bool:
    return os.environ.get("NNJIT_LORA_SWITCH", "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass
class Site:
    add: Node          # base + branch
    gemm: Node         # the base projection
    last: Node         # the node whose output is the base side of `add`
    base_out: str
    wname: str
    w: np.ndarray      # K×N (input×output), float64
    alpha: float
    ids: str           # the router's TopK indices
    apool: str
    bpool: str
    scale: float


def _gather(g: Graph, n: Node | None, ids: str | None):
    """(pool name, pool) of Gather(constant 3-D pool, ids, axis 0), else None."""
    if n is None or n.op != "Gather" or int(n.attrs.get("axis", 0)) != 0 or not g.is_const(n.inputs[0]):
        return None
    if ids is not None and n.inputs[1] != ids:
        return None
    pool = g.const(n.inputs[0])
    return (n.inputs[0], pool) if pool.ndim == 3 and pool.dtype.kind == "f" else None


def _branch(g: Graph, chain: _Chain, out: str):
    """(x, ids, A pool name, B pool name, scale) when `out` is a switch branch, else None."""
    scale, name = 1.0, out
    while (n := chain.private(name)) is not None and n.op in ("Mul", "Div") and len(n.inputs) == 2:
        k = 0 if n.op == "Mul" and _scalar(g, n.inputs[0]) is not None else 1
        c = _scalar(g, n.inputs[k])
        if c is None or (n.op == "Div" and c == 0.0) or g.values[n.inputs[1 - k]].shape != g.values[n.outputs[0]].shape:
            return None  # (a "scalar" of higher rank would broadcast the branch up)
        scale, name = (scale / c if n.op == "Div" else scale * c), n.inputs[1 - k]
    red = chain.private(name)
    if red is None or red.op != "ReduceSum" or red.attrs.get("keepdims", 1) != 0 or len(red.inputs) < 2:
        return None
    if not g.is_const(red.inputs[1]) or sorted(int(a) % 5 for a in g.const(red.inputs[1]).reshape(-1)) != [2, 3]:
        return None
    mm_b = chain.private(red.inputs[0])
    if mm_b is None or mm_b.op != "MatMul" or len(g.values[mm_b.outputs[0]].shape or ()) != 5:
        return None
    mm_a = chain.private(mm_b.inputs[0])
    if mm_a is None or mm_a.op != "MatMul":
        return None
    ga = chain.private(mm_a.inputs[1])
    if ga is None or ga.op != "Gather":
        return None
    ids = ga.inputs[1]
    a, b = _gather(g, ga, ids), _gather(g, chain.private(mm_b.inputs[1]), ids)
    if a is None or b is None:
        return None
    x = mm_a.inputs[0]
    while (n := chain.producers.get(x)) is not None and n.op == "Unsqueeze":
        x = n.inputs[0]
    # Structure only (the sizes are check()'s, which names a mismatch): x [.., K] meets each selected
    # [K, r] as one row, and the sum runs over the k adapters and that row.
    shape = lambda v: tuple(g.values[v].shape or ())
    lead = shape(ids)
    if (shape(mm_a.inputs[0]) != shape(x)[:-1] + (1, 1) + shape(x)[-1:] or shape(x)[:-1] != lead[:-1]
            or shape(ga.outputs[0])[:3] != lead or shape(mm_b.inputs[1])[:3] != lead or shape(mm_b.outputs[0])[3:4] != (1,)
            or len(shape(red.outputs[0])) != 3):
        return None
    return x, ids, a[0], b[0], scale


def find_sites(g: Graph) -> list[Site]:
    producers, consumers = g.producers(), g.consumers()
    chain = _Chain(g, producers, consumers)
    sites = []
    for add in g.nodes:
        if add.op != "Add" or len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
            continue
        for base_out, branch_out in (add.inputs, add.inputs[::-1]):
            br = _branch(g, chain, branch_out)
            base = chain.base(base_out) if br is not None else None
            if base is None:
                continue
            gemm, x, wname, w, alpha, last = base
            bx, ids, apool, bpool, scale = br
            if _root(g, x, producers) != _root(g, bx, producers) or g.values[add.outputs[0]].shape != g.values[base_out].shape:
                continue
            sites.append(Site(add, gemm, last, base_out, wname, w, alpha, ids, apool, bpool, scale))
            break
    return sites


def check(g: Graph, sites: list[Site]) -> None:
    """Named errors for structures that match but cannot be switched (or run) correctly."""
    producers = g.producers()
    for s in sites:
        K, N = s.w.shape
        A, B = g.const(s.apool), g.const(s.bpool)
        where = (f"LoRA-Switch at node {s.add.name!r} (base node {s.gemm.name!r}, weight {s.wname!r} of {K}×{N} "
                 "as input×output)")
        if A.shape[1] != K:
            raise ShapeError(f"{where}: adapter pool A {s.apool!r} has shape {list(A.shape)}: expected [N, {K}, r] "
                             f"(the base weight's input dim), got {A.shape[1]}")
        if B.shape[2] != N:
            raise ShapeError(f"{where}: adapter pool B {s.bpool!r} has shape {list(B.shape)}: expected [N, r, {N}] "
                             f"(the base weight's output dim), got {B.shape[2]}")
        if A.shape[0] != B.shape[0] or A.shape[2] != B.shape[1]:
            raise ShapeError(f"{where}: adapter pools A {s.apool!r} {list(A.shape)} and B {s.bpool!r} "
                             f"{list(B.shape)}: expected [N, K, r] and [N, r, N_out] with the same N and r")
        topk = producers.get(s.ids)
        if topk is None or topk.op != "TopK" or topk.outputs[1] != s.ids or not g.is_const(topk.inputs[1]):
            raise ShapeError(f"{where}: adapter indices {s.ids!r} do not come from a TopK with a constant k")
        k = int(g.const(topk.inputs[1]).reshape(-1)[0])
        choices = g.values[topk.inputs[0]].shape[int(topk.attrs.get("axis", -1))]
        if k > A.shape[0] or choices > A.shape[0]:
            raise ShapeError(f"LoRA-Switch router {topk.name!r}: picks k = {k} of {choices} adapters, but adapter "
                             f"pool {s.apool!r} holds {A.shape[0]}: expected k <= router width <= pool size")


def _reorder(g: Graph) -> None:
    """Topological order again, otherwise as before: a projection that ran before the router (in a
    model whose router reads a later value) now reads the merge's output."""
    import heapq

    producers = g.producers()
    deps = {id(n): {id(producers[i]) for i in n.all_inputs() if i in producers} for n in g.nodes}
    readers: dict[int, list] = {}
    for k, n in enumerate(g.nodes):
        for d in deps[id(n)]:
            readers.setdefault(d, []).append(k)
    waiting = {k: len(deps[id(n)]) for k, n in enumerate(g.nodes)}
    ready = [k for k, c in waiting.items() if c == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(g.nodes[k])
        for r in readers.get(id(g.nodes[k]), []):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    g.nodes = order


def layout(items) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """(W_all, A_all, B_all, segments) for [(W K×N, A pool [N, K, r], B pool [N, r, Nout], scale)]: the
    kernel's operands (float32, concatenated) and its per-segment parameters (offsets in floats; M_all
    has W_all's layout)."""
    segs, ws, as_, bs = [], [], [], []
    off = a_off = b_off = 0
    for w, A, B, scale in items:
        K, N = w.shape
        pad = -(-K * N // SEG_ALIGN) * SEG_ALIGN
        ws.append(np.pad(np.asarray(w, np.float32).reshape(-1), (0, pad - K * N)))
        as_.append(np.asarray(A, np.float32).reshape(-1))
        bs.append(np.asarray(B, np.float32).reshape(-1))
        segs.append({"K": int(K), "N": int(N), "r": int(A.shape[2]), "w": off, "a": a_off, "b": b_off, "scale": float(scale)})
        off, a_off, b_off = off + pad, a_off + A.size, b_off + B.size
    return _cat(ws), _cat(as_), _cat(bs), segs


def _cat(parts: list) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def rewrite(g: Graph, merge: bool = True) -> dict | None:
    """Checks every switch site; with `merge` (the one-token plan) rewrites them. Returns the state
    layout the runtime needs ({"state": M_all name, "views": {M name: byte offset in M_all}}), or None."""
    if not enabled():
        return None
    sites = find_sites(g)
    check(g, sites)
    if not merge or not sites:
        return None
    groups: dict[str, list[Site]] = {}
    for s in sites:
        groups.setdefault(s.ids, []).append(s)
    if len(groups) > 1:
        return None  # several routers: each would need its own state; left unfused
    ids, sites = next(iter(groups.items()))
    topk = g.producers()[ids]
    W_all, A_all, B_all, segs = layout([(s.w, g.const(s.apool), g.const(s.bpool), s.scale / s.alpha) for s in sites])
    state, views = g.fresh("lora_switch.merged"), {}
    for s, seg in zip(sites, segs):
        m = g.fresh(s.wname + "/switched")
        g.values[m] = Value(m, "float32", (seg["K"], seg["N"]))
        views[m] = seg["w"] * 4
        # The gemm now reads M (input×output) and applies its own alpha as before.
        s.gemm.inputs = [s.gemm.inputs[0], m, *s.gemm.inputs[2:]]
        if s.gemm.op == "Gemm":
            s.gemm.attrs["transB"] = 0
        # The base path now produces the sum itself; the branch is left without readers.
        s.last.outputs = [s.add.outputs[0] if o == s.base_out else o for o in s.last.outputs]
        g.nodes.remove(s.add)
    g.values[state] = Value(state, "float32", (W_all.size,))
    # [merges run, valid, the set M holds (k ids)]: lets a GPU skip an unchanged set without a read-back.
    k = int(g.values[ids].shape[-1])
    gate = g.fresh("lora_switch.gate")
    g.values[gate] = Value(gate, "int32", (2 + k,))
    gate_off = -(-W_all.size * 4 // 256) * 256
    consts = [g.add_const(f"lora_switch.{t}", arr) for t, arr in (("W", W_all), ("A", A_all), ("B", B_all))]
    pool = int(g.const(sites[0].apool).shape[0])
    node = Node("LoraSwitch", g.fresh("lora_switch"), [ids, *consts], [state, gate, *views],
                {"segments": segs, "pool": pool}, domain="nnjit")
    g.nodes.insert(g.nodes.index(topk) + 1, node)
    _reorder(g)
    g.remove_dead()
    return {"state": state, "views": {gate: gate_off, **views}, "bytes": gate_off + 4 * (2 + k), "gate": gate,
            "segments": len(segs), "pool": pool, "k": k}
