"""Graph values that are not tensors — sequences and optionals — passing through a model unchanged. A
graph input of such a type may reach graph outputs only through Identity (ONNX's Identity takes any
type); no kernel ever sees it: the compiler takes it out of the graph and lists it in the manifest's
`passthrough`, and every runtime checks the fed value against the declared type and hands it back as
those outputs. Any other consumer of a sequence or an optional is refused by name.
"""
from __future__ import annotations

import numpy as np
import onnx

from .errors import InputError, UnsupportedOpError

KINDS = {"tensor_type": "tensor", "sequence_type": "sequence", "optional_type": "optional"}


def type_of(tp: onnx.TypeProto, where: str) -> dict:
    """{kind: tensor, dtype, shape (null: unknown; a dim null: dynamic)} | {kind: sequence|optional, elem}."""
    from .onnx_import import ONNX_DTYPES
    kind = KINDS.get(tp.WhichOneof("value"))
    if kind is None:
        raise UnsupportedOpError(f"{where}: a {tp.WhichOneof('value') or 'untyped'} value; only tensors, "
                                 "sequences and optionals are supported")
    if kind == "tensor":
        tt = tp.tensor_type
        dtype = ONNX_DTYPES.get(tt.elem_type)
        if dtype is None or dtype == "string":
            raise UnsupportedOpError(f"{where}: element type {onnx.helper.tensor_dtype_to_string(tt.elem_type)} "
                                     "in a sequence or optional")
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else None
        return {"kind": "tensor", "dtype": dtype, "shape": shape}
    inner = tp.sequence_type.elem_type if kind == "sequence" else tp.optional_type.elem_type
    return {"kind": kind, "elem": type_of(inner, where)}


def describe(t: dict) -> str:
    if t["kind"] == "tensor":
        return f"tensor({t['dtype']}{'' if t['shape'] is None else ' ' + str(t['shape'])})"
    return f"{t['kind']}({describe(t['elem'])})"


def split(model: onnx.ModelProto, path) -> list[dict]:
    """Take the non-tensor graph inputs and the Identity chains from them out of `model` (in place);
    returns the manifest's passthrough entries [{output, input, type}]."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    other = {i.name: i for i in g.input if i.name not in inits and i.type.WhichOneof("value") != "tensor_type"}
    if not other:
        return []
    alias = {name: name for name in other}  # value → the graph input it is
    dropped = []
    for k, n in enumerate(g.node):
        hits = [x for x in n.input if x in alias]
        if not hits:
            continue
        if n.op_type != "Identity":
            t = describe(type_of(other[alias[hits[0]]].type, f"{path}: input {alias[hits[0]]!r}"))
            raise UnsupportedOpError(f"{path}: node {n.name or k} ({n.op_type}): input {hits[0]!r} is a {t}; sequences "
                                     "and optionals are compiled only as graph inputs passed through Identity to outputs")
        alias[n.output[0]] = alias[hits[0]]
        dropped.append(n)
    entries = [{"output": o.name, "input": alias[o.name], "type": type_of(other[alias[o.name]].type, f"{path}: input {alias[o.name]!r}")}
               for o in g.output if o.name in alias]
    for n in dropped:
        g.node.remove(n)
    for field, keep in ((g.output, [o for o in g.output if o.name not in alias]),
                        (g.input, [i for i in g.input if i.name not in other])):
        kept = [type(x)() for x in keep]
        for new, old in zip(kept, keep):
            new.CopyFrom(old)
        del field[:]
        field.extend(kept)
    return entries


def _check(t: dict, v, where: str):
    if t["kind"] == "optional":
        return None if v is None else _check(t["elem"], v, where)
    if t["kind"] == "sequence":
        if not isinstance(v, (list, tuple)):
            raise InputError(f"{where}: expected a sequence (a list) of {describe(t['elem'])}, got {type(v).__name__}")
        return [_check(t["elem"], x, f"{where}[{i}]") for i, x in enumerate(v)]
    from .ir import NP_DTYPES
    if v is None:
        raise InputError(f"{where}: expected {describe(t)}, got None")
    arr = np.asarray(v)
    if arr.dtype != np.dtype(NP_DTYPES[t["dtype"]]):
        raise InputError(f"{where}: expected dtype {t['dtype']}, got {arr.dtype}")
    shape = t["shape"]
    if shape is not None and (arr.ndim != len(shape) or any(d is not None and d != a for d, a in zip(shape, arr.shape))):
        raise InputError(f"{where}: expected shape {shape}, got {list(arr.shape)}")
    return arr.copy()


def take_feeds(entries: list[dict], feeds) -> tuple[dict, dict]:
    """(the tensor feeds, the passthrough outputs): each passthrough input checked against its type
    (an optional one may be left out: None)."""
    if not entries or not isinstance(feeds, dict):
        return feeds, {}
    inputs = {e["input"]: e["type"] for e in entries}
    rest = {k: v for k, v in feeds.items() if k not in inputs}
    checked = {}
    for name, t in inputs.items():
        if name not in feeds and t["kind"] != "optional":
            raise InputError(f"missing input {name!r} ({describe(t)})")
        checked[name] = _check(t, feeds.get(name), f"input {name!r}")
    return rest, {e["output"]: checked[e["input"]] for e in entries}
