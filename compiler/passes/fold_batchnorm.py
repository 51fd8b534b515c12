"""Fold BatchNormalization into the Conv that feeds it: W' = W·s, b' = (b − mean)·s + beta with
s = gamma / sqrt(var + eps). Inference-time BN is an affine map per channel, so this is exact up to
rounding and removes a whole pass over the activation."""
from __future__ import annotations

import numpy as np

from ..ir import Graph


def fold_batchnorm(g: Graph) -> int:
    producers = g.producers()
    consumers = g.consumers()
    folded = 0
    drop = set()
    for bn in g.nodes:
        if bn.op != "BatchNormalization" or len([o for o in bn.outputs if o]) != 1:
            continue
        x = bn.inputs[0]
        conv = producers.get(x)
        if conv is None or conv.op != "Conv" or len(consumers.get(x, [])) != 1 or x in g.outputs:
            continue
        if not all(g.is_const(i) for i in bn.inputs[1:5]) or not g.is_const(conv.inputs[1]):
            continue
        gamma, beta, mean, var = (g.const(i).astype(np.float64) for i in bn.inputs[1:5])
        eps = float(bn.attrs.get("epsilon", 1e-5))
        s = gamma / np.sqrt(var + eps)
        w = g.const(conv.inputs[1]).astype(np.float64)
        b = g.const(conv.inputs[2]).astype(np.float64) if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(w.shape[0])
        w2 = (w * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        b2 = ((b - mean) * s + beta).astype(np.float32)
        wname = g.add_const(conv.inputs[1] + "_bnfold", w2)
        bname = g.add_const(conv.name + "_bias_bnfold", b2)
        conv.inputs = [conv.inputs[0], wname, bname]
        conv.outputs = [bn.outputs[0]]
        drop.add(id(bn))
        folded += 1
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return folded
