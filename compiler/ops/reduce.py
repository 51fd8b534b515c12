"""ReduceMean/Sum/Max/Min over a contiguous block of axes → the reduce kernel."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import NP_DTYPES, Node
from .common import Lowering, lowers, norm_axis

OPS = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min"}
# ONNX's value of a reduction over an empty set (a 0-sized reduced dim).
EMPTY = {"mean": np.nan, "sum": 0.0, "max": -np.inf, "min": np.inf}


@lowers(*OPS)
def lower_reduce(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    s = L.shape(x)
    axes = node.attrs.get("axes")
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = L.need_const(node, 1, "axes").reshape(-1).tolist()
    if axes is None or len(axes) == 0:
        if node.attrs.get("noop_with_empty_axes", 0):
            L.alias(out, x)
            return
        axes = list(range(len(s)))
    axes = sorted(norm_axis(int(a), len(s), node) for a in axes)
    if any(s[a] == 0 for a in axes):
        return _empty(L, node, out)
    if L.dtype(x) == "bool" and node.op in ("ReduceMax", "ReduceMin"):
        return _bool(L, node, x, out, axes)
    L.need_float(node, x)
    # Size-1 axes reduce to themselves, so they do not break contiguity.
    real = [a for a in axes if s[a] != 1] or axes[:1]
    if real != list(range(real[0], real[-1] + 1)) and any(s[a] != 1 for a in range(real[0], real[-1] + 1) if a not in real):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): axes {axes} of shape {s} are not one "
                                 "contiguous block; only contiguous reductions are supported")
    lo, hi = real[0], real[-1]
    if int(np.prod(L.shape(out))) == 0:
        return
    L.emit(node, "reduce", {"op": OPS[node.op], "outer": int(np.prod(s[:lo])), "n": int(np.prod(s[lo:hi + 1])),
                            "inner": int(np.prod(s[hi + 1:]))}, [x, out], [out])


def _empty(L: Lowering, node: Node, out: str) -> None:
    """Every output element reduces nothing: a copy of the identity value from the weights."""
    from .movement import emit_copy
    shape = L.shape(out)
    n = int(np.prod(shape))
    if n == 0:
        return
    dtype = L.dtype(out)
    value = EMPTY[OPS[node.op]]
    if dtype == "bool":
        value = node.op == "ReduceMin"  # all() of nothing is true, any() false
    fill = L.const(f"{node.name}_empty", np.full(n, value, NP_DTYPES[dtype]))
    emit_copy(L, node, fill, out, [n], [1], [1])


def _bool(L: Lowering, node: Node, x: str, out: str, axes) -> None:
    """Max of bools is any(), min all(): reduce 0/1 floats, then back to bool."""
    from .elementwise import lower_cast
    xf = L.temp(f"{node.name}_f", "float32", L.shape(x))
    yf = L.temp(f"{node.name}_yf", "float32", L.shape(out))
    lower_cast(L, Node("Cast", node.name, [x], [xf], {}))
    ax = L.const(f"{node.name}_axes", np.array(axes, np.int64))
    attrs = {k: v for k, v in node.attrs.items() if k != "axes"}
    lower_reduce(L, Node(node.op, node.name, [xf, ax], [yf], attrs))
    lower_cast(L, Node("Cast", node.name, [yf], [out], {}))
