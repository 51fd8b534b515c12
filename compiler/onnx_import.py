"""ONNX file → IR. Binds dynamic dims (`--shape`), runs onnx shape inference, converts to Graph."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from .errors import ModelLoadError, ShapeError, UnsupportedOpError
from .ir import Graph, Node, Value

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.BOOL: "bool",
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
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        # Exporters often leave output shapes undeclared; shape inference fills them in.
        if "Field 'shape' of 'type' is required" in first:
            return model
        raise ModelLoadError(f"{path}: invalid ONNX model: {first}") from None
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{path}: node {n.name or '?'} uses op {n.domain}::{n.op_type}; "
                                     "only the standard ai.onnx domain is supported")
    return model


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
    try:
        return shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ShapeError(f"{path}: shape inference failed: {str(e).strip().splitlines()[0]}") from None


def to_graph(model: onnx.ModelProto) -> Graph:
    g = Graph(model.graph.name or "model")
    g.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        g.values[init.name] = Value(init.name, _np_name(arr), tuple(arr.shape), arr)
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


def import_onnx(path: str | Path, shapes: dict | None = None) -> Graph:
    model = load_model(path)
    _bind_inputs(model, shapes or {}, path)
    return to_graph(infer(model, path))


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
