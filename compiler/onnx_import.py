"""ONNX file → IR. Binds dynamic dims (`--shape`), runs onnx shape inference, converts to Graph."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import ModelLoadError, NnjitError, ShapeError, UnsupportedOpError
from .ir import Graph, Node, Value
from .shape_inference_worker import infer_shapes
from .passthrough import split as split_passthrough
from .strings import intern_graph

_T = onnx.TensorProto
ONNX_DTYPES = {
    _T.FLOAT: "float32", _T.INT64: "int64", _T.INT32: "int32", _T.BOOL: "bool", _T.INT8: "int8", _T.UINT8: "uint8",
    _T.INT16: "int16", _T.UINT16: "uint16", _T.UINT32: "uint32", _T.UINT64: "uint64", _T.FLOAT16: "float16",
    _T.DOUBLE: "float64",
    # Cast-only (ir.CAST_ONLY_BITS)
    _T.BFLOAT16: "bfloat16", _T.FLOAT8E4M3FN: "float8e4m3fn", _T.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    _T.FLOAT8E5M2: "float8e5m2", _T.FLOAT8E5M2FNUZ: "float8e5m2fnuz", _T.FLOAT8E8M0: "float8e8m0",
    _T.FLOAT4E2M1: "float4e2m1", _T.INT4: "int4", _T.UINT4: "uint4", _T.INT2: "int2", _T.UINT2: "uint2",
    # Interned to int32 ids right after import (compiler/strings.py)
    _T.STRING: "string",
}


def parse_shape_args(items: list[str] | None) -> dict[str, list[int] | int]:
    """`NAME=1x128` binds a whole input's shape; `SYMBOL=128` binds one named dynamic dim everywhere."""
    out: dict[str, list[int] | int] = {}
    for item in items or []:
        name, sep, dims = item.partition("=")
        if not sep or not name or not dims:
            raise ShapeError(f"--shape {item!r}: expected NAME=1x128 (an input) or SYMBOL=128 (a dim name)")
        try:
            parts = [int(d) for d in dims.lower().split("x")]
        except ValueError:
            raise ShapeError(f"--shape {item!r}: dims must be integers joined by 'x'") from None
        if any(d <= 0 for d in parts):
            raise ShapeError(f"--shape {item!r}: dims must be positive")
        out[name] = parts
    return out


def load_model(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise ModelLoadError(f"{path}: not an ONNX model (protobuf parse failed: {e})") from None
    if model.ir_version <= 0 or not model.graph.output or (not model.graph.node and not model.graph.output):
        raise ModelLoadError(f"{path}: not an ONNX model (no IR version or graph outputs; "
                             f"{len(data)} bytes, truncated or another format?)")
    _check_text(model, path)
    try:
        onnx.checker.check_model(_with_unknown_output_shapes(model))
    except Exception as e:  # ValidationError, and decode errors from fields with bad UTF-8
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelLoadError(f"{path}: invalid ONNX model: {first}") from None
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{path}: node {n.name or '?'} uses op {n.domain}::{n.op_type}; "
                                     "only the standard ai.onnx domain is supported")
    return model


def _check_text(model: onnx.ModelProto, path) -> None:
    """protobuf hands a string field holding invalid UTF-8 back as bytes: name the field, here."""
    g = model.graph
    fields = [("graph.name", g.name)]
    for k, n in enumerate(g.node):
        fields += [(f"node {k} name", n.name), (f"node {k} op_type", n.op_type), (f"node {k} domain", n.domain)]
        fields += [(f"node {k} input", x) for x in n.input] + [(f"node {k} output", x) for x in n.output]
        fields += [(f"node {k} attribute name", a.name) for a in n.attribute]
    for kind, items in (("input", g.input), ("output", g.output), ("value_info", g.value_info), ("initializer", g.initializer)):
        fields += [(f"graph {kind} name", v.name) for v in items]
    fields += [("opset_import domain", o.domain) for o in model.opset_import]
    for where, v in fields:
        if not isinstance(v, str):
            raise ModelLoadError(f"{path}: invalid ONNX model: {where} is not UTF-8 text ({bytes(v)[:40]!r})")


def _with_unknown_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """What the checker sees: exporters often leave output shapes undeclared (shape inference fills them
    in), which the checker rejects, so give those a shape with no dims; everything else is checked as is."""
    def vis(g):
        return list(g.output) + list(g.value_info)
    if all(vi.type.tensor_type.HasField("shape") for vi in vis(model.graph) if vi.type.HasField("tensor_type")):
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in vis(m.graph):
        if vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape"):
            vi.type.tensor_type.shape.SetInParent()
    return m


def _check_structure(model: onnx.ModelProto, path) -> None:
    """Every node input is defined before use, every value has one producer (no cycles, no duplicates)."""
    g = model.graph
    defined = {i.name for i in g.input} | {i.name for i in g.initializer}
    for k, n in enumerate(g.node):
        for i in n.input:
            if i and i not in defined:
                raise ModelLoadError(f"{path}: node {n.name or k!r} ({n.op_type}) input {i!r}: expected a graph "
                                     "input, initializer or an earlier node's output, got none (dangling or cyclic)")
        for o in n.output:
            if o and o in defined:
                raise ModelLoadError(f"{path}: node {n.name or k!r} ({n.op_type}) output {o!r}: expected one "
                                     "producer per value, got a second")
            defined.add(o)
    for o in g.output:
        if o.name not in defined:
            raise ModelLoadError(f"{path}: graph output {o.name!r}: expected a value the graph defines, got none")


MAX_BYTES = 2**32  # one wasm32 linear memory


def check_sizes(g: Graph, source="model", io: bool = True) -> None:
    """Every value must fit a wasm32 memory: a ShapeError (not an overflow in codegen) otherwise; graph
    inputs and outputs need a static shape and a supported dtype."""
    from .ir import NP_DTYPES, tensor_bytes
    for kind, names in (("input", g.inputs), ("output", g.outputs)) if io else ():
        for name in names:
            v = g.values.get(name)
            if v is None or v.shape is None:
                from .bind import shape_hint
                hint, need = shape_hint(g, name)
                raise ShapeError(f"{source}: graph {kind} {name!r}: expected a static shape, got none "
                                 f"(bind dynamic dims with --shape){hint}", needs_constant=need)
            if v.dtype not in NP_DTYPES:
                raise UnsupportedOpError(f"{source}: graph {kind} {name!r}: expected dtype one of "
                                         f"{', '.join(NP_DTYPES)}, got {v.dtype}")
    for v in g.values.values():
        if v.shape is None:
            continue
        if any(not isinstance(d, (int, np.integer)) or d < 0 for d in v.shape):
            raise ShapeError(f"{source}: value {v.name!r}: expected non-negative integer dims, got {list(v.shape)}")
        n = 1
        for d in v.shape:
            n *= int(d)
        nb = tensor_bytes(v.dtype, n) if v.dtype in NP_DTYPES else 8 * n
        if nb > MAX_BYTES:
            raise ShapeError(f"{source}: value {v.name!r} shape {list(v.shape)}: expected at most {MAX_BYTES} bytes "
                             f"(one wasm32 memory), got {nb}")


def _bind_inputs(model: onnx.ModelProto, shapes: dict, path) -> None:
    inits = {i.name for i in model.graph.initializer}
    known = {i.name for i in model.graph.input if i.name not in inits}
    symbols = {d.dim_param for i in model.graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    for name, dims in shapes.items():
        if name not in known and not (name in symbols and len(dims) == 1):
            raise ShapeError(f"{path}: --shape names {name!r}, which is neither an input "
                             f"({', '.join(sorted(known))}) nor a dynamic dim name ({', '.join(sorted(symbols)) or 'none'})")
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        # Non-tensor inputs are gone by now (compiler/passthrough.py split them off or refused them).
        if not inp.type.tensor_type.HasField("shape"):
            raise ShapeError(f"{path}: input {inp.name!r}: expected a tensor type with a declared shape "
                             "(rank), got none")
        dims = inp.type.tensor_type.shape.dim
        if inp.name in shapes:
            want = shapes[inp.name]
            if len(want) != len(dims):
                raise ShapeError(f"{path}: --shape {inp.name}: the input has rank {len(dims)}, got {len(want)} dims")
            for d, w in zip(dims, want):
                if d.HasField("dim_value") and d.dim_value != w:
                    raise ShapeError(f"{path}: --shape {inp.name}: dim is fixed at {d.dim_value}, got {w}")
                d.Clear()
                d.dim_value = w
            continue
        for k, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if d.dim_param in shapes:
                v = shapes[d.dim_param][0]
                d.Clear()
                d.dim_value = v
                continue
            label = f" ({d.dim_param!r})" if d.dim_param else ""
            raise ShapeError(f"{path}: input {inp.name!r} dim {k}{label} is dynamic and unbound; "
                             f"bind it with --shape {inp.name}=" + "x".join(
                                 str(x.dim_value) if x.HasField("dim_value") and x.dim_value > 0 else "N" for x in dims))


def _tensor_type(tp) -> tuple[str | None, tuple[int, ...] | None]:
    tt = tp.tensor_type
    dtype = ONNX_DTYPES.get(tt.elem_type, onnx.helper.tensor_dtype_to_string(tt.elem_type) if tt.elem_type else None)
    if not tt.HasField("shape"):
        return dtype, None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return dtype, None
        dims.append(d.dim_value)
    return dtype, tuple(dims)


def _attr(a: onnx.AttributeProto):
    if a.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(a.t)
    if a.type == onnx.AttributeProto.GRAPH:
        return a.g
    return onnx.helper.get_attribute_value(a)


def infer(model: onnx.ModelProto, path="model") -> onnx.ModelProto:
    return infer_shapes(model, path)


def to_graph(model: onnx.ModelProto) -> Graph:
    g = Graph(model.graph.name or "model")
    g.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        dtype = "string" if init.data_type == _T.STRING else _np_name(arr)
        g.values[init.name] = Value(init.name, dtype, tuple(arr.shape), arr)
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        if vi.name in g.values and g.values[vi.name].const is not None:
            continue
        dtype, shape = _tensor_type(vi.type)
        g.values[vi.name] = Value(vi.name, dtype, shape)
    g.inputs = [i.name for i in model.graph.input if g.values[i.name].const is None]
    g.outputs = [o.name for o in model.graph.output]
    for k, n in enumerate(model.graph.node):
        node = Node(n.op_type, n.name or f"{n.op_type}_{k}", list(n.input), list(n.output),
                    {a.name: _attr(a) for a in n.attribute}, n.domain)
        for o in node.outputs:
            if o and o not in g.values:
                g.values[o] = Value(o, None, None)
        g.nodes.append(node)
    return g


def _np_name(arr: np.ndarray) -> str:
    from .ir import dtype_name
    return dtype_name(arr.dtype)


def import_onnx(path: str | Path, shapes: dict | None = None, bind: dict | None = None) -> Graph:
    from .bind import freeze_inputs
    model = load_model(path)
    _check_structure(model, path)
    passthrough = split_passthrough(model, path)
    freeze_inputs(model, bind or {}, path)
    _bind_inputs(model, shapes or {}, path)
    inferred = infer(model, path)
    try:
        g = to_graph(inferred)
    except NnjitError:
        raise
    except Exception as e:  # bad initializer data, undecodable attributes
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelLoadError(f"{path}: invalid ONNX model: {type(e).__name__}: {first}") from None
    intern_graph(g, str(path))
    g.passthrough = passthrough
    check_sizes(g, path, io=False)  # outputs may get their shapes only after constant folding
    return g


def export_onnx(g: Graph) -> onnx.ModelProto:
    """IR → ONNX (used to re-run shape inference after constant folding)."""
    from onnx import helper
    rev = {v: k for k, v in ONNX_DTYPES.items()}
    inits = [numpy_helper.from_array(v.const, k) for k, v in g.values.items()
             if v.const is not None and any(k in n.inputs for n in g.nodes)]

    def vi(name):
        v = g.values[name]
        return helper.make_tensor_value_info(name, rev.get(v.dtype, 0), list(v.shape) if v.shape is not None else None)

    nodes = [helper.make_node(n.op, n.inputs, n.outputs, name=n.name, domain=n.domain,
                              **{k: (numpy_helper.from_array(a) if isinstance(a, np.ndarray) else a)
                                 for k, a in n.attrs.items()}) for n in g.nodes]
    graph = helper.make_graph(nodes, g.name, [vi(i) for i in g.inputs], [vi(o) for o in g.outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
