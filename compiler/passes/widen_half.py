"""16-bit float legalisation: a node on float16/bfloat16 values that has no 16-bit kernel
(ops/half.py) computes in float32 instead: its 16-bit inputs are Cast up (exact: both formats are subsets
of float32), its 16-bit outputs Cast back. The Cast kernels round to nearest even, as numpy/ml_dtypes'
astype does, and onnx's 16-bit test data is float32 math rounded once that way (ml_dtypes promotes
bfloat16 arithmetic to float32: Celu's, Range's cases). The round trip between two widened ops stays:
each ONNX op's result is defined in its own type, and dropping the rounding would change values.

Runs after the fusions (a fused Gelu widens as one node) and skips nodes that lowering would reject
anyway (unknown ops, unknown shapes), so their own errors still name the original values."""
from __future__ import annotations

import numpy as np
from onnx import helper

from ..ir import NP_DTYPES, Graph, Node, Value
from ..ops import LOWERINGS
from ..ops.half import HALF, native

_DOUBLE = 11  # TensorProto.DOUBLE: Range's stash_type asking for float64 intermediates


def _wide_dtype(node: Node) -> str:
    return "float64" if node.op == "Range" and int(node.attrs.get("stash_type", 1)) == _DOUBLE else "float32"


def _to(dtype: str) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(NP_DTYPES[dtype]))


def _needs_widening(g: Graph, node: Node) -> bool:
    if node.domain or node.op not in LOWERINGS:
        return False  # compiler-internal ops (KV caches written in place) and ops lowering rejects
    names = node.all_inputs() + [o for o in node.outputs if o]
    if any(g.values[n].shape is None for n in names):
        return False
    halves = {g.values[n].dtype for n in names} & set(HALF)
    return any(not native(g, node, dt) for dt in halves)


class _Widener:
    def __init__(self, g: Graph):
        self.g = g
        self.nodes: list[Node] = []
        self.wide: dict[tuple[str, str], str] = {}  # (16-bit value, wide dtype) → its widened copy

    def up(self, name: str, dtype: str, hint: str) -> str:
        """The widened copy of `name`, made once however many nodes read it; constants at compile time."""
        key = (name, dtype)
        if key not in self.wide:
            v = self.g.values[name]
            if v.const is not None:
                self.wide[key] = self.g.add_const(f"{name}_{dtype}", np.asarray(v.const).astype(NP_DTYPES[dtype]))
            else:
                out = self.g.fresh(f"{name}_{dtype}")
                self.g.values[out] = Value(out, dtype, v.shape)
                self.nodes.append(Node("Cast", f"{hint}_widen_{name}", [name], [out], {"to": _to(dtype)}))
                self.wide[key] = out
        return self.wide[key]

    def widen(self, node: Node) -> None:
        g, dt = self.g, _wide_dtype(node)
        half = [n for n in node.all_inputs() if g.values[n].dtype in HALF]
        new = {n: self.up(n, dt, node.name) for n in half}
        node.inputs = [new.get(i, i) for i in node.inputs]
        for k in ("_bias", "_residual"):
            if node.attrs.get(k) in new:
                node.attrs[k] = new[node.attrs[k]]
        back = []
        for k, o in enumerate(node.outputs):
            if o and g.values[o].dtype in HALF:
                wide = g.fresh(f"{o}_{dt}")
                g.values[wide] = Value(wide, dt, g.values[o].shape)
                node.outputs[k] = wide
                back.append(Node("Cast", f"{node.name}_narrow_{o}", [wide], [o], {"to": _to(g.values[o].dtype)}))
        self.nodes += [node] + back


def widen_half(g: Graph) -> int:
    """Returns the number of nodes widened."""
    w = _Widener(g)
    count = 0
    for node in g.nodes:
        if _needs_widening(g, node):
            w.widen(node)
            count += 1
        else:
            w.nodes.append(node)
    g.nodes = w.nodes
    return count
