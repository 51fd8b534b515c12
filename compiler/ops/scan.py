"""Ops along one axis that are not reductions to one value: CumSum (cumsum kernel), ArgMax/ArgMin
(argreduce kernel), TopK (topk kernel). Each views its input as [outer, n, inner] around the axis."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import DTYPE_SIZES, Node
from .common import Lowering, lowers, norm_axis
from .elementwise import cast_to

# widen to float32 exactly; wider integers would round
_EXACT_IN_F32 = ("float16", "int8", "uint8", "int16", "uint16")
CUMSUM_DTYPES = ("float32", "float64", "int32", "int64")  # float64: wasm only (WGSL has no f64)
TOPK_DTYPES = ("float32", "int32", "int64", "uint64")
# the others widen exactly, sort there, and their values narrow back
TOPK_WIDEN = {"float16": "float32", "int8": "int32", "uint8": "int32", "int16": "int32", "uint16": "int32",
              "uint32": "int64"}


def _split(shape, axis):
    return int(np.prod(shape[:axis])), int(shape[axis]), int(np.prod(shape[axis + 1:]))


def _float_input(L: Lowering, node: Node) -> str:
    x = node.inputs[0]
    dt = L.dtype(x)
    if dt in _EXACT_IN_F32:
        return cast_to(L, node, x, "float32")
    if dt != "float32":
        raise UnsupportedOpError(f"node {node.name} ({node.op}): input 0 ({x!r}) is {dt}; supported: float32, "
                                 + ", ".join(_EXACT_IN_F32))
    return x


@lowers("CumSum")
def lower_cumsum(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    dt = L.dtype(x)
    if dt not in CUMSUM_DTYPES:
        raise UnsupportedOpError(f"node {node.name} (CumSum): input 0 ({x!r}) is {dt}; supported: {', '.join(CUMSUM_DTYPES)}")
    s = L.shape(x)
    axis = norm_axis(int(L.need_const(node, 1, "axis").reshape(-1)[0]), len(s), node)
    outer, n, inner = _split(s, axis)
    if outer * n * inner:
        L.emit(node, "cumsum", {"outer": outer, "n": n, "inner": inner, "dtype": dt,
                                "exclusive": bool(node.attrs.get("exclusive", 0)), "reverse": bool(node.attrs.get("reverse", 0))},
               [x, out], [out])


@lowers("ArgMax", "ArgMin")
def lower_argreduce(L: Lowering, node: Node) -> None:
    x, out = _float_input(L, node), node.outputs[0]
    s = L.shape(x)
    axis = norm_axis(int(node.attrs.get("axis", 0)), len(s), node)
    outer, n, inner = _split(s, axis)
    if n == 0:
        raise UnsupportedOpError(f"node {node.name} ({node.op}): axis {axis} is empty")
    if outer * inner:
        L.emit(node, "argreduce", {"op": node.op[3:].lower(), "outer": outer, "n": n, "inner": inner,
                                   "select_last": bool(node.attrs.get("select_last_index", 0))}, [x, out], [out])


@lowers("TopK")
def lower_topk(L: Lowering, node: Node) -> None:
    x = node.inputs[0]
    dt = L.dtype(x)
    if dt in TOPK_WIDEN:
        dt = TOPK_WIDEN[dt]
        x = cast_to(L, node, x, dt)
    elif dt not in TOPK_DTYPES:
        raise UnsupportedOpError(f"node {node.name} (TopK): input 0 ({x!r}) is {dt}; supported: "
                                 + ", ".join(TOPK_DTYPES + tuple(TOPK_WIDEN)))
    values, indices = (node.outputs + ["", ""])[:2]
    s = L.shape(x)
    axis = norm_axis(int(node.attrs.get("axis", -1)), len(s), node)
    k = int(L.need_const(node, 1, "k").reshape(-1)[0])
    outer, n, inner = _split(s, axis)
    if not 0 <= k <= n:
        raise UnsupportedOpError(f"node {node.name} (TopK): k = {k} outside [0, {n}] (axis {axis})")
    # the kernel writes both outputs: an unused one, or one of a narrower dtype, gets a temporary
    oshape = tuple(s[:axis]) + (k,) + tuple(s[axis + 1:])
    vals = values if values and L.dtype(values) == dt else L.temp(f"{node.name}_values", dt, oshape)
    indices = indices or L.temp(f"{node.name}_indices", "int64", oshape)
    if outer * k * inner == 0:
        return
    L.emit(node, "topk", {"outer": outer, "n": n, "inner": inner, "k": k, "dtype": dt,
                          "largest": bool(node.attrs.get("largest", 1))}, [x, vals, indices], [vals, indices])
    if values and vals != values:
        from .elementwise import lower_cast
        lower_cast(L, Node("Cast", node.name, [vals], [values], {}))


@lowers("ScatterND")
def lower_scatternd(L: Lowering, node: Node) -> None:
    """One scatternd step: y = data, then each index tuple's slice in order."""
    data, idx, upd = node.inputs
    out = node.outputs[0]
    red = node.attrs.get("reduction", "none")
    red = red.decode() if isinstance(red, bytes) else red
    dt = L.dtype(data)
    if red not in ("none", "add", "mul", "max", "min"):
        raise UnsupportedOpError(f"node {node.name} (ScatterND): reduction {red!r} is not supported")
    if red != "none" and dt != "float32":
        raise UnsupportedOpError(f"node {node.name} (ScatterND): reduction {red} on {dt}; only float32 reduces")
    if L.dtype(idx) != "int64":
        raise UnsupportedOpError(f"node {node.name} (ScatterND): input 1 ({idx!r}) is {L.dtype(idx)}, expected int64")
    s, ishape = L.shape(data), L.shape(idx)
    q = ishape[-1]
    if int(np.prod(s)) == 0:
        return
    L.emit(node, "scatternd", {"n_idx": int(np.prod(ishape[:-1])), "dims": [int(d) for d in s[:q]],
                               "slice": int(np.prod(s[q:])), "reduction": red, "dtype": dt,
                               "elem_bytes": DTYPE_SIZES[dt]}, [data, idx, upd, out], [out])
