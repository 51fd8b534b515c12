"""ReduceMean/Sum/Max/Min over a contiguous block of axes → the reduce kernel."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, lowers, norm_axis

OPS = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min"}


@lowers(*OPS)
def lower_reduce(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
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
    # Size-1 axes reduce to themselves, so they do not break contiguity.
    real = [a for a in axes if s[a] != 1] or axes[:1]
    if real != list(range(real[0], real[-1] + 1)) and any(s[a] != 1 for a in range(real[0], real[-1] + 1) if a not in real):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): axes {axes} of shape {s} are not one "
                                 "contiguous block; only contiguous reductions are supported")
    lo, hi = real[0], real[-1]
    L.emit(node, "reduce", {"op": OPS[node.op], "outer": int(np.prod(s[:lo])), "n": int(np.prod(s[lo:hi + 1])),
                            "inner": int(np.prod(s[hi + 1:]))}, [x, out], [out])
