"""Recognise the exact (erf) GELU as exporters spell it — x·0.5·(1 + erf(x/√2)) in any of its
operand orders — and replace the five nodes with one Gelu node, which the epilogue pass can then
fuse into the producing MatMul/Gemm."""
from __future__ import annotations

import math


from ..ir import Graph, Node


def _scalar(g: Graph, name: str):
    if not g.is_const(name):
        return None
    c = g.const(name)
    return float(c.reshape(-1)[0]) if c.size == 1 else None


def _other(node: Node, name: str) -> str | None:
    ins = [i for i in node.inputs if i]
    if len(ins) != 2 or name not in ins:
        return None
    return ins[1] if ins[0] == name else ins[0]


def _close(a, b) -> bool:
    return a is not None and abs(a - b) <= 1e-3 * abs(b)


def fuse_gelu(g: Graph) -> int:
    consumers = g.consumers()
    producers = g.producers()
    fused, drop = 0, set()

    def only(name):
        c = consumers.get(name, [])
        return c[0] if len(c) == 1 and name not in g.outputs else None

    for erf in g.nodes:
        if erf.op != "Erf":
            continue
        pre = producers.get(erf.inputs[0])
        if pre is None or pre.op not in ("Div", "Mul") or only(pre.outputs[0]) is not erf:
            continue
        x = pre.inputs[0]
        c = _scalar(g, pre.inputs[1])
        if not (_close(c, math.sqrt(2)) if pre.op == "Div" else _close(c, 1 / math.sqrt(2))):
            continue
        add = only(erf.outputs[0])
        if add is None or add.op != "Add" or not _close(_scalar(g, _other(add, erf.outputs[0]) or ""), 1.0):
            continue
        m1 = only(add.outputs[0])
        if m1 is None or m1.op != "Mul":
            continue
        o1 = _other(m1, add.outputs[0])
        m2 = only(m1.outputs[0])
        if m2 is None or m2.op != "Mul":
            continue
        o2 = _other(m2, m1.outputs[0])
        # (x·(1+erf))·0.5 or (0.5·(1+erf))·x
        if not ((o1 == x and _close(_scalar(g, o2 or ""), 0.5)) or (o2 == x and _close(_scalar(g, o1 or ""), 0.5))):
            continue
        if g.values[x].shape is not None and g.values[m2.outputs[0]].shape != g.values[x].shape:
            continue
        gelu = Node("Gelu", erf.name + "_gelu", [x], [m2.outputs[0]], {})
        m2.op, m2.name, m2.inputs, m2.attrs = gelu.op, gelu.name, gelu.inputs, gelu.attrs
        drop.update({id(pre), id(erf), id(add), id(m1)})
        fused += 1
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return fused



