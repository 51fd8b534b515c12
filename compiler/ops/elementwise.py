"""Elementwise ops → binary / unary / where / compare / cast kernels, with broadcasting strides."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, broadcast_strides, collapse, lowers

BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "max", "Min": "min"}
UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Erf": "erf", "Gelu": "gelu", "Sqrt": "sqrt",
         "Exp": "exp", "Neg": "neg", "Abs": "abs", "Reciprocal": "reciprocal", "Clip": "clip"}
COMPARE = {"Equal": "eq", "Less": "lt", "Greater": "gt"}


def unary(L: Lowering, node: Node, op: str, x: str, out: str, lo=0.0, hi=0.0) -> None:
    L.emit(node, "unary", {"op": op, "n": int(np.prod(L.shape(out))), "act_min": float(lo), "act_max": float(hi)},
           [x, out], [out])


def _strides(L: Lowering, out: str, *ins: str):
    oshape = L.shape(out)
    return collapse(oshape, *[broadcast_strides(L.shape(i), oshape) for i in ins])


@lowers(*BINARY)
def lower_binary(L: Lowering, node: Node) -> None:
    if node.op in ("Max", "Min") and len(node.inputs) != 2:
        return _variadic(L, node)
    if len(node.inputs) != 2:
        raise UnsupportedOpError(f"node {node.name} ({node.op}): only the two-input form is supported")
    a, b = node.inputs
    out = node.outputs[0]
    L.need_float(node, a, b)
    op = BINARY[node.op]
    if node.op == "Pow" and L.g.is_const(b) and L.g.const(b).size == 1:
        e = float(L.g.const(b).reshape(-1)[0])
        if e == 1.0:
            return unary(L, node, "identity", a, out)
        if e == 0.5 and L.shape(a) == L.shape(out):
            return unary(L, node, "sqrt", a, out)
        if e == 2.0 and L.shape(a) == L.shape(out):
            op, b = "mul", a  # x·x rounds exactly like numpy's float32 square; a general pow would not
    shape, (sa, sb) = _strides(L, out, a, b)
    L.emit(node, "binary", {"op": op, "shape": shape,
                            "a_strides": sa, "b_strides": sb}, [a, b, out], [out])


def _variadic(L: Lowering, node: Node) -> None:
    """Max/Min of 1 or 3+ inputs: a chain of two-input steps (one input: a copy)."""
    ins, out = [i for i in node.inputs if i], node.outputs[0]
    L.need_float(node, *ins)
    if len(ins) == 1:
        return unary(L, node, "identity", ins[0], out)
    acc = ins[0]
    for k, b in enumerate(ins[1:], 1):
        shape = tuple(np.broadcast_shapes(L.shape(acc), L.shape(b)))
        dst = out if k == len(ins) - 1 else L.temp(f"{node.name}_{k}", "float32", shape)
        lower_binary(L, Node(node.op, node.name, [acc, b], [dst], {}))
        acc = dst


def _clip_runtime(L: Lowering, node: Node) -> None:
    """Clip whose min/max are run-time tensors: Max(x, min) then Min(·, max) (min > max gives max, as ONNX)."""
    x, out = node.inputs[0], node.outputs[0]
    ins = node.inputs + ["", ""]
    lo, hi = ins[1], ins[2]
    L.need_float(node, *[i for i in (lo, hi) if i])
    if lo and hi:
        mid = L.temp(f"{node.name}_lo", "float32", L.shape(out))
        lower_binary(L, Node("Max", node.name, [x, lo], [mid], {}))
        lower_binary(L, Node("Min", node.name, [mid, hi], [out], {}))
    else:
        lower_binary(L, Node("Max" if lo else "Min", node.name, [x, lo or hi], [out], {}))


@lowers(*UNARY)
def lower_unary(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    lo = hi = 0.0
    if node.op == "Clip":
        from ..passes.fuse_epilogue import _clip_bounds
        bounds = _clip_bounds(L.g, node)
        if bounds is None:
            return _clip_runtime(L, node)
        lo, hi = bounds
    if node.op == "Gelu" and node.attrs.get("approximate", "none") not in ("none", b"none"):
        raise UnsupportedOpError(f"node {node.name} (Gelu): approximate='tanh' is not supported")
    unary(L, node, UNARY[node.op], x, out, lo, hi)


@lowers("Where")
def lower_where(L: Lowering, node: Node) -> None:
    c, x, y = node.inputs
    out = node.outputs[0]
    L.need_float(node, x, y)
    shape, (sc, sx, sy) = _strides(L, out, c, x, y)
    L.emit(node, "where", {"shape": shape, "c_strides": sc, "x_strides": sx, "y_strides": sy, "elem_bytes": 4},
           [c, x, y, out], [out])


@lowers(*COMPARE)
def lower_compare(L: Lowering, node: Node) -> None:
    a, b = node.inputs
    out = node.outputs[0]
    if L.dtype(a) not in ("float32", "int64") or L.dtype(a) != L.dtype(b):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): inputs are {L.dtype(a)}/{L.dtype(b)}; "
                                 "float32 or int64 pairs are supported")
    shape, (sa, sb) = _strides(L, out, a, b)
    L.emit(node, "compare", {"op": COMPARE[node.op], "shape": shape, "a_strides": sa, "b_strides": sb,
                             "dtype": L.dtype(a)}, [a, b, out], [out])


@lowers("Cast")
def lower_cast(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    src, dst = L.dtype(x), L.dtype(out)
    supported = ("float32", "int64", "int32", "bool")
    if src not in supported or dst not in supported:
        raise UnsupportedOpError(f"node {node.name} (Cast): {src} → {dst} is not supported; dtypes: {', '.join(supported)}")
    if src == dst:
        L.alias(out, x)
        return
    L.emit(node, "cast", {"n": int(np.prod(L.shape(out))), "src": src, "dst": dst}, [x, out], [out])
