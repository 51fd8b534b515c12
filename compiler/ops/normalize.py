"""Softmax, LayerNormalization and a standalone BatchNormalization (one not folded into a Conv)."""
from __future__ import annotations

import numpy as np

from ..ir import Node
from .common import Lowering, broadcast_strides, contiguous_strides, lowers, norm_axis


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
    L.need_float(node, x)
    s = L.shape(x)
    axis = norm_axis(int(node.attrs.get("axis", -1)), len(s), node)
    n = int(np.prod(s[axis:]))
    outer = int(np.prod(s[:axis]))
    eps = float(node.attrs.get("epsilon", 1e-5))
    args = [x, _vector(L, node, 1, s[axis:], "scale")]
    has_bias = len(node.inputs) > 2 and bool(node.inputs[2])
    if has_bias:
        args.append(_vector(L, node, 2, s[axis:], "bias"))
    if outer * n:
        L.emit(node, "layernorm", {"outer": outer, "n": n, "eps": eps, "bias": has_bias}, args + [out], [out])
    extra = list(node.outputs[1:3]) + ["", ""]
    if (extra[0] or extra[1]) and outer * n:
        _moments(L, node, x, outer, n, eps, extra[0], extra[1])


def _moments(L: Lowering, node: Node, x: str, outer: int, n: int, eps: float, mean: str, inv_std: str) -> None:
    """The optional Mean and InvStdDev outputs (training-time statistics), from the general kernels:
    mean, then 1/sqrt(mean((x − mean)²) + eps). Inference graphs do not ask for them."""
    mean = mean or L.temp(node.name + "_mean", "float32", (outer,))
    L.emit(node, "reduce", {"op": "mean", "outer": outer, "n": n, "inner": 1}, [x, mean], [mean])
    if not inv_std:
        return
    d = L.temp(node.name + "_centered", "float32", (outer, n))
    L.emit(node, "binary", {"op": "sub", "shape": [outer, n], "a_strides": [n, 1], "b_strides": [1, 0]},
           [x, mean, d], [d])
    L.emit(node, "binary", {"op": "mul", "shape": [outer * n], "a_strides": [1], "b_strides": [1]}, [d, d, d], [d])
    var = L.temp(node.name + "_var", "float32", (outer,))
    L.emit(node, "reduce", {"op": "mean", "outer": outer, "n": n, "inner": 1}, [d, var], [var])
    L.emit(node, "binary", {"op": "add", "shape": [outer], "a_strides": [1], "b_strides": [0]},
           [var, L.const(node.name + "_eps", np.array([eps], np.float32)), var], [var])
    L.emit(node, "unary", {"op": "sqrt", "n": outer, "act_min": 0.0, "act_max": 0.0}, [var, var], [var])
    L.emit(node, "unary", {"op": "reciprocal", "n": outer, "act_min": 0.0, "act_max": 0.0}, [var, inv_std], [inv_std])


def _vector(L: Lowering, node: Node, idx: int, norm_shape, what: str) -> str:
    """Scale or bias as a dense vector over the normalised block: broadcast when its shape is smaller."""
    name = node.inputs[idx]
    if int(np.prod(L.shape(name))) == int(np.prod(norm_shape)):
        return name
    norm_shape = tuple(norm_shape)
    if L.g.is_const(name):
        arr = L.g.const(name)
        return L.const(f"{node.name}_{what}", np.broadcast_to(arr, norm_shape).astype(np.float32).copy())
    from .movement import emit_copy
    dense = L.temp(f"{node.name}_{what}", "float32", norm_shape)
    emit_copy(L, node, name, dense, norm_shape, broadcast_strides(L.shape(name), norm_shape),
              contiguous_strides(norm_shape))
    return dense


@lowers("BatchNormalization")
def lower_batchnorm(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    shape = L.shape(x)
    C, rest = shape[1], int(np.prod(shape[2:]))
    dims = [shape[0], C, rest]
    training = bool(node.attrs.get("training_mode", 0))
    eps = float(node.attrs.get("epsilon", 1e-5))
    if not training and all(L.g.is_const(i) for i in node.inputs[1:5]):
        gamma, beta, mean, var = (L.g.const(i).astype(np.float64) for i in node.inputs[1:5])
        s = gamma / np.sqrt(var + eps)
        s_name, t_name = L.const(node.name + "_s", s.astype(np.float32)), L.const(node.name + "_t", (beta - mean * s).astype(np.float32))
    else:
        s_name, t_name = _bn_affine(L, node, x, shape, eps, training)
    scaled = L.temp(node.name + "_scaled", "float32", shape)
    L.emit(node, "binary", {"op": "mul", "shape": dims, "a_strides": [C * rest, rest, 1], "b_strides": [0, 1, 0]},
           [x, s_name, scaled], [scaled])
    L.emit(node, "binary", {"op": "add", "shape": dims, "a_strides": [C * rest, rest, 1], "b_strides": [0, 1, 0]},
           [scaled, t_name, out], [out])


def _vec_op(L: Lowering, node: Node, op: str, a: str, b: str, hint: str, out: str | None = None) -> str:
    """A per-channel vector op; a one-element b broadcasts."""
    n = int(np.prod(L.shape(a)))
    out = out or L.temp(f"{node.name}_{hint}", "float32", (n,))
    L.emit(node, "binary", {"op": op, "shape": [n], "a_strides": [1],
                            "b_strides": [0 if int(np.prod(L.shape(b))) == 1 else 1]}, [a, b, out], [out])
    return out


def _bn_affine(L: Lowering, node: Node, x: str, shape, eps: float, training: bool) -> tuple[str, str]:
    """Per-channel s = scale / sqrt(var + eps) and t = bias − mean·s from run-time tensors; in training mode
    mean and var are the batch's (population variance over N and the spatial dims), and the running
    statistics outputs are blended with `momentum`."""
    for i in node.inputs[1:5]:
        L.need_float(node, i)
    scale, bias, mean, var = node.inputs[1:5]
    C, N, rest = shape[1], shape[0], int(np.prod(shape[2:]))
    if training:
        xt = L.temp(node.name + "_cn", "float32", (C, N * rest))
        from .movement import emit_copy
        emit_copy(L, node, x, xt, [C, N, rest], [rest, C * rest, 1], [N * rest, rest, 1])
        bmean = L.temp(node.name + "_bmean", "float32", (C,))
        L.emit(node, "reduce", {"op": "mean", "outer": C, "n": N * rest, "inner": 1}, [xt, bmean], [bmean])
        L.emit(node, "binary", {"op": "sub", "shape": [C, N * rest], "a_strides": [N * rest, 1], "b_strides": [1, 0]},
               [xt, bmean, xt], [xt])
        L.emit(node, "binary", {"op": "mul", "shape": [C * N * rest], "a_strides": [1], "b_strides": [1]}, [xt, xt, xt], [xt])
        bvar = L.temp(node.name + "_bvar", "float32", (C,))
        L.emit(node, "reduce", {"op": "mean", "outer": C, "n": N * rest, "inner": 1}, [xt, bvar], [bvar])
        m = float(node.attrs.get("momentum", 0.9))
        keep, take = L.const(node.name + "_momentum", np.float32([m])), L.const(node.name + "_1m", np.float32([1 - m]))
        for k, (run, batch) in enumerate(((mean, bmean), (var, bvar)), start=1):
            if len(node.outputs) > k and node.outputs[k]:
                a = _vec_op(L, node, "mul", run, keep, f"run{k}")
                b = _vec_op(L, node, "mul", batch, take, f"new{k}")
                _vec_op(L, node, "add", a, b, "", node.outputs[k])
        mean, var = bmean, bvar
    sd = _vec_op(L, node, "add", var, L.const(node.name + "_eps", np.float32([eps])), "sd")
    L.emit(node, "unary", {"op": "sqrt", "n": C, "act_min": 0.0, "act_max": 0.0}, [sd, sd], [sd])
    s = _vec_op(L, node, "div", scale, sd, "s")
    t = _vec_op(L, node, "sub", bias, _vec_op(L, node, "mul", mean, s, "ms"), "t")
    return s, t
