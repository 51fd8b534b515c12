"""Dropout. Inference (or ratio 0) is the identity: the output aliases the input and the mask is all true.
Training mode (a constant true training_mode) is output = x · mask / (1 − ratio) with the mask drawn as
onnx's reference draws it: numpy's legacy RandomState(seed).uniform(0, 1, x.shape) >= ratio. Shapes and
the seed are known at compile time, so the mask is a constant of the bundle; without a seed attribute a
fresh seed is drawn per compile, so the mask then changes from bundle to bundle, never from run to run
(a kernel-side generator could not reproduce the reference's Mersenne-Twister stream anyway)."""
from __future__ import annotations

import secrets

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import NP_DTYPES, Node
from .common import Lowering, lowers
from .elementwise import lower_binary
from .movement import emit_copy


def _keep(node: Node, shape, ratio: np.ndarray) -> np.ndarray:
    seed = node.attrs.get("seed")
    seed = secrets.randbits(32) if seed is None else int(seed)
    if not 0 <= seed < 2 ** 32:
        raise UnsupportedOpError(f"node {node.name} (Dropout): seed {seed} is outside numpy RandomState's "
                                 "range [0, 2^32), which onnx's reference draws the mask with")
    # `ratio` keeps its own dtype: the reference compares the float64 draws with it as given
    return np.random.RandomState(seed).uniform(0, 1.0, tuple(shape)) >= ratio


@lowers("Dropout")
def lower_dropout(L: Lowering, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    ins = node.inputs + ["", ""]
    keep = None
    if ins[2] and bool(L.need_const(node, 2, "training_mode").reshape(-1)[0]):
        ratio = L.need_const(node, 1, "ratio").reshape(()) if ins[1] else np.array(0.5, np.float32)
        if not 0.0 <= float(ratio) < 1.0:
            raise UnsupportedOpError(f"node {node.name} (Dropout): input 1 (ratio) is {float(ratio)}; "
                                     "expected a value in [0, 1)")
        if float(ratio) != 0.0:
            keep = _keep(node, L.shape(x), ratio)
    if keep is None:
        L.alias(y, x)
    else:
        one = np.ones((), ratio.dtype)
        scale = one / (one - ratio)  # in ratio's dtype, as the reference's 1.0 / (1.0 - ratio)
        # x · (mask·scale) equals the reference's (mask·x)·scale bit for bit: the mask is 0 or 1
        factor = L.const(f"{node.name}_scale", (keep * scale).astype(NP_DTYPES[L.dtype(x)]))
        lower_binary(L, Node("Mul", node.name, [x, factor], [y], {}))
    mask = node.outputs[1] if len(node.outputs) > 1 else ""
    if mask:
        bits = (np.ones(L.shape(mask), np.bool_) if keep is None else keep).astype(NP_DTYPES[L.dtype(mask)])
        n = max(int(np.prod(L.shape(mask))), 1)
        emit_copy(L, node, L.const(f"{node.name}_mask", bits), mask, [n], [1], [1])
