"""Decoder graphs with explicit past keys/values → a KV cache that lives in the runtime.

An exported decoder (docs/decoders.md) takes past.{i}.key/value [1, Hkv, past, D], concatenates the
new keys/values on the sequence axis, attends over the result and returns it as present.{i}.*. Run
as is, every step would copy the whole past in and out. This pass finds, for every Softmax, the
attention subgraph around it:

    Softmax(Add(Mul|Div(MatMul(Q, Transpose(K*)), c), mask) | Where(mask, ..., fill))  → MatMul(·, V*)

where K* and V* are Concat(past, new) possibly followed by a grouped-query repeat (Unsqueeze /
Expand / Reshape), and replaces it with

    KvWrite(new_k, position_ids) → cache k[Hkv, T, D]     (row p of the cache for a token at position p)
    KvWrite(new_v, position_ids) → cache v
    CausalAttention(Q, position_ids, cache k, cache v)     (keys 0..p, or a sliding window)

so past/present leave the graph interface and the caches become state preallocated to T rows. The
mask is not interpreted here: the compiler checks it numerically against the original graph
(compiler/decoder.py, check_masks) and derives the sliding window from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node, Value

_REPEAT_OPS = ("Unsqueeze", "Expand", "Reshape")


@dataclass
class AttentionSite:
    layer: int
    node: str          # the Softmax node
    mask: str          # the mask value (additive, or the Where condition)
    mask_kind: str     # "add" | "where"
    scale: float
    H: int
    Hkv: int
    S: int
    D: int
    past_k: str
    past_v: str


def _scalar(g: Graph, name: str) -> float | None:
    if not g.is_const(name):
        return None
    a = np.asarray(g.const(name))
    return float(a.reshape(-1)[0]) if a.size == 1 else None


def _to_concat(g: Graph, prod: dict, name: str, past: set) -> Node | None:
    """Follow a grouped-query repeat back to the Concat(past, new) it expands."""
    n = prod.get(name)
    while n is not None and n.op in _REPEAT_OPS:
        n = prod.get(n.inputs[0])
    if n is not None and n.op == "Concat" and n.inputs and n.inputs[0] in past and len(n.inputs) == 2:
        rank = len(g.values[n.outputs[0]].shape)
        if n.attrs.get("axis") in (2, 2 - rank):
            return n
    return None


def _match(g: Graph, sm: Node, prod: dict, cons: dict, past: set):
    """(q, k concat, v concat, final MatMul, scale, mask, mask kind) or None."""
    x = prod.get(sm.inputs[0])
    if x is None or sm.attrs.get("axis", -1) not in (-1, 3):
        return None
    if x.op == "Add":
        pairs = [(x.inputs[0], x.inputs[1]), (x.inputs[1], x.inputs[0])]
        kind = "add"
    elif x.op == "Where":
        pairs = [(x.inputs[1], x.inputs[0])]
        kind = "where"
    else:
        return None
    for scores, mask in pairs:
        s = prod.get(scores)
        scale = 1.0
        if s is not None and s.op in ("Mul", "Div"):
            c = _scalar(g, s.inputs[1]) if s.op == "Div" else (_scalar(g, s.inputs[1]) or _scalar(g, s.inputs[0]))
            if c is None:
                continue
            inner = s.inputs[0] if s.op == "Div" or _scalar(g, s.inputs[1]) is not None else s.inputs[1]
            scale = 1.0 / c if s.op == "Div" else c
            s = prod.get(inner)
        if s is None or s.op != "MatMul":
            continue
        t = prod.get(s.inputs[1])
        if t is None or t.op != "Transpose" or list(t.attrs.get("perm", [])) != [0, 1, 3, 2]:
            continue
        kc = _to_concat(g, prod, t.inputs[0], past)
        users = cons.get(sm.outputs[0], [])
        if kc is None or len(users) != 1 or users[0].op != "MatMul" or users[0].inputs[0] != sm.outputs[0]:
            continue
        vc = _to_concat(g, prod, users[0].inputs[1], past)
        if vc is None:
            continue
        return s.inputs[0], kc, vc, users[0], scale, mask, kind
    return None


def rewrite(g: Graph, max_context: int, position_input: str = "position_ids") -> list[AttentionSite]:
    """Replace every attention over past/present with the KV cache ops; returns one site per layer."""
    past = [i for i in g.inputs if i.startswith("past.")]
    if not past:
        raise UnsupportedOpError(f"{g.name}: not a decoder with past keys/values: no graph input named "
                                 "past.* (docs/decoders.md describes the interface)")
    if position_input not in g.inputs or g.values[position_input].dtype not in ("int64", "int32"):
        raise UnsupportedOpError(f"{g.name}: decoder input {position_input!r} (int64 [1, seq]) is missing")
    prod, cons = g.producers(), g.consumers()
    sites, replace = [], {}
    for sm in [n for n in g.nodes if n.op == "Softmax"]:
        m = _match(g, sm, prod, cons, set(past))
        if m is None:
            continue
        q, kc, vc, out_mm, scale, mask, kind = m
        qs, ks = g.values[q].shape, g.values[kc.inputs[1]].shape
        if len(qs) != 4 or qs[0] != 1 or len(ks) != 4 or qs[1] % ks[1] or qs[3] != ks[3]:
            raise UnsupportedOpError(f"{g.name}: attention at node {sm.name!r}: expected Q [1, H, S, D] and new K "
                                     f"[1, Hkv, S, D] with H a multiple of Hkv, got {list(qs)} and {list(ks)}")
        layer = len(sites)
        H, S, D, Hkv = qs[1], qs[2], qs[3], ks[1]
        caches = []
        for c, kv in ((kc, "key"), (vc, "value")):
            name = g.fresh(f"cache.{layer}.{kv}")
            g.values[name] = Value(name, "float32", (Hkv, max_context, D))
            replace[id(c)] = Node("KvWrite", f"{c.name}/kv_write", [c.inputs[1], position_input], [name],
                                  {"max_context": max_context}, "nnjit")
            caches.append(name)
        replace[id(out_mm)] = Node("CausalAttention", f"{sm.name}/attention", [q, position_input, *caches],
                                   [out_mm.outputs[0]], {"scale": scale, "window": 0, "heads": H,
                                                         "kv_heads": Hkv, "max_context": max_context}, "nnjit")
        sites.append(AttentionSite(layer, sm.name, mask, kind, scale, H, Hkv, S, D, kc.inputs[0], vc.inputs[0]))
    if not sites:
        raise UnsupportedOpError(f"{g.name}: no attention over past keys/values found (expected Softmax over "
                                 "MatMul(Q, Transpose(Concat(past, K))) scaled and masked, then MatMul with "
                                 "Concat(past, V))")
    used = {s.past_k for s in sites} | {s.past_v for s in sites}
    left = [p for p in past if p not in used]
    if left:
        raise UnsupportedOpError(f"{g.name}: past inputs {left} feed no recognised attention")
    g.nodes = [replace.get(id(n), n) for n in g.nodes]
    g.inputs = [i for i in g.inputs if i not in used]
    g.outputs = [o for o in g.outputs if not o.startswith("present.")]
    g.remove_dead()
    return sites
