"""`--bind NAME=...`: freeze graph inputs to constants before shape inference.

This compiler specialises every shape ahead of time, so an input that decides shapes (Slice's starts,
Reshape's shape, a reduction's axes) must be known at compile time. Binding turns such an input into an
initializer: it leaves the bundle's inputs, and shape inference and constant folding see its value."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import ShapeError


def parse_bind_args(items: list[str] | None) -> dict[str, np.ndarray]:
    """`NAME=FILE.npy` loads an array; `NAME=v1,v2,...` is a 1-D list (ints, else floats; `NAME=` is empty)."""
    out: dict[str, np.ndarray] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ShapeError(f"--bind {item!r}: expected NAME=FILE.npy or NAME=v1,v2,...")
        if text.endswith(".npy"):
            try:
                out[name] = np.load(text, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise ShapeError(f"--bind {name}: cannot read {text!r} as a .npy array ({e})") from None
            continue
        parts = [t.strip() for t in text.split(",") if t.strip()]
        try:
            out[name] = np.array([int(t) for t in parts], np.int64)
        except ValueError:
            try:
                out[name] = np.array([float(t) for t in parts], np.float64)
            except ValueError:
                raise ShapeError(f"--bind {item!r}: values must be numbers separated by commas") from None
    return out


def freeze_inputs(model: onnx.ModelProto, bind: dict, path: str | Path = "model") -> None:
    """Replace each bound graph input by an initializer of its declared dtype (in place)."""
    if not bind:
        return
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    for name, value in bind.items():
        if name not in inputs:
            raise ShapeError(f"{path}: --bind names {name!r}, which is not a graph input "
                             f"(inputs: {', '.join(sorted(inputs)) or 'none'})")
        tt = inputs[name].type.tensor_type
        try:
            want = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        except Exception:  # noqa: BLE001 - a non-tensor or unknown element type
            raise ShapeError(f"{path}: --bind {name}: the input is not a plain tensor") from None
        arr = np.asarray(value)
        dims = list(tt.shape.dim) if tt.HasField("shape") else None
        if dims is not None and len(dims) == 0 and arr.size == 1:
            arr = arr.reshape(())
        if dims is not None:
            if arr.ndim != len(dims):
                raise ShapeError(f"{path}: --bind {name}: the input has rank {len(dims)}, got shape {list(arr.shape)}")
            for k, (d, n) in enumerate(zip(dims, arr.shape)):
                if d.HasField("dim_value") and d.dim_value != n:
                    raise ShapeError(f"{path}: --bind {name}: dim {k} is fixed at {d.dim_value}, got {n}")
        with np.errstate(all="ignore"):
            cast = arr.astype(want)
        if arr.size and arr.dtype != want and not np.array_equal(cast.astype(arr.dtype), arr, equal_nan=arr.dtype.kind == "f"):
            raise ShapeError(f"{path}: --bind {name}: expected values of dtype {np.dtype(want)}, got {arr.dtype} "
                             "values that do not convert exactly")
        # Before IR 4 every initializer must also be listed as an input; from IR 4 an initializer that is
        # still an input is an overridable default, which shape inference would not treat as a constant.
        if model.ir_version >= 4:
            model.graph.input.remove(inputs[name])
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(cast), name))


def shape_hint(g, name: str) -> tuple[str, str | None]:
    """For a value with no static shape: the graph inputs (besides the first, the data) of its producer,
    which may decide that shape, as advice to bind them, and the first of them."""
    node = g.producers().get(name)
    # every input of these decides the output's shape, the first one included
    first = 0 if node is not None and node.op in ("Range", "ConstantOfShape") else 1
    cands = [i for i in (node.inputs[first:] if node else []) if i in g.inputs]
    if not cands:
        return "", None
    return ("; its shape depends on graph input " + ", ".join(repr(c) for c in cands)
            + f": freeze it at compile time with --bind {cands[0]}=v1,v2,..."), cands[0]
