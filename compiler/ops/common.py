"""Shared pieces of op lowering: the Step record, the lowering context and stride arithmetic."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node, Value

LOWERINGS: dict[str, callable] = {}


def lowers(*ops):
    def deco(fn):
        for op in ops:
            LOWERINGS[op] = fn
        return fn
    return deco


@dataclass
class Step:
    op: str            # the ONNX op this step comes from
    node: str          # the ONNX node name
    family: str        # kernel family (docs/kernels.md)
    params: dict       # template parameters
    args: list[str]    # value names in the kernel's parameter order
    outputs: list[str]  # which of args the step writes
    candidates: list[dict] = field(default_factory=list)  # alternative schedules (params overrides)


class Lowering:
    def __init__(self, g: Graph):
        self.g = g
        self.steps: list[Step] = []
        self.aliases: dict[str, str] = {}  # value → value whose buffer it shares
        self.pack_widths: dict[str, int] = {}  # constant gemm B → the panel width it was packed with

    def emit(self, node: Node, family: str, params: dict, args: list[str], outputs: list[str],
             candidates: list[dict] | None = None) -> None:
        self.steps.append(Step(node.op, node.name, family, params, args, outputs, candidates or []))

    def alias(self, out: str, src: str) -> None:
        self.aliases[out] = src

    def temp(self, hint: str, dtype: str, shape: tuple[int, ...]) -> str:
        name = self.g.fresh(hint)
        self.g.values[name] = Value(name, dtype, tuple(shape))
        return name

    def const(self, hint: str, array: np.ndarray) -> str:
        return self.g.add_const(hint, array)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.g.values[name].shape

    def dtype(self, name: str) -> str:
        return self.g.values[name].dtype

    def need_const(self, node: Node, idx: int, what: str) -> np.ndarray:
        name = node.inputs[idx] if idx < len(node.inputs) else ""
        if not name or not self.g.is_const(name):
            raise self.not_const(node, idx, what)
        return self.g.const(name)

    def not_const(self, node: Node, idx: int, what: str, why: str = "must be a constant") -> UnsupportedOpError:
        """The error for a run-time value where the lowering needs a compile-time one; a graph input can be
        frozen by the user, so the error says how and carries its name for tools that retry."""
        name = node.inputs[idx] if idx < len(node.inputs) else ""
        msg = f"node {node.name} ({node.op}): input {idx} ({what}) {why}"
        if name and name in self.g.inputs:
            return UnsupportedOpError(f"{msg}; {name!r} is a graph input: freeze it at compile time with "
                                      f"--bind {name}=v1,v2,... or --bind {name}=FILE.npy "
                                      "(compile_model(bind={...}))", needs_constant=name)
        return UnsupportedOpError(msg + (f" ({name!r} is computed at run time)" if name else ""))

    def need_float(self, node: Node, *names: str) -> None:
        for n in names:
            if self.dtype(n) != "float32":
                raise UnsupportedOpError(f"node {node.name} ({node.op}): input {n!r} is {self.dtype(n)} at run time; "
                                         "only float32 is supported for this op")


def contiguous_strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def broadcast_strides(in_shape, out_shape) -> list[int]:
    """Element strides of `in_shape` viewed as `out_shape` under ONNX (numpy) broadcasting."""
    pad = len(out_shape) - len(in_shape)
    full = (1,) * pad + tuple(in_shape)
    cs = contiguous_strides(full)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(full, out_shape, cs)]


def collapse(shape, *stride_lists):
    """Merge adjacent dims that every operand walks contiguously; drop size-1 dims.
    Returns (shape, [strides...]) with at least one dim."""
    dims = [(d, [s[i] for s in stride_lists]) for i, d in enumerate(shape) if d != 1]
    if not dims:
        return [1], [[0] for _ in stride_lists]
    out = [dims[0]]
    for d, st in dims[1:]:
        pd, pst = out[-1]
        if all(ps == s * d for ps, s in zip(pst, st)):
            out[-1] = (pd * d, st)
        else:
            out.append((d, st))
    return [d for d, _ in out], [[st[k] for _, st in out] for k in range(len(stride_lists))]


def norm_axis(axis: int, rank: int, node: Node) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): axis {axis} out of range for rank {rank}")
    return a
