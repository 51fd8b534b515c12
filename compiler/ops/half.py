"""Which ops handle 16-bit floats (float16, bfloat16) themselves. Every other op on a 16-bit value computes
in float32 between Casts (passes/widen_half.py); lower.check reads the same table for bfloat16."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node

HALF = ("float16", "bfloat16")

# Ops that only move, select or replicate elements, or read nothing but shapes: to them a 16-bit float is
# a 2-byte memory image, so widening would only add two Casts (and the values come out bit-equal anyway).
MOVES = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Expand", "Concat", "Slice", "Split",
    "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Gather", "Where", "Trilu", "Shape", "Size", "Cast",
    "CastLike", "Constant", "ConstantOfShape", "Dropout",
})

# float16 arithmetic the binary kernel does itself: each op computed in float32 and rounded to float16
# once, exactly what widening would give, without the two extra passes over memory. Sum/Mean are chains of
# those Adds, rounded after each, as numpy (and onnx's reference) computes them in float16.
FLOAT16_KERNELS = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Mod", "Sum", "Mean"})


def dropout_trains(g: Graph, node: Node) -> bool:
    """False only where the Dropout is certainly the identity (no training_mode, a constant false one or a
    constant ratio 0); a run-time training_mode counts as training: lowering then names that input."""
    ins = node.inputs + ["", ""]
    training, ratio = ins[2], ins[1]
    if not training:
        return False
    if g.is_const(training) and not bool(np.asarray(g.const(training)).reshape(-1)[0]):
        return False
    return not (ratio and g.is_const(ratio) and float(np.asarray(g.const(ratio)).reshape(-1)[0]) == 0.0)


def native(g: Graph, node: Node, dtype: str) -> bool:
    """Whether `node` handles values of the 16-bit float `dtype` without widening."""
    if node.op == "Dropout":
        return not dropout_trains(g, node)
    return node.op in MOVES or (dtype == "float16" and node.op in FLOAT16_KERNELS)
