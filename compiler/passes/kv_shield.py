"""KV-Shield: a secret permutation of each KV head's dimensions, folded into the weights.

For every attention the KV-cache pass found, the columns of the Q, K and V projections that make up
head h are reordered by a permutation π_h drawn per bundle (query heads use their KV head's π), and
the rows of the output projection that read head h's attention output are reordered by the same π_h:

    q' = q[π], k' = k[π]  →  q'·k' = q·k       (scores, softmax and the mask are unchanged)
    v' = v[π]             →  o' = o[π], and W_o'[π rows] undoes it before the output projection

so outputs equal the plain model's up to float summation order, while the K and V rows that sit in
the cache (wasm memory, GPU buffers) are in a secret order. docs/decoders.md says what that does and
does not protect. Only plain linear paths are followed (MatMul/Gemm with a constant weight, a
constant bias Add, Split/Slice/Reshape/Transpose); anything else between a projection and the cache
(rotary embeddings, norms over the head dimension) is refused by name rather than guessed at.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph


class _Perms:
    """Index arrays per (constant, axis), composed from the column ranges each head claims."""

    def __init__(self, g: Graph):
        self.g = g
        self.idx: dict[tuple[str, int], np.ndarray] = {}

    def set(self, const: str, axis: int, offset: int, perms: list[np.ndarray], D: int) -> None:
        n = self.g.values[const].shape[axis]
        idx = self.idx.setdefault((const, axis), np.arange(n))
        for h, p in enumerate(perms):
            idx[offset + h * D: offset + (h + 1) * D] = offset + h * D + p

    def apply(self) -> int:
        for (const, axis), idx in self.idx.items():
            v = self.g.values[const]
            v.const = np.ascontiguousarray(np.take(v.const, idx, axis=axis))
        return len(self.idx)


def _fail(site, what: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"--kv-shield: attention at node {site.node!r}: {what}; KV-Shield follows only plain "
                              "linear projections (MatMul/Gemm with constant weights, bias Add, Split/Slice/Reshape/"
                              "Transpose) between the weights and the cache")


def _single_use(g: Graph, cons: dict, const: str, site) -> str:
    if len(cons.get(const, [])) != 1:
        raise _fail(site, f"weight {const!r} is shared by {len(cons.get(const, []))} nodes")
    return const


def _projection(g: Graph, prod: dict, cons: dict, value: str, site, perms: list[np.ndarray], D: int, P: _Perms) -> None:
    """Permute the weight columns (and bias entries) that produce `value` ([1, heads, S, D])."""
    n = prod.get(value)
    if n is None or n.op != "Transpose" or list(n.attrs.get("perm", [])) != [0, 2, 1, 3]:
        raise _fail(site, f"{value!r} is not a [1, S, heads, D] → [1, heads, S, D] transpose")
    n = prod.get(n.inputs[0])
    if n is None or n.op != "Reshape":
        raise _fail(site, f"expected a Reshape into heads before {value!r}")
    y, offset = n.inputs[0], 0
    width = len(perms) * D
    while True:
        n = prod.get(y)
        last = len(g.values[y].shape) - 1
        if n is None:
            raise _fail(site, f"{y!r} is not computed from a projection")
        if n.op == "Split" and n.attrs.get("axis", 0) in (-1, last):
            k = n.outputs.index(y)
            offset += sum(g.values[o].shape[-1] for o in n.outputs[:k])
            y = n.inputs[0]
        elif n.op == "Reshape" and g.values[n.inputs[0]].shape[-1] == g.values[y].shape[-1]:
            y = n.inputs[0]
        elif n.op == "Add" and any(g.is_const(i) and g.values[i].const.ndim == 1 for i in n.inputs):
            b = next(i for i in n.inputs if g.is_const(i) and g.values[i].const.ndim == 1)
            P.set(_single_use(g, cons, b, site), 0, offset, perms, D)
            y = next(i for i in n.inputs if i != b)
        elif n.op in ("MatMul", "Gemm") and g.is_const(n.inputs[1]):
            w = _single_use(g, cons, n.inputs[1], site)
            trans = n.op == "Gemm" and n.attrs.get("transB", 0)
            P.set(w, 0 if trans else g.values[w].const.ndim - 1, offset, perms, D)
            if n.op == "Gemm" and len(n.inputs) > 2 and n.inputs[2]:
                c = _single_use(g, cons, n.inputs[2], site)
                if g.values[c].const.shape[-1] != g.values[y].shape[-1]:
                    raise _fail(site, f"Gemm bias {c!r} does not have one entry per output column")
                P.set(c, g.values[c].const.ndim - 1, offset, perms, D)
            if offset + width > g.values[y].shape[-1]:
                raise _fail(site, f"head columns {offset}..{offset + width} exceed the projection's width")
            return
        else:
            raise _fail(site, f"cannot follow node {n.name!r} ({n.op}) back to a projection")


def _output(g: Graph, cons: dict, value: str, site, perms: list[np.ndarray], D: int, P: _Perms) -> None:
    """Permute the rows of the output projection that reads the attention output `value`."""
    y = value
    while True:
        users = cons.get(y, [])
        if len(users) != 1:
            raise _fail(site, f"attention output {y!r} has {len(users)} consumers")
        n = users[0]
        if n.op == "Transpose" and list(n.attrs.get("perm", [])) == [0, 2, 1, 3]:
            y = n.outputs[0]
        elif n.op == "Reshape":
            y = n.outputs[0]
        elif n.op in ("MatMul", "Gemm") and n.inputs[0] == y and g.is_const(n.inputs[1]):
            if g.values[y].shape[-1] != len(perms) * D:
                raise _fail(site, f"output projection input {y!r} is not the heads concatenated")
            w = _single_use(g, cons, n.inputs[1], site)
            trans = n.op == "Gemm" and n.attrs.get("transB", 0)
            P.set(w, 1 if trans else g.values[w].const.ndim - 2, 0, perms, D)
            return
        else:
            raise _fail(site, f"cannot follow the attention output through node {n.name!r} ({n.op})")


def shield(g: Graph, sites: list, seed: int) -> int:
    """Apply KV-Shield to every attention site (after kv_cache.rewrite, before fusion). Returns how
    many constants were permuted."""
    rng = np.random.default_rng(seed)
    prod, cons = g.producers(), g.consumers()
    P = _Perms(g)
    writes = {n.outputs[0]: n for n in g.nodes if n.op == "KvWrite"}
    for site in sites:
        att = next(n for n in g.nodes if n.op == "CausalAttention" and n.name == f"{site.node}/attention")
        kv_perms = [rng.permutation(site.D) for _ in range(site.Hkv)]
        q_perms = [kv_perms[h // (site.H // site.Hkv)] for h in range(site.H)]
        k_new, v_new = writes[att.inputs[2]].inputs[0], writes[att.inputs[3]].inputs[0]
        _projection(g, prod, cons, att.inputs[0], site, q_perms, site.D, P)
        _projection(g, prod, cons, k_new, site, kv_perms, site.D, P)
        _projection(g, prod, cons, v_new, site, kv_perms, site.D, P)
        _output(g, cons, att.outputs[0], site, q_perms, site.D, P)
    return P.apply()
