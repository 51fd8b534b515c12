"""More data movement as strided copies (docs/kernels.md, copy): Split, Tile, Pad, DepthToSpace,
SpaceToDepth; Trilu as a Where with a constant index mask; and the shape-producing ops (Shape, Size,
ConstantOfShape, Range), which constant folding normally removes, with run-time forms for the rest."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import NP_DTYPES, Node, dtype_bits
from .common import Lowering, collapse, contiguous_strides, lowers, norm_axis
from .elementwise import lower_binary, lower_compare, lower_where

MAX_DIMS = 6  # the copy kernel's loop nest


def copy(L: Lowering, node: Node, src: str, dst: str, shape, ss, ds, so=0, do=0) -> None:
    """A strided copy of any rank: collapsed first; beyond the kernel's 6 dims, one step per index of the
    leading dims."""
    if int(np.prod(shape)) == 0:
        return
    shape, (ss, ds) = collapse(shape, ss, ds)
    if len(shape) > MAX_DIMS:
        for i in range(shape[0]):
            copy(L, node, src, dst, shape[1:], ss[1:], ds[1:], so + i * ss[0], do + i * ds[0])
        return
    L.emit(node, "copy", {"shape": shape, "src_strides": ss, "dst_strides": ds, "src_offset": int(so),
                          "dst_offset": int(do), "elem_bytes": dtype_bits(L.dtype(dst)) // 8}, [src, dst], [dst])


def _fill(L: Lowering, node: Node, value: str, out: str) -> None:
    """Every element of out = the one element of `value` (a broadcast copy)."""
    n = int(np.prod(L.shape(out)))
    copy(L, node, value, out, [n], [0], [1])


@lowers("Split")
def lower_split(L: Lowering, node: Node) -> None:
    """The parts' sizes are in the outputs' static shapes, whichever of split/num_outputs gave them."""
    x = node.inputs[0]
    s = L.shape(x)
    axis = norm_axis(int(node.attrs.get("axis", 0)), len(s), node)
    st = contiguous_strides(s)
    at = 0
    for out in node.outputs:
        os_ = L.shape(out)
        if out:
            copy(L, node, x, out, os_, st, contiguous_strides(os_), at * st[axis])
        at += os_[axis] if out else 0
    if at != s[axis]:
        raise UnsupportedOpError(f"node {node.name} (Split): outputs cover {at} of axis {axis}'s {s[axis]} elements")


@lowers("Tile")
def lower_tile(L: Lowering, node: Node) -> None:
    """out viewed as [r0, d0, r1, d1, ...]: every repeat reads x again (source stride 0 on the r dims)."""
    x, out = node.inputs[0], node.outputs[0]
    L.need_const(node, 1, "repeats")
    s = L.shape(x)
    reps = [o // d if d else 0 for o, d in zip(L.shape(out), s)]
    st = contiguous_strides(s)
    shape = [v for r, d in zip(reps, s) for v in (r, d)]
    ss = [v for t in st for v in (0, t)]
    copy(L, node, x, out, shape, ss, contiguous_strides(shape))


def _permuted(L: Lowering, node: Node, x: str, out: str, view, perm) -> None:
    """out = transpose(reshape(x, view), perm), reshaped to out's shape."""
    st = contiguous_strides(view)
    oshape = [view[p] for p in perm]
    copy(L, node, x, out, oshape, [st[p] for p in perm], contiguous_strides(oshape))


def _mode(node: Node, default: str) -> str:
    m = node.attrs.get("mode", default)
    return m.decode() if isinstance(m, bytes) else m


@lowers("DepthToSpace")
def lower_depth_to_space(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    n, c, h, w = L.shape(x)
    b = int(node.attrs["blocksize"])
    mode = _mode(node, "DCR")
    if mode == "DCR":
        _permuted(L, node, x, out, [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2])
    elif mode == "CRD":
        _permuted(L, node, x, out, [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3])
    else:
        raise UnsupportedOpError(f"node {node.name} (DepthToSpace): mode {mode!r}; expected DCR or CRD")


@lowers("SpaceToDepth")
def lower_space_to_depth(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    n, c, h, w = L.shape(x)
    b = int(node.attrs["blocksize"])
    mode = _mode(node, "DCR")
    if mode not in ("DCR", "CRD"):
        raise UnsupportedOpError(f"node {node.name} (SpaceToDepth): mode {mode!r}; expected DCR or CRD")
    perm = [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
    _permuted(L, node, x, out, [n, c, h // b, b, w // b, b], perm)


@lowers("Pad")
def lower_pad(L: Lowering, node: Node) -> None:
    """The interior is one copy; constant mode first fills everything with the value, the other modes then
    fill the pads axis by axis from the output itself (axes before k already padded, so corners come out
    right): edge with a stride-0 source, reflect with a stride −1 source, wrap with a shifted one."""
    x, out = node.inputs[0], node.outputs[0]
    s, os_ = L.shape(x), L.shape(out)
    r = len(s)
    mode = _mode(node, "constant")
    if len(node.inputs) > 1 and node.inputs[1]:
        pads = [int(v) for v in L.need_const(node, 1, "pads").reshape(-1)]
    else:
        pads = [int(v) for v in node.attrs.get("pads", [0] * 2 * r)]
    axes = list(range(r))
    if len(node.inputs) > 3 and node.inputs[3]:
        axes = [norm_axis(int(a), r, node) for a in L.need_const(node, 3, "axes").reshape(-1)]
    before, after = [0] * r, [0] * r
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + len(axes)]
    if int(np.prod(os_)) == 0:
        return
    if mode == "constant":
        if len(node.inputs) > 2 and node.inputs[2]:
            value = node.inputs[2]
        else:
            value = L.const(f"{node.name}_value", np.array(node.attrs.get("value", 0.0), NP_DTYPES[L.dtype(x)]))
        _fill(L, node, value, out)
    elif mode not in ("edge", "reflect", "wrap"):
        raise UnsupportedOpError(f"node {node.name} (Pad): mode {mode!r}; expected constant, edge, reflect or wrap")
    ist, ost = contiguous_strides(s), contiguous_strides(os_)
    lo = [max(-b, 0) for b in before]  # cropped from x
    inner = [d - max(-b, 0) - max(-e, 0) for d, b, e in zip(s, before, after)]
    at = [max(b, 0) for b in before]  # where the interior starts in out
    if any(n <= 0 for n in inner):
        if mode != "constant":
            raise UnsupportedOpError(f"node {node.name} (Pad): mode {mode} of an empty interior")
        return
    copy(L, node, x, out, inner, ist, ost, sum(a * t for a, t in zip(lo, ist)), sum(a * t for a, t in zip(at, ost)))
    if mode == "constant":
        return
    for k in range(r):
        n = inner[k]
        pb, pe = max(before[k], 0), max(after[k], 0)
        if mode == "reflect" and max(pb, pe) > n - 1 or mode == "wrap" and max(pb, pe) > n:
            raise UnsupportedOpError(f"node {node.name} (Pad): {mode} pads {pb},{pe} on axis {k} exceed the "
                                     f"{n} elements they mirror")
        # region shape: padded extent on axes < k, interior extent after
        shape = [os_[i] if i < k else inner[i] for i in range(r)]
        base = sum(at[i] * ost[i] for i in range(k + 1, r))
        for count, dst0, src0, step in (
                (pb, 0, {"edge": pb, "reflect": 2 * pb, "wrap": n}[mode], {"edge": 0, "reflect": -1, "wrap": 1}[mode]),
                (pe, pb + n, {"edge": pb + n - 1, "reflect": pb + n - 2, "wrap": pb}[mode],
                 {"edge": 0, "reflect": -1, "wrap": 1}[mode])):
            if count == 0:
                continue
            shape[k] = count
            ss = list(ost)
            ss[k] = ost[k] * step
            copy(L, node, out, out, shape, ss, ost, base + src0 * ost[k], base + dst0 * ost[k])


@lowers("Trilu")
def lower_trilu(L: Lowering, node: Node) -> None:
    """Where(mask, x, 0), the [N, M] mask of kept positions computed by one broadcast compare of column
    and row index vectors (col >= row + k upper, col <= row + k lower): N + M constants, not N·M."""
    x, out = node.inputs[0], node.outputs[0]
    k = int(L.need_const(node, 1, "k").reshape(-1)[0]) if len(node.inputs) > 1 and node.inputs[1] else 0
    s = L.shape(x)
    if int(np.prod(s)) == 0:
        return
    n, m = s[-2], s[-1]
    k = max(min(k, m + 1), -(n + 1))  # beyond the matrix every k keeps all or nothing: int32 is enough
    cols = L.const(f"{node.name}_cols", np.arange(m, dtype=np.int32)[None, :])
    rows = L.const(f"{node.name}_rows", np.arange(n, dtype=np.int32)[:, None] + np.int32(k))
    mask = L.temp(f"{node.name}_mask", "bool", (n, m))
    lower_compare(L, Node(node.op, node.name, [cols, rows], [mask], {}), "ge" if int(node.attrs.get("upper", 1)) else "le")
    zero = L.const(f"{node.name}_zero", np.zeros((), NP_DTYPES[L.dtype(x)]))
    lower_where(L, Node("Where", node.name, [mask, x, zero], [out], {}))


@lowers("Shape", "Size")
def lower_shape(L: Lowering, node: Node) -> None:
    """Shapes are static here, so the value is a constant (folding normally got it first)."""
    s = np.array(L.shape(node.inputs[0]), np.int64)
    if node.op == "Size":
        v = np.array(int(np.prod(s)), np.int64)
    else:
        end = node.attrs.get("end")
        v = s[int(node.attrs.get("start", 0)):None if end is None else int(end)]
    out = node.outputs[0]
    if v.size:
        copy(L, node, L.const(f"{node.name}_value", v), out, [v.size], [1], [1])


@lowers("Constant")
def lower_constant(L: Lowering, node: Node) -> None:
    """Folding turns every Constant into a weight first; should one get here, a copy of its value."""
    a = node.attrs
    key = next((k for k in ("value", "value_float", "value_floats", "value_int", "value_ints") if k in a), None)
    if key is None:
        raise UnsupportedOpError(f"node {node.name} (Constant): attributes {sorted(a)}; expected a numeric value")
    out = node.outputs[0]
    v = np.asarray(a[key]).astype(NP_DTYPES[L.dtype(out)]).reshape(-1)
    if v.size:
        copy(L, node, L.const(f"{node.name}_value", v), out, [v.size], [1], [1])


@lowers("ConstantOfShape")
def lower_constant_of_shape(L: Lowering, node: Node) -> None:
    """Reached only when the shape is computed at run time yet statically known: a fill."""
    out = node.outputs[0]
    v = node.attrs.get("value")
    v = np.zeros(1, NP_DTYPES[L.dtype(out)]) if v is None else np.asarray(v).reshape(-1)[:1]
    _fill(L, node, L.const(f"{node.name}_value", v.astype(NP_DTYPES[L.dtype(out)])), out)


@lowers("Range")
def lower_range(L: Lowering, node: Node) -> None:
    """Run-time start/delta with a statically known length: start + iota·delta."""
    start, _, delta = node.inputs
    out = node.outputs[0]
    n = L.shape(out)[0]
    if n == 0:
        return
    dt = L.dtype(out)
    iota = L.const(f"{node.name}_iota", np.arange(n).astype(NP_DTYPES[dt]))
    t = L.temp(f"{node.name}_steps", dt, (n,))
    lower_binary(L, Node("Mul", node.name, [iota, delta], [t], {}))
    lower_binary(L, Node("Add", node.name, [t, start], [out], {}))
