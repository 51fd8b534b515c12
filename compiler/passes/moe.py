"""Mixture-of-experts FFNs → one `MoeExperts` node that computes only each token's routed experts.

An exported MoE (transformers' `experts_implementation="batched_mm"`, bench/zoo_moe.py) runs its
experts as gathers of per-token weight matrices from constant [E, ...] tensors plus batched MatMuls;
run as written that copies k full weight matrices per token. The pass anchors on the router

    x ─ MatMul/Gemm(x, Wr) ─ [Softmax] ─ TopK(k) ─► (gates, expert ids)

and takes as the experts region every node between {x, the gathers of [E, ...] constants indexed
by the ids} and the first value that depends on both the gathers and the gates and has x's size
(the sum over k). The gate normalisation (ReduceSum/Div) stays outside: it is ordinary router code.
Which matrix is the up and which the down projection, their layouts, the biases and the activation
(plain act(x·W1)·W2, or gated act(x·Wg)·(x·Wu)·W2 as Mixtral's SwiGLU) are not read from op patterns: every consistent interpretation is evaluated against the region
itself (onnx's reference evaluator on random tokens, ids and gates) and the first that matches is
used; none matching leaves the graph as it was. The router, TopK and gate normalisation keep their
own kernels; `MoeExperts(x, ids, gates, table, store)` reads each expert from a slot of `store`
through `table` (docs/moe.md), identity here.
"""
from __future__ import annotations

import itertools
import os

import numpy as np

from .. import moe_layout
from ..ir import Graph, Node

_TOL = 1e-4
_VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")


def fuse_moe(g: Graph) -> int:
    """Number of MoE blocks fused. NNJIT_MOE=0 turns the pass off (the dense graph runs as written)."""
    if os.environ.get("NNJIT_MOE", "1") == "0":
        return 0
    count = 0
    for topk in [n for n in g.nodes if n.op == "TopK"]:
        site = _match(g, topk)
        if site is not None:
            fused = _interpret(g, site)
            if fused is not None:
                _replace(g, site, fused)
                count += 1
    if count:
        g.remove_dead()
    return count


def _router_input(g: Graph, topk: Node, prod: dict) -> str | None:
    """x of the router MatMul/Gemm(x, Wr) feeding TopK through Softmax and float Casts (Mixtral's .float())."""
    n = prod.get(topk.inputs[0])
    while n is not None and n.op in ("Softmax", "Cast", "Identity"):
        n = prod.get(n.inputs[0])
    if n is None or n.op not in ("MatMul", "Gemm") or not g.is_const(n.inputs[1]) or n.attrs.get("transA"):
        return None
    return n.inputs[0]


def _descendants(cons: dict, starts, stop: Node | None = None) -> tuple[set, set]:
    """(node ids, value names) reachable from the values `starts`, not expanding through `stop`."""
    nodes, values, todo = set(), set(starts), list(starts)
    while todo:
        for n in cons.get(todo.pop(), []):
            if n is stop or id(n) in nodes:
                continue
            nodes.add(id(n))
            for o in n.outputs:
                if o and o not in values:
                    values.add(o)
                    todo.append(o)
    return nodes, values


def _ancestors(prod: dict, starts) -> set:
    seen, todo = set(), list(starts)
    while todo:
        n = prod.get(todo.pop())
        if n is not None and id(n) not in seen:
            seen.add(id(n))
            todo.extend(i for i in n.all_inputs())
    return seen


def _match(g: Graph, topk: Node) -> dict | None:
    prod, cons = g.producers(), g.consumers()
    x = _router_input(g, topk, prod)
    scores = g.values[topk.inputs[0]].shape
    if x is None or not g.values[x].shape or not scores or not g.is_const(topk.inputs[1]):
        return None
    # The experts may read x before the router's own reshape of it (Mixtral flattens twice): same bytes.
    aliases = [x]
    while aliases[-1] in prod and prod[aliases[-1]].op in _VIEW_OPS:
        aliases.append(prod[aliases[-1]].inputs[0])
    E = scores[-1]
    k = int(np.asarray(g.const(topk.inputs[1])).reshape(-1)[0])
    moe_layout.check_k(k, E, f"MoE router at node {topk.name!r}")
    vals, idx = topk.outputs[:2]
    _, idx_vals = _descendants(cons, [idx])
    gathers = [n for n in g.nodes if n.op == "Gather" and n.attrs.get("axis", 0) == 0 and g.is_const(n.inputs[0])
               and g.values[n.inputs[0]].shape[0] == E and len(g.values[n.inputs[0]].shape) in (2, 3)
               and n.inputs[1] in idx_vals]
    if sum(len(g.values[n.inputs[0]].shape) == 3 for n in gathers) != 2:
        return None
    H = g.values[x].shape[-1]
    T = g.values[x].size // H
    dg, _ = _descendants(cons, [o for n in gathers for o in n.outputs])
    dg |= {id(n) for n in gathers}
    dv, vals_vals = _descendants(cons, [vals])
    dx, _ = _descendants(cons, [aliases[-1]], stop=topk)
    y_node = next((n for n in g.nodes if id(n) in dg and id(n) in dv and g.values[n.outputs[0]].shape is not None
                   and g.values[n.outputs[0]].size == T * H), None)
    if y_node is None:
        return None
    anc = _ancestors(prod, y_node.all_inputs()) | {id(y_node)}
    router = _ancestors(prod, topk.all_inputs()) | {id(topk)}
    region = [n for n in g.nodes if id(n) in anc and (id(n) in dx or id(n) in dg) and id(n) not in router]
    inside = {o for n in region for o in n.outputs if o}
    ext = list(dict.fromkeys(i for n in region for i in n.all_inputs() if i not in inside and not g.is_const(i)))
    ids_in = [i for i in ext if i in idx_vals and i not in vals_vals]
    gate_in = [i for i in ext if i in vals_vals]
    x_in = [i for i in ext if i in aliases]
    if set(ext) != {*x_in, *ids_in, *gate_in} or len(x_in) != 1 or len(ids_in) != 1 or len(gate_in) != 1:
        return None
    x = x_in[0]
    if any(g.values[v].size != T * k for v in ids_in + gate_in):
        return None
    ids_dtype = g.values[ids_in[0]].dtype
    if ids_dtype not in ("int64", "int32") or g.values[gate_in[0]].dtype != "float32":
        return None
    # Nothing outside may read an intermediate value of the region.
    region_ids = {id(n) for n in region}
    y = y_node.outputs[0]
    for v in inside - {y}:
        if v in g.outputs or any(id(c) not in region_ids for c in cons.get(v, [])):
            return None
    return {"topk": topk, "x": x, "ids": ids_in[0], "gates": gate_in[0], "y": y, "region": region,
            "gathers": gathers, "E": E, "k": k, "H": H, "T": T}


def _evaluate_region(g: Graph, site: dict, feeds: dict) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    from ..onnx_import import export_onnx
    sub = Graph(g.name + "_moe")
    sub.opset = g.opset
    sub.nodes = list(site["region"])
    for n in sub.nodes:
        for v in n.all_inputs() + [o for o in n.outputs if o]:
            sub.values[v] = g.values[v]
    sub.inputs = [site["x"], site["ids"], site["gates"]]
    sub.outputs = [site["y"]]
    return np.asarray(ReferenceEvaluator(export_onnx(sub)).run(None, feeds)[0], np.float64)


def _orientations(w: np.ndarray, rows: int | None, cols: int | None):
    """w [E, a, b] as [E, rows, cols] (as stored or transposed); None matches any size."""
    for cand in (w, w.transpose(0, 2, 1)):
        if (rows is None or cand.shape[1] == rows) and (cols is None or cand.shape[2] == cols):
            yield np.ascontiguousarray(cand)


def _dense(x, ids, gates, w1, b1, w2, b2, act, gated):
    T, H = x.shape
    e = ids.reshape(-1)
    xr = np.repeat(x, ids.size // T, axis=0)
    h = moe_layout.hidden(np.einsum("nh,nhf->nf", xr, w1[e]) + b1[e], w2.shape[1], act, gated)
    o = np.einsum("nf,nfh->nh", h, w2[e]) + b2[e]
    return (o * gates.reshape(-1, 1)).reshape(T, -1, H).sum(1)


def _interpret(g: Graph, site: dict) -> dict | None:
    """{w1 [E,H,F1], b1, w2 [E,F,H], b2, act, gated} whose dense evaluation matches the region, or None."""
    T, H, E, k = site["T"], site["H"], site["E"], site["k"]
    rng = np.random.default_rng(8)
    xv, iv, gv = (g.values[site[n]] for n in ("x", "ids", "gates"))
    feeds = {site["x"]: rng.standard_normal(xv.shape).astype(np.float32),
             site["ids"]: rng.integers(0, E, iv.shape).astype(iv.dtype),
             site["gates"]: (rng.random(gv.shape) + 0.05).astype(np.float32)}
    try:
        want = _evaluate_region(g, site, feeds).reshape(T, H)
    except Exception:  # a region the reference evaluator cannot run is not one this pass understands
        return None
    x = feeds[site["x"]].reshape(T, H).astype(np.float64)
    ids, gates = feeds[site["ids"]].reshape(T, k), feeds[site["gates"]].reshape(T, k).astype(np.float64)
    mats = [g.const(n.inputs[0]).astype(np.float64) for n in site["gathers"] if g.values[n.inputs[0]].const.ndim == 3]
    vecs = [g.const(n.inputs[0]).astype(np.float64) for n in site["gathers"] if g.values[n.inputs[0]].const.ndim == 2]
    scale = max(1.0, float(np.abs(want).max()))
    for w1 in _orientations(mats[0], H, None):
        F1 = w1.shape[2]
        for gated in (False, True) if F1 % 2 == 0 else (False,):
            F = F1 // 2 if gated else F1
            for w2 in _orientations(mats[1], F, H):
                for b1, b2 in _bias_choices(vecs, E, F1, H):
                    for act in moe_layout.ACTS:
                        got = _dense(x, ids, gates, w1, b1, w2, b2, act, gated)
                        if np.allclose(got, want, rtol=_TOL, atol=_TOL * scale):
                            return {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "act": act, "F": F, "gated": gated}
    return None


def _bias_choices(vecs, E, F, H):
    """(b1 [E, F], b2 [E, H]) using every gathered bias once, zeros for a missing one."""
    zeros = [np.zeros((E, F)), np.zeros((E, H))]
    for b1, b2 in itertools.permutations(vecs + zeros, 2):
        used = sum(any(v is b for v in vecs) for b in (b1, b2))
        if b1.shape == (E, F) and b2.shape == (E, H) and used == len(vecs):
            yield b1, b2


def _replace(g: Graph, site: dict, fused: dict) -> None:
    E, k, H, F = site["E"], site["k"], site["H"], fused["F"]
    store = moe_layout.pack(*(fused[n].astype(np.float32) for n in ("w1", "b1", "w2", "b2")))
    name = site["topk"].name + "_experts"
    table = g.add_const(name + "_table", np.arange(E, dtype=np.int32))
    store_name = g.add_const(name + "_store", store)
    node = Node("MoeExperts", g.fresh(name), [site["x"], site["ids"], site["gates"], table, store_name], [site["y"]],
                {"E": E, "k": k, "H": H, "F": F, "act": fused["act"], "gated": int(fused["gated"])}, domain="nnjit")
    drop = {id(n) for n in site["region"]}
    at = next(i for i, n in enumerate(g.nodes) if n.outputs and n.outputs[0] == site["y"])
    before = [n for n in g.nodes[:at] if id(n) not in drop]
    after = [n for n in g.nodes[at:] if id(n) not in drop]
    g.nodes = before + [node] + after
