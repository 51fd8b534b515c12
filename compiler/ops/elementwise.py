"""Elementwise ops → binary / unary / where / compare / cast kernels, with broadcasting strides."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import CAST_ONLY_BITS, DTYPE_SIZES, INT_DTYPES, Node, dtype_bits
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
    dt = L.dtype(a)
    if dt != "float32" or L.dtype(b) != "float32":
        return _binary_typed(L, node, a, b, out)
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


def _binary_typed(L: Lowering, node: Node, a: str, b: str, out: str) -> None:
    """Integer, float16 and float64 arithmetic: the binary kernel's element-wise path. Pow's exponent may
    have another dtype than its base: it is cast to the base's (ints) or to float32 (a float32 base)."""
    da, db = L.dtype(a), L.dtype(b)
    if node.op == "Pow" and da != db:
        if da == "float32" or (da in INT_DTYPES and db in INT_DTYPES):
            b = cast_to(L, node, b, da)
        elif da in INT_DTYPES and db == "float32":
            return _pow_int_float(L, node, a, b, out)
        else:
            raise UnsupportedOpError(f"node {node.name} (Pow): a {da} base with a {db} exponent is not supported")
    elif da != db:
        raise UnsupportedOpError(f"node {node.name} ({node.op}): inputs are {da}/{db}; expected one dtype")
    if da == "float32":
        return lower_binary(L, Node(node.op, node.name, [a, b], [out], node.attrs))
    if da not in INT_DTYPES + ("float16", "float64") or (node.op == "Pow" and da not in INT_DTYPES):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): {da} inputs are not supported")
    shape, (sa, sb) = _strides(L, out, a, b)
    L.emit(node, "binary", {"op": BINARY[node.op], "shape": shape, "a_strides": sa, "b_strides": sb, "dtype": da},
           [a, b, out], [out])


def _pow_int_float(L: Lowering, node: Node, a: str, b: str, out: str) -> None:
    """An integer base to a float32 exponent, onnx's np.power(a, b).astype(a.dtype), from existing steps:
    where the exponent is an integer (it survives a round trip through a's dtype) the exact integer pow,
    elsewhere powf in float32 truncated back (numpy goes through float64 there: a result within an f32
    rounding of an integer may truncate to the other side)."""
    da = L.dtype(a)
    bi = cast_to(L, node, b, da)
    back = cast_to(L, node, bi, "float32")
    is_int = L.temp(f"{node.name}_isint", "bool", L.shape(b))
    lower_compare(L, Node("Equal", node.name, [back, b], [is_int], {}))
    exact = L.temp(f"{node.name}_exact", da, L.shape(out))
    lower_binary(L, Node("Pow", node.name, [a, bi], [exact], {}))
    pf = L.temp(f"{node.name}_powf", "float32", L.shape(out))
    lower_binary(L, Node("Pow", node.name, [cast_to(L, node, a, "float32"), b], [pf], {}))
    approx = L.temp(f"{node.name}_approx", da, L.shape(out))
    lower_cast(L, Node("Cast", node.name, [pf], [approx], {}))
    lower_where(L, Node("Where", node.name, [is_int, exact, approx], [out], {}))


def cast_to(L: Lowering, node: Node, x: str, dtype: str) -> str:
    y = L.temp(f"{node.name}_{dtype}", dtype, L.shape(x))
    lower_cast(L, Node("Cast", node.name, [x], [y], {}))
    return y


def _variadic(L: Lowering, node: Node) -> None:
    """Max/Min of 1 or 3+ inputs: a chain of two-input steps (one input: a copy)."""
    ins, out = [i for i in node.inputs if i], node.outputs[0]
    if len(ins) == 1:
        if L.dtype(ins[0]) != "float32":
            from .movement import emit_copy
            n = max(int(np.prod(L.shape(out))), 1)
            return emit_copy(L, node, ins[0], out, [n], [1], [1])
        return unary(L, node, "identity", ins[0], out)
    acc = ins[0]
    for k, b in enumerate(ins[1:], 1):
        shape = tuple(np.broadcast_shapes(L.shape(acc), L.shape(b)))
        dst = out if k == len(ins) - 1 else L.temp(f"{node.name}_{k}", L.dtype(out), shape)
        lower_binary(L, Node(node.op, node.name, [acc, b], [dst], {}))
        acc = dst


def _clip_runtime(L: Lowering, node: Node) -> None:
    """Clip whose min/max are run-time tensors: Max(x, min) then Min(·, max) (min > max gives max, as ONNX)."""
    x, out = node.inputs[0], node.outputs[0]
    ins = node.inputs + ["", ""]
    lo, hi = ins[1], ins[2]
    if not lo and not hi:
        return _variadic(L, Node("Max", node.name, [x], [out], {}))
    if lo and hi:
        mid = L.temp(f"{node.name}_lo", L.dtype(out), L.shape(out))
        lower_binary(L, Node("Max", node.name, [x, lo], [mid], {}))
        lower_binary(L, Node("Min", node.name, [mid, hi], [out], {}))
    else:
        lower_binary(L, Node("Max" if lo else "Min", node.name, [x, lo or hi], [out], {}))


@lowers(*UNARY)
def lower_unary(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if node.op == "Clip" and L.dtype(x) != "float32":
        return _clip_runtime(L, node)  # integer bounds: Max/Min steps in x's dtype
    L.need_float(node, x)
    lo = hi = 0.0
    if node.op == "Clip":
        from ..passes.fuse_epilogue import _clip_bounds
        bounds = _clip_bounds(L.g, node)
        if bounds is None:
            return _clip_runtime(L, node)
        lo, hi = bounds
    if node.op == "Gelu" and node.attrs.get("approximate", "none") in ("tanh", b"tanh"):
        return _gelu_tanh(L, node, x, out)
    if node.op == "Gelu" and node.attrs.get("approximate", "none") not in ("none", b"none"):
        raise UnsupportedOpError(f"node {node.name} (Gelu): approximate={node.attrs['approximate']!r} is not supported")
    unary(L, node, UNARY[node.op], x, out, lo, hi)


def _gelu_tanh(L: Lowering, node: Node, x: str, out: str) -> None:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) from elementwise steps (rare in inference graphs,
    so no kernel of its own)."""
    n = int(np.prod(L.shape(out)))
    flat = {"shape": [n], "a_strides": [1]}

    def step(op, a, b, dst, scalar=False):
        L.emit(node, "binary", {"op": op, **flat, "b_strides": [0 if scalar else 1]}, [a, b, dst], [dst])

    def c(v):
        return L.const(f"{node.name}_c", np.float32([v]))

    t = L.temp(node.name + "_t", "float32", L.shape(out))
    step("mul", x, x, t)
    step("mul", t, c(0.044715), t, scalar=True)
    step("mul", t, x, t)
    step("add", t, x, t)
    step("mul", t, c(np.sqrt(2 / np.pi)), t, scalar=True)
    L.emit(node, "unary", {"op": "tanh", "n": n, "act_min": 0.0, "act_max": 0.0}, [t, t], [t])
    step("add", t, c(1.0), t, scalar=True)
    step("mul", t, x, t)
    step("mul", t, c(0.5), out, scalar=True)


@lowers("Where")
def lower_where(L: Lowering, node: Node) -> None:
    c, x, y = node.inputs
    out = node.outputs[0]
    if L.dtype(x) != L.dtype(y) or L.dtype(c) != "bool":
        raise UnsupportedOpError(f"node {node.name} (Where): inputs are {L.dtype(c)}/{L.dtype(x)}/{L.dtype(y)}; "
                                 "expected a bool condition and one value dtype")
    shape, (sc, sx, sy) = _strides(L, out, c, x, y)
    L.emit(node, "where", {"shape": shape, "c_strides": sc, "x_strides": sx, "y_strides": sy,
                           "elem_bytes": dtype_bits(L.dtype(x)) // 8},
           [c, x, y, out], [out])


@lowers(*COMPARE)
def lower_compare(L: Lowering, node: Node, op: str | None = None) -> None:
    """`op`: the kernel's op code (docs/kernels.md, compare) when not the one of node.op."""
    a, b = node.inputs
    out = node.outputs[0]
    if L.dtype(a) not in DTYPE_SIZES or L.dtype(a) != L.dtype(b):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): inputs are {L.dtype(a)}/{L.dtype(b)}; "
                                 f"expected two inputs of one dtype of {', '.join(DTYPE_SIZES)}")
    shape, (sa, sb) = _strides(L, out, a, b)
    L.emit(node, "compare", {"op": op or COMPARE[node.op], "shape": shape, "a_strides": sa, "b_strides": sb,
                             "dtype": L.dtype(a)}, [a, b, out], [out])


@lowers("Cast")
def lower_cast(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    src, dst = L.dtype(x), L.dtype(out)
    supported = tuple(DTYPE_SIZES) + tuple(CAST_ONLY_BITS)
    if src not in supported or dst not in supported:
        raise UnsupportedOpError(f"node {node.name} (Cast): {src} → {dst} is not supported; dtypes: {', '.join(supported)}")
    if src == dst:
        L.alias(out, x)
        return
    if src in CAST_ONLY_BITS and dst in CAST_ONLY_BITS:
        # One kernel converts a Cast-only dtype to or from a bundle dtype; between two, go through float32
        # (exact for every source here: they all fit f32).
        mid = L.temp(f"{node.name}_f32", "float32", L.shape(x))
        lower_cast(L, Node("Cast", node.name, [x], [mid], {}))
        return lower_cast(L, Node("Cast", node.name, [mid], [out], node.attrs))
    params = {"n": int(np.prod(L.shape(out))), "src": src, "dst": dst}
    if dst.startswith("float8"):  # ONNX's attributes: saturate (float8 outputs), round_mode (float8e8m0)
        params["saturate"] = bool(node.attrs.get("saturate", 1))
    if dst == "float8e8m0":
        mode = node.attrs.get("round_mode", "up")
        params["round_mode"] = mode.decode() if isinstance(mode, bytes) else mode
        if params["round_mode"] not in ("up", "nearest", "down"):
            raise UnsupportedOpError(f"node {node.name} (Cast): round_mode={params['round_mode']!r} is not supported")
    L.emit(node, "cast", params, [x, out], [out])
