"""Data movement: reshapes alias the input buffer (no kernel); Transpose, Slice, Expand and Concat
become strided copies; Gather has its own kernel."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import DTYPE_SIZES, Node, dtype_bits
from .common import Lowering, broadcast_strides, collapse, contiguous_strides, lowers, norm_axis


@lowers("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def lower_alias(L: Lowering, node: Node) -> None:
    L.alias(node.outputs[0], node.inputs[0])


def emit_copy(L: Lowering, node: Node, src: str, dst: str, shape, src_strides, dst_strides,
              src_offset=0, dst_offset=0) -> None:
    shape, (ss, ds) = collapse(shape, src_strides, dst_strides)
    L.emit(node, "copy", {"shape": shape, "src_strides": ss, "dst_strides": ds, "src_offset": int(src_offset),
                          "dst_offset": int(dst_offset), "elem_bytes": dtype_bits(L.dtype(dst)) // 8},
           [src, dst], [dst])


@lowers("Transpose")
def lower_transpose(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    s = L.shape(x)
    perm = list(node.attrs.get("perm", list(range(len(s)))[::-1]))
    st = contiguous_strides(s)
    oshape = [s[p] for p in perm]
    emit_copy(L, node, x, out, oshape, [st[p] for p in perm], contiguous_strides(oshape))


@lowers("Expand")
def lower_expand(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    oshape = L.shape(out)
    emit_copy(L, node, x, out, oshape, broadcast_strides(L.shape(x), oshape), contiguous_strides(oshape))


@lowers("Concat")
def lower_concat(L: Lowering, node: Node) -> None:
    out = node.outputs[0]
    oshape = L.shape(out)
    axis = norm_axis(int(node.attrs["axis"]), len(oshape), node)
    ost = contiguous_strides(oshape)
    at = 0
    for x in node.inputs:
        if not x:
            continue
        s = L.shape(x)
        if s[axis]:
            emit_copy(L, node, x, out, s, contiguous_strides(s), ost, 0, at * ost[axis])
        at += s[axis]


@lowers("Slice")
def lower_slice(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    s = L.shape(x)
    if len(node.inputs) > 1:
        starts = L.need_const(node, 1, "starts").reshape(-1).tolist()
        ends = L.need_const(node, 2, "ends").reshape(-1).tolist()
        axes = L.need_const(node, 3, "axes").reshape(-1).tolist() if len(node.inputs) > 3 and node.inputs[3] else None
        steps = L.need_const(node, 4, "steps").reshape(-1).tolist() if len(node.inputs) > 4 and node.inputs[4] else None
    else:
        starts, ends, axes, steps = node.attrs["starts"], node.attrs["ends"], node.attrs.get("axes"), None
    axes = list(range(len(starts))) if axes is None else [norm_axis(int(a), len(s), node) for a in axes]
    steps = steps or [1] * len(starts)
    st = contiguous_strides(s)
    begin, step = [0] * len(s), [1] * len(s)
    for a, b, e, k in zip(axes, starts, ends, steps):
        if k == 0:
            raise UnsupportedOpError(f"node {node.name} (Slice): step 0 on axis {a}")
        b0, _, _ = slice(int(b), int(e), int(k)).indices(s[a])
        begin[a], step[a] = b0, int(k)
    oshape = L.shape(out)
    if int(np.prod(oshape)) == 0:
        return
    emit_copy(L, node, x, out, oshape, [st[i] * step[i] for i in range(len(s))], contiguous_strides(oshape),
              sum(b * t for b, t in zip(begin, st)))


@lowers("Gather")
def lower_gather(L: Lowering, node: Node) -> None:
    data, idx = node.inputs
    out = node.outputs[0]
    s = L.shape(data)
    axis = norm_axis(int(node.attrs.get("axis", 0)), len(s), node)
    if L.dtype(idx) not in ("int64", "int32"):
        raise UnsupportedOpError(f"node {node.name} (Gather): indices are {L.dtype(idx)}, expected int64 or int32")
    if L.dtype(data) not in DTYPE_SIZES and L.dtype(data) != "bfloat16":  # the kernel moves whole elements' bytes
        raise UnsupportedOpError(f"node {node.name} (Gather): data is {L.dtype(data)}")
    L.emit(node, "gather", {"outer": int(np.prod(s[:axis])), "axis_len": int(s[axis]), "inner": int(np.prod(s[axis + 1:])),
                            "n_idx": int(np.prod(L.shape(idx))), "idx_dtype": L.dtype(idx),
                            "elem_bytes": dtype_bits(L.dtype(data)) // 8}, [data, idx, out], [out])
