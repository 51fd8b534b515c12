"""Comparisons beyond Equal/Less/Greater, boolean logic and the float tests IsNaN/IsInf: all steps of the
compare kernel (bool output with broadcasting)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import NP_DTYPES, Node
from .common import Lowering, lowers
from .elementwise import COMPARE, lower_compare

COMPARE.update({"LessOrEqual": "le", "GreaterOrEqual": "ge", "And": "and", "Or": "or", "Xor": "xor"})
lowers("LessOrEqual", "GreaterOrEqual")(lower_compare)


def _need(L: Lowering, node: Node, kinds: tuple[str, ...], what: str) -> None:
    for i, x in enumerate(node.inputs):
        if x and L.dtype(x) not in kinds:
            raise UnsupportedOpError(f"node {node.name} ({node.op}): input {i} ({x!r}) is {L.dtype(x)}; expected {what}")


def _step(L: Lowering, node: Node, op: str, a: str, b: str, out: str) -> None:
    lower_compare(L, Node(node.op, node.name, [a, b], [out], {}), op)


@lowers("And", "Or", "Xor")
def lower_logic(L: Lowering, node: Node) -> None:
    _need(L, node, ("bool",), "bool")
    lower_compare(L, node)


@lowers("Not")
def lower_not(L: Lowering, node: Node) -> None:
    """x == false on the bool bytes (the kernel treats any nonzero byte as true)."""
    _need(L, node, ("bool",), "bool")
    _step(L, node, "eq", node.inputs[0], L.const(f"{node.name}_false", np.zeros((), np.bool_)), node.outputs[0])


def _float_input(L: Lowering, node: Node) -> str:
    """16-bit floats arrive widened to float32 (passes/widen_half.py): WGSL has no float16 compare kernel."""
    _need(L, node, ("float32", "float64"), "float32 or float64")
    return node.inputs[0]


@lowers("IsNaN")
def lower_isnan(L: Lowering, node: Node) -> None:
    """x != x is true exactly for NaN."""
    x = _float_input(L, node)
    _step(L, node, "ne", x, x, node.outputs[0])


@lowers("IsInf")
def lower_isinf(L: Lowering, node: Node) -> None:
    x, out = _float_input(L, node), node.outputs[0]
    pos, neg = int(node.attrs.get("detect_positive", 1)), int(node.attrs.get("detect_negative", 1))

    def c(v):
        return L.const(f"{node.name}_c", np.array(v, NP_DTYPES[L.dtype(x)]))
    if pos and neg:
        lo, hi = (L.temp(f"{node.name}_{s}", "bool", L.shape(out)) for s in ("neg", "pos"))
        _step(L, node, "eq", x, c(-np.inf), lo)
        _step(L, node, "eq", x, c(np.inf), hi)
        _step(L, node, "or", lo, hi, out)
    else:  # one side, or none: x == NaN is always false
        _step(L, node, "eq", x, c(np.inf if pos else -np.inf if neg else np.nan), out)
