"""MatMul and Gemm → the gemm kernel family (with fused bias / residual / activation)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, broadcast_strides, collapse, lowers


def epilogue(node: Node) -> dict:
    return {"act": node.attrs.get("_act") or "none",
            "act_min": float(node.attrs.get("_act_min", -np.inf)) if node.attrs.get("_act") == "clip" else 0.0,
            "act_max": float(node.attrs.get("_act_max", np.inf)) if node.attrs.get("_act") == "clip" else 0.0}


def schedule(M: int, N: int, K: int, b_const: bool = False, pw: int | None = None) -> tuple[dict, list[dict], int | None]:
    """(default schedule, other candidates, panel width to pack a constant B with or None).

    A constant B is packed once at space.packing_width (16 where N allows: measured as fast for the
    default 4x8 tile, and it lets 2x16 / 4x16 be tuned without repacking); the WGSL gemm reads the
    same packed tensor with that width (`pw`)."""
    from ..space import packing_width, wasm_gemm_space_all
    pw = (pw or packing_width(M, N, K)) if b_const else None
    cands = wasm_gemm_space_all(M, N, K, packed_nr=pw)
    return cands[0], cands[1:], pw


def emit_gemm(L: Lowering, node: Node, a: str, b: str, out: str, M: int, N: int, K: int,
              batch=(), a_strides=(), b_strides=(), c_strides=(), bias=None, bias_kind=None,
              residual=None) -> None:
    b_packed = L.g.is_const(b) and not any(b_strides)
    # A weight another plan of the bundle already packed keeps that panel width, so it is stored once.
    sched, others, pw = schedule(M, N, K, b_packed, L.pack_widths.get(b))
    if b_packed:
        L.pack_widths[b] = pw
        from ..codegen.gemm_pack import pack_b
        bmat = L.g.const(b).reshape(K, N).astype(np.float32)
        b = L.const(b + "_packed", pack_b(bmat, pw))
    params = {"M": M, "N": N, "K": K, "batch": list(batch), "a_strides": list(a_strides),
              "b_strides": list(b_strides), "c_strides": list(c_strides), "b_packed": b_packed,
              "bias": bias_kind if bias else None, "residual": residual is not None,
              **epilogue(node), **sched}
    args = [a, b] + ([bias] if bias else []) + ([residual] if residual else []) + [out]
    L.emit(node, "gemm", params, args, [out], candidates=others)


@lowers("MatMul")
def lower_matmul(L: Lowering, node: Node) -> None:
    a, b = node.inputs[:2]
    out = node.outputs[0]
    L.need_float(node, a, b)
    sa, sb = list(L.shape(a)), list(L.shape(b))
    if len(sa) == 1:
        sa = [1] + sa
    if len(sb) == 1:
        sb = sb + [1]
    M, K = sa[-2:]
    K2, N = sb[-2:]
    if K != K2:
        raise UnsupportedOpError(f"node {node.name} (MatMul): inner dims differ: {L.shape(a)} @ {L.shape(b)}")
    bias = node.attrs.get("_bias")
    residual = node.attrs.get("_residual")
    if all(d == 1 for d in sb[:-2]):
        # One B for every batch: the A batches stack into rows of one larger gemm.
        rows = int(np.prod(sa[:-1]))
        emit_gemm(L, node, a, b, out, rows, N, K, bias=bias, bias_kind="n", residual=residual)
        return
    bsh = list(np.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2])))
    sa_b = broadcast_strides(sa[:-2], bsh)
    sb_b = broadcast_strides(sb[:-2], bsh)
    sc_b = broadcast_strides(bsh, bsh)
    shape, (st_a, st_b, st_c) = collapse(bsh, sa_b, sb_b, sc_b)
    if shape == [1]:
        shape, st_a, st_b, st_c = [], [], [], []
    emit_gemm(L, node, a, b, out, M, N, K, shape, [s * M * K for s in st_a], [s * K * N for s in st_b],
              [s * M * N for s in st_c], bias=bias, bias_kind="n", residual=residual)


@lowers("Gemm")
def lower_gemm(L: Lowering, node: Node) -> None:
    a, b = node.inputs[:2]
    c = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    out = node.outputs[0]
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    L.need_float(node, a, b)
    if node.attrs.get("transA", 0):
        a = _transposed(L, node, a)
    if node.attrs.get("transB", 0):
        b = _transposed(L, node, b)
    if alpha != 1.0:
        if L.g.is_const(b):
            b = L.const(b + "_alpha", (L.g.const(b) * np.float32(alpha)).astype(np.float32))
        elif L.g.is_const(a):
            a = L.const(a + "_alpha", (L.g.const(a) * np.float32(alpha)).astype(np.float32))
        else:  # both at run time: scale the smaller operand (A is M×K, B is K×N) with one elementwise step
            b_small = int(np.prod(L.shape(b))) < int(np.prod(L.shape(a)))
            src = b if b_small else a
            a_or_b = _scaled(L, node, src, L.shape(src), alpha)
            a, b = (a, a_or_b) if b_small else (a_or_b, b)
    M, K = L.shape(a)
    N = L.shape(b)[1]
    bias, kind, residual = node.attrs.get("_bias"), "n", node.attrs.get("_residual")
    if c is not None:
        if L.g.is_const(c):
            cv = (L.g.const(c).astype(np.float32) * np.float32(beta)).astype(np.float32)
            cs = (1,) * (2 - cv.ndim) + cv.shape
            if cs[0] == 1:
                bias, kind = L.const(c + "_bias", np.broadcast_to(cv.reshape(-1), (N,)).copy()), "n"
            elif cs[1] == 1:
                bias, kind = L.const(c + "_bias", np.broadcast_to(cv.reshape(-1), (M,)).copy()), "m"
            else:
                c = L.const(c + "_full", np.broadcast_to(cv, (M, N)).copy())
                residual = _add_residuals(L, node, c, residual)
        else:
            if beta != 1.0:
                c = _scaled(L, node, c, (M, N), beta)  # also broadcasts C to M×N
            elif tuple(L.shape(c)) != (M, N):
                full = L.temp(c + "_expanded", "float32", (M, N))
                st = broadcast_strides(L.shape(c), (M, N))
                L.emit(node, "copy", {"shape": [M, N], "src_strides": st, "dst_strides": [N, 1],
                                      "src_offset": 0, "dst_offset": 0, "elem_bytes": 4}, [c, full], [full])
                c = full
            residual = _add_residuals(L, node, c, residual)
    emit_gemm(L, node, a, b, out, M, N, K, bias=bias, bias_kind=kind, residual=residual)


def _scaled(L: Lowering, node: Node, x: str, shape, factor: float) -> str:
    """factor·x as a new row-major tensor of `shape` (x broadcast to it)."""
    out = L.temp(x + "_scaled", "float32", tuple(shape))
    L.emit(node, "binary", {"op": "mul", "shape": list(shape), "a_strides": broadcast_strides(L.shape(x), shape),
                            "b_strides": [0] * len(shape)},
           [x, L.const(node.name + "_factor", np.float32([factor])), out], [out])
    return out


def _add_residuals(L: Lowering, node: Node, c: str, residual: str | None) -> str:
    if residual is None:
        return c
    shape = L.shape(c)
    total = L.temp(node.name + "_residual_sum", "float32", shape)
    n = int(np.prod(shape))
    L.emit(node, "binary", {"op": "add", "shape": [n], "a_strides": [1], "b_strides": [1]}, [c, residual, total], [total])
    return total


def _transposed(L: Lowering, node: Node, name: str) -> str:
    r, c = L.shape(name)
    if L.g.is_const(name):
        return L.const(name + "_T", np.ascontiguousarray(L.g.const(name).T))
    out = L.temp(name + "_T", "float32", (c, r))
    L.emit(node, "copy", {"shape": [c, r], "src_strides": [1, c], "dst_strides": [r, 1],
                          "src_offset": 0, "dst_offset": 0, "elem_bytes": 4}, [name, out], [out])
    return out
