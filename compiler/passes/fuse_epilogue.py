"""Epilogue fusion: fold a bias Add, a residual Add and one activation that follow a
MatMul/Gemm/Conv into that node, so the kernel writes the final value once instead of
making three more passes over memory.

The fused node moves to the position of the last node it absorbs: its own inputs are all ready
earlier, and a residual operand may only be computed between the two."""
from __future__ import annotations

import numpy as np

from ..ir import Graph

PRODUCERS = {"MatMul", "Gemm", "Conv"}
ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "Tanh", "Gelu"}


def _bias_vector(g: Graph, node, const: np.ndarray) -> np.ndarray | None:
    """The per-channel (Conv) or per-column (MatMul/Gemm) vector that `const` broadcasts as, if any."""
    out = g.values[node.outputs[0]].shape
    if out is None or const.ndim > len(out):
        return None
    if node.op == "Conv":
        co = out[1]
        shape = (1,) * (len(out) - const.ndim) + const.shape
        if all(d == 1 for i, d in enumerate(shape) if i != 1) and shape[1] in (1, co):
            return np.broadcast_to(const.reshape(-1), (co,)).astype(np.float32)
        return None
    n = out[-1]
    if all(d == 1 for d in const.shape[:-1]) and const.shape and const.shape[-1] in (1, n):
        return np.broadcast_to(const.reshape(-1), (n,)).astype(np.float32)
    return None


def _clip_bounds(g: Graph, node):
    if g.opset < 11 or "min" in node.attrs or "max" in node.attrs:
        return float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))
    ins = node.inputs + ["", ""]
    lo, hi = ins[1], ins[2]
    if (lo and not g.is_const(lo)) or (hi and not g.is_const(hi)):
        return None
    return (float(g.const(lo)) if lo else -np.inf, float(g.const(hi)) if hi else np.inf)


def fuse_epilogue(g: Graph) -> int:
    fused = 0
    changed = True
    while changed:
        changed = False
        consumers = g.consumers()
        for node in g.nodes:
            if node.op not in PRODUCERS or node.attrs.get("_act"):
                continue
            out = node.outputs[0]
            users = consumers.get(out, [])
            if len(users) != 1 or out in g.outputs:
                continue
            nxt = users[0]
            if g.values[out].dtype != "float32":
                continue
            absorbed = False
            if nxt.op == "Add" and len(nxt.inputs) == 2:
                other = nxt.inputs[1] if nxt.inputs[0] == out else nxt.inputs[0]
                if other == out:
                    continue
                if g.is_const(other) and not node.attrs.get("_residual"):
                    vec = _bias_vector(g, node, g.const(other))
                    if vec is not None and not (node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2]):
                        prev = node.attrs.get("_bias")
                        total = vec if prev is None else g.const(prev) + vec
                        node.attrs["_bias"] = g.add_const(node.name + "_bias", total.astype(np.float32))
                        absorbed = True
                elif (not g.is_const(other) and not node.attrs.get("_residual")
                      and g.values[other].shape == g.values[nxt.outputs[0]].shape == g.values[out].shape):
                    node.attrs["_residual"] = other
                    absorbed = True
            elif nxt.op in ACTIVATIONS:
                if nxt.op == "Clip":
                    bounds = _clip_bounds(g, nxt)
                    if bounds is None:
                        continue
                    node.attrs["_act_min"], node.attrs["_act_max"] = bounds
                node.attrs["_act"] = nxt.op.lower()
                absorbed = True
            if absorbed:
                node.outputs = [nxt.outputs[0]]
                g.nodes.remove(node)
                g.nodes[g.nodes.index(nxt)] = node
                fused += 1
                changed = True
                break
    return fused
