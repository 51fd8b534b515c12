"""The compiler's graph IR: values with static shapes, nodes in topological order."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DTYPE_SIZES = {"float32": 4, "int64": 8, "int32": 4, "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
               "uint32": 4, "uint64": 8, "float16": 2, "float64": 8}
NP_DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "bool": np.bool_, "int8": np.int8,
             "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
             "float16": np.float16, "float64": np.float64}
INT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64")

# Cast-only dtypes: ONNX's bfloat16, 8-bit floats, float4 and 4/2-bit integers (packed two/four per byte,
# the first element in the low bits, as ONNX stores them). Only Cast reads or writes them (lower.check);
# numpy holds them as ml_dtypes types (what onnx's numpy_helper returns), one element per array item.
CAST_ONLY_BITS = {"bfloat16": 16, "float8e4m3fn": 8, "float8e4m3fnuz": 8, "float8e5m2": 8, "float8e5m2fnuz": 8,
                  "float8e8m0": 8, "float4e2m1": 4, "int4": 4, "uint4": 4, "int2": 2, "uint2": 2}
PACKED = ("float4e2m1", "int4", "uint4", "int2", "uint2")


def _ml_dtypes() -> dict:
    import ml_dtypes as md
    return {"bfloat16": md.bfloat16, "float8e4m3fn": md.float8_e4m3fn, "float8e4m3fnuz": md.float8_e4m3fnuz,
            "float8e5m2": md.float8_e5m2, "float8e5m2fnuz": md.float8_e5m2fnuz, "float8e8m0": md.float8_e8m0fnu,
            "float4e2m1": md.float4_e2m1fn, "int4": md.int4, "uint4": md.uint4, "int2": md.int2, "uint2": md.uint2}


NP_DTYPES.update(_ml_dtypes())


def dtype_bits(dtype: str) -> int:
    return 8 * DTYPE_SIZES[dtype] if dtype in DTYPE_SIZES else CAST_ONLY_BITS[dtype]


def tensor_bytes(dtype: str, n: int) -> int:
    """Bytes of n elements in memory: packed dtypes round up to whole bytes."""
    return (int(n) * dtype_bits(dtype) + 7) // 8


def to_bytes(arr: np.ndarray, dtype: str) -> bytes:
    """An array's memory image: packed dtypes two (four) elements per byte, the first in the low bits."""
    if dtype not in PACKED:
        return np.ascontiguousarray(arr).tobytes()
    bits = CAST_ONLY_BITS[dtype]
    k = 8 // bits
    v = np.ascontiguousarray(arr).reshape(-1).view(np.uint8) & ((1 << bits) - 1)
    v = np.concatenate([v, np.zeros((-v.size) % k, np.uint8)]).reshape(-1, k)
    return (v << (np.arange(k, dtype=np.uint8) * bits)).sum(axis=1, dtype=np.uint8).tobytes()


def from_bytes(raw, dtype: str, shape) -> np.ndarray:
    """The inverse of to_bytes: an array of `shape` read from a memory image."""
    n = int(np.prod(shape, dtype=np.int64))
    buf = np.frombuffer(bytes(raw), np.uint8)[:tensor_bytes(dtype, n)]
    if dtype not in PACKED:
        return buf.view(NP_DTYPES[dtype]).reshape(shape).copy()
    bits = CAST_ONLY_BITS[dtype]
    k = 8 // bits
    # ml_dtypes holds each element as its bit field in the low bits of a byte (int4 −1 is 0x0f)
    v = ((buf[:, None] >> (np.arange(k, dtype=np.uint8) * bits)) & ((1 << bits) - 1)).reshape(-1)[:n]
    return np.ascontiguousarray(v).view(NP_DTYPES[dtype]).reshape(shape).copy()


def dtype_name(np_dtype) -> str:
    d = np.dtype(np_dtype)
    for name, t in NP_DTYPES.items():
        if d == np.dtype(t):
            return name
    return str(d)


@dataclass
class Value:
    name: str
    dtype: str
    shape: tuple[int, ...] | None
    const: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return tensor_bytes(self.dtype, self.size) if self.dtype in NP_DTYPES else self.size * 8


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    domain: str = ""

    def all_inputs(self) -> list[str]:
        """Inputs plus the values an epilogue fusion attached (bias, residual)."""
        extra = [self.attrs[k] for k in ("_bias", "_residual") if self.attrs.get(k)]
        return [i for i in self.inputs if i] + extra


class Graph:
    def __init__(self, name: str = "model"):
        self.name = name
        self.values: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.opset = 17
        # String tensors run as int32 ids (compiler/strings.py): the compile-time table, and the values holding ids.
        self.strings: list[str] = []
        self.string_values: set[str] = set()
        # Sequence/optional graph inputs passed through Identity to outputs (compiler/passthrough.py).
        self.passthrough: list[dict] = []

    def value(self, name: str) -> Value:
        return self.values[name]

    def is_const(self, name: str) -> bool:
        return bool(name) and self.values[name].const is not None

    def const(self, name: str) -> np.ndarray:
        return self.values[name].const

    def add_const(self, hint: str, array: np.ndarray) -> str:
        name = self.fresh(hint)
        self.values[name] = Value(name, dtype_name(array.dtype), tuple(array.shape), np.ascontiguousarray(array))
        return name

    def fresh(self, hint: str) -> str:
        i, name = 0, hint
        while name in self.values:
            i += 1
            name = f"{hint}_{i}"
        return name

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.all_inputs():
                out.setdefault(i, []).append(n)
        return out

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def remove_dead(self) -> None:
        """Drop nodes none of whose outputs reach a graph output, and values nobody references."""
        live = set(self.outputs)
        kept = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                kept.append(n)
                live.update(n.all_inputs())
        self.nodes = kept[::-1]
        live.update(self.inputs)
        # A kept node still writes its unread outputs (TopK's values when only the indices are used).
        live.update(o for n in kept for o in n.outputs if o)
        self.values = {k: v for k, v in self.values.items() if k in live}
