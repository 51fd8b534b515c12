"""Softmax, LayerNormalization and a standalone BatchNormalization (one not folded into a Conv)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, lowers, norm_axis


@lowers("Softmax")
def lower_softmax(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    s = L.shape(x)
    axis = norm_axis(int(node.attrs.get("axis", -1 if L.g.opset >= 13 else 1)), len(s), node)
    if L.g.opset < 13:  # opset < 13 normalises over the flattened trailing block
        outer, n, inner = int(np.prod(s[:axis])), int(np.prod(s[axis:])), 1
    else:
        outer, n, inner = int(np.prod(s[:axis])), int(s[axis]), int(np.prod(s[axis + 1:]))
    L.emit(node, "softmax", {"outer": outer, "n": n, "inner": inner}, [x, out], [out])


@lowers("LayerNormalization")
def lower_layernorm(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if len([o for o in node.outputs if o]) > 1:
        raise UnsupportedOpError(f"node {node.name} (LayerNormalization): Mean/InvStdDev outputs are not supported")
    L.need_float(node, x)
    s = L.shape(x)
    axis = norm_axis(int(node.attrs.get("axis", -1)), len(s), node)
    n = int(np.prod(s[axis:]))
    args = [x, _vector(L, node, 1, s[axis:], "scale")]
    has_bias = len(node.inputs) > 2 and bool(node.inputs[2])
    if has_bias:
        args.append(_vector(L, node, 2, s[axis:], "bias"))
    L.emit(node, "layernorm", {"outer": int(np.prod(s[:axis])), "n": n,
                               "eps": float(node.attrs.get("epsilon", 1e-5)), "bias": has_bias},
           args + [out], [out])


def _vector(L: Lowering, node: Node, idx: int, norm_shape, what: str) -> str:
    name = node.inputs[idx]
    if tuple(L.shape(name)) == tuple(norm_shape) or int(np.prod(L.shape(name))) == int(np.prod(norm_shape)):
        return name
    arr = L.need_const(node, idx, what)
    return L.const(f"{node.name}_{what}", np.broadcast_to(arr, tuple(norm_shape)).astype(np.float32).copy())


@lowers("BatchNormalization")
def lower_batchnorm(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    gamma, beta, mean, var = (L.need_const(node, i, w).astype(np.float64)
                              for i, w in enumerate(("scale", "bias", "mean", "var"), start=1))
    s = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    shape = L.shape(x)
    C = shape[1]
    rest = int(np.prod(shape[2:]))
    scaled = L.temp(node.name + "_scaled", "float32", shape)
    dims = [shape[0], C, rest]
    L.emit(node, "binary", {"op": "mul", "shape": dims, "a_strides": [C * rest, rest, 1], "b_strides": [0, 1, 0]},
           [x, L.const(node.name + "_s", s.astype(np.float32)), scaled], [scaled])
    L.emit(node, "binary", {"op": "add", "shape": dims, "a_strides": [C * rest, rest, 1], "b_strides": [0, 1, 0]},
           [scaled, L.const(node.name + "_t", (beta - mean * s).astype(np.float32)), out], [out])
