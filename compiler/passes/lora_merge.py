"""Static LoRA merge: a base projection y = x·W with a low-rank branch (x·A)·B·scale added to it, as
PEFT-exported models spell it, becomes one projection with W' = W + scale·(A·B). The branch's two
thin GEMMs, its scale and its Add disappear, so a merged model costs exactly the base model.

Recognised (docs/lora.md): the base is MatMul(x, W) or Gemm(x, W[, C]) (transB, alpha), optionally
followed by a constant bias Add and row-preserving reshapes (GPT-2's Conv1D flattens x to 2-D around
its Gemm); the branch is two MatMuls (or Gemms without C) with constant weights, with scalar Mul/Div
anywhere along it (or the scale folded into B) and Identity/eval Dropout on its input. Both sides must
read the same x up to Identity/Dropout/row-preserving reshapes. Adapters that are graph inputs are
left alone: they run unmerged. Set NNJIT_LORA_MERGE=0 to turn the pass off (benchmarks compare both).
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import ShapeError
from ..ir import Graph, Node

_RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def enabled() -> bool:
    return os.environ.get("NNJIT_LORA_MERGE", "1").strip().lower() not in ("0", "false", "no", "off")


def _scalar(g: Graph, name: str) -> float | None:
    if not g.is_const(name) or g.const(name).size != 1:
        return None
    return float(g.const(name).reshape(-1)[0])


def _is_identity(g: Graph, n: Node) -> bool:
    if n.op == "Identity":
        return True
    if n.op != "Dropout" or (len(n.outputs) > 1 and n.outputs[1]):
        return False
    # Inference Dropout is the identity; training_mode must be a constant false (or absent).
    tm = n.inputs[2] if len(n.inputs) > 2 else ""
    return not tm or (g.is_const(tm) and not bool(g.const(tm).reshape(-1)[0]))


def _keeps_rows(g: Graph, n: Node) -> bool:
    """A reshape that keeps the last dim only regroups rows, so it commutes with a right GEMM."""
    a, b = g.values[n.inputs[0]].shape, g.values[n.outputs[0]].shape
    return n.op in _RESHAPES and bool(a) and bool(b) and a[-1] == b[-1]


def _root(g: Graph, name: str, producers: dict) -> str:
    """The value `name` is a row-wise view of (through Identity, eval Dropout, row-preserving reshapes)."""
    while (n := producers.get(name)) is not None and (_is_identity(g, n) or _keeps_rows(g, n)):
        name = n.inputs[0]
    return name


def _gemm_weight(g: Graph, n: Node):
    """(weight name, K×N weight as float64, alpha) of MatMul(x, W) / Gemm(x, W) with constant 2-D W,
    else None. Gemm's C is allowed: callers decide whether it may be there."""
    if n.op not in ("MatMul", "Gemm") or len(n.inputs) < 2 or not g.is_const(n.inputs[1]):
        return None
    w = g.const(n.inputs[1])
    if w.ndim != 2 or w.dtype.kind != "f":
        return None
    if n.op == "MatMul":
        return n.inputs[1], w.astype(np.float64), 1.0
    if n.attrs.get("transA", 0):
        return None
    alpha = float(n.attrs.get("alpha", 1.0))
    w = w.T if n.attrs.get("transB", 0) else w
    return n.inputs[1], w.astype(np.float64), alpha


class _Chain:
    def __init__(self, g: Graph, producers: dict, consumers: dict):
        self.g, self.producers, self.consumers = g, producers, consumers

    def private(self, name: str) -> Node | None:
        """The producer of `name` when its only reader is the next node of the chain being walked."""
        if name in self.g.outputs or len(self.consumers.get(name, [])) != 1:
            return None
        return self.producers.get(name)

    def base(self, out: str):
        """(gemm node, x, weight name, weight K×N, alpha, node whose output is `out`) or None."""
        last, name = None, out
        while (n := self.private(name)) is not None:
            last = last or n
            if n.op in ("MatMul", "Gemm") and _gemm_weight(self.g, n) is not None:
                wname, w, alpha = _gemm_weight(self.g, n)
                return (n, n.inputs[0], wname, w, alpha, last) if alpha != 0.0 else None
            if n.op == "Add" and len(n.inputs) == 2 and any(self.g.is_const(i) for i in n.inputs):
                name = n.inputs[1] if self.g.is_const(n.inputs[0]) else n.inputs[0]
                if self.g.values[name].shape != self.g.values[n.outputs[0]].shape:
                    return None  # a bias that broadcasts the projection up is not a bias
            elif _is_identity(self.g, n) or _keeps_rows(self.g, n):
                name = n.inputs[0]
            else:
                return None
        return None

    def branch(self, out: str):
        """(x, [(A name, A), (B name, B)], scale) or None: `out` = x·A·B·scale, A and B as input×output."""
        g, scale, mats, name = self.g, 1.0, [], out
        while (n := self.private(name)) is not None:
            if n.op in ("Mul", "Div") and len(n.inputs) == 2:
                # Mul(v, c), Mul(c, v) or Div(v, c) by a constant scalar.
                k = 0 if n.op == "Mul" and _scalar(g, n.inputs[0]) is not None else 1
                c, v = _scalar(g, n.inputs[k]), n.inputs[1 - k]
                if c is None or (n.op == "Div" and c == 0.0) or g.values[v].shape != g.values[n.outputs[0]].shape:
                    break
                scale, name = (scale / c if n.op == "Div" else scale * c), v
            elif _is_identity(g, n):
                name = n.inputs[0]
            elif len(mats) < 2 and (wt := _gemm_weight(g, n)) is not None and not (n.op == "Gemm" and len(n.inputs) > 2 and n.inputs[2]):
                mats.insert(0, wt[:2])
                scale *= wt[2]
                name = n.inputs[0]
            else:
                break
        return (name, mats, scale) if len(mats) == 2 else None


def _check_shapes(add: Node, gemm: Node, wname: str, w, mats) -> None:
    (aname, a), (bname, b) = mats
    K, N = w.shape
    where = f"LoRA merge at node {add.name!r} (base node {gemm.name!r}, weight {wname!r} of {K}×{N} as input×output)"
    if a.shape[0] != K:
        raise ShapeError(f"{where}: adapter A {aname!r} has shape {list(a.shape)}: expected {K} rows "
                         f"(the base weight's input dim), got {a.shape[0]}")
    if b.shape[1] != N:
        raise ShapeError(f"{where}: adapter B {bname!r} has shape {list(b.shape)}: expected {N} columns "
                         f"(the base weight's output dim), got {b.shape[1]}")
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"{where}: adapter rank mismatch: A {aname!r} {list(a.shape)} has {a.shape[1]} columns, "
                         f"B {bname!r} {list(b.shape)} has {b.shape[0]} rows; expected them equal")


def _merge_one(g: Graph) -> bool:
    producers, consumers = g.producers(), g.consumers()
    chain = _Chain(g, producers, consumers)
    for add in g.nodes:
        if add.op != "Add" or len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
            continue
        for base_out, branch_out in (add.inputs, add.inputs[::-1]):
            base, br = chain.base(base_out), chain.branch(branch_out)
            if base is None or br is None:
                continue
            gemm, x, wname, w, alpha, last = base
            bx, mats, scale = br
            if _root(g, x, producers) != _root(g, bx, producers):
                continue
            _check_shapes(add, gemm, wname, w, mats)
            shape = g.values[add.outputs[0]].shape
            if shape is None or shape != g.values[base_out].shape:
                continue  # the Add broadcasts the base output to more leading dims: it stays as written
            delta = (scale / alpha) * (mats[0][1] @ mats[1][1])
            orig = g.const(wname)
            merged = w + delta
            merged = merged.T if gemm.op == "Gemm" and gemm.attrs.get("transB", 0) else merged
            gemm.inputs = [gemm.inputs[0], g.add_const(wname + "_lora", merged.astype(orig.dtype)), *gemm.inputs[2:]]
            # The base path now produces the sum itself; the branch is left without readers.
            last.outputs = [add.outputs[0] if o == base_out else o for o in last.outputs]
            g.nodes.remove(add)
            g.remove_dead()
            return True
    return False


def lora_merge(g: Graph) -> int:
    """Returns the number of LoRA branches folded into their base weights."""
    if not enabled():
        return 0
    merged = 0
    while _merge_one(g):
        merged += 1
    return merged
