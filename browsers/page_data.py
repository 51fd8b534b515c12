"""Tensors to and from the bench pages: inputs as one binary file (each tensor 64-byte aligned, described
by a spec the page reads with bench/pages/harness.js loadTensors), string tensors and sequence/optional
values as JSON beside it; outputs back as base64 (encodeOutputs)."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

ALIGN = 64


def _json_value(v):
    """A sequence (list) / optional (None) value for the page: nested lists, null, tensors as base64."""
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    a = np.ascontiguousarray(v)
    return {"dtype": a.dtype.name, "shape": list(np.shape(v)), "b64": base64.b64encode(a.tobytes()).decode()}


def _from_json_value(v):
    if v is None:
        return None
    if isinstance(v, list):
        return [_from_json_value(x) for x in v]
    return np.frombuffer(bytearray(base64.b64decode(v["b64"])), dtype=np.dtype(v["dtype"])).reshape(v["dims"])


def write_inputs(path: Path, inputs: dict[str, np.ndarray]) -> list[dict]:
    """Tensors into one binary file (64-byte aligned); string tensors as JSON lists (`strings`),
    sequence / optional values as JSON (`value`, bench/pages/harness.js loadTensors)."""
    specs, offset = [], 0
    with open(path, "wb") as f:
        for name, value in inputs.items():
            if value is None or isinstance(value, (list, tuple)):
                specs.append({"name": name, "value": _json_value(value)})
                continue
            value = np.asarray(value)
            if value.dtype == object:
                text = [x.decode() if isinstance(x, bytes) else str(x) for x in value.reshape(-1)]
                specs.append({"name": name, "dtype": "string", "shape": list(value.shape), "strings": text})
                continue
            arr = np.ascontiguousarray(value).reshape(value.shape)  # ascontiguousarray makes a 0-d array 1-d
            offset = -(-offset // ALIGN) * ALIGN
            f.seek(offset)
            f.write(arr.tobytes())
            specs.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape), "offset": offset, "bytes": arr.nbytes})
            offset += arr.nbytes
    return specs


def decode_outputs(outputs: dict) -> dict[str, np.ndarray]:
    from nnjit.compiler.ir import CAST_ONLY_BITS, from_bytes

    def one(o):
        if "value" in o:  # a sequence / optional passed through
            return _from_json_value(o["value"])
        if "strings" in o:
            out = np.empty(len(o["strings"]), dtype=object)
            out[:] = o["strings"]
            return out.reshape(o["dims"])
        raw = base64.b64decode(o["b64"])
        if o["dtype"] in CAST_ONLY_BITS:  # a memory image (packed for 4/2-bit types)
            return from_bytes(raw, o["dtype"], tuple(o["dims"]))
        return np.frombuffer(bytearray(raw), dtype=np.dtype(o["dtype"])).reshape(o["dims"])

    return {name: one(o) for name, o in outputs.items()}
