"""The decoder ops the KV-cache pass introduces (compiler/passes/kv_cache.py): cache writes and fused
causal attention over the cache, each one kernel (kernels_*/kvwrite, kernels_*/attention)."""
from __future__ import annotations

from ..ir import Node
from .common import Lowering, lowers


@lowers("KvWrite")
def lower_kv_write(L: Lowering, node: Node) -> None:
    src, pos = node.inputs
    cache = node.outputs[0]
    _, H, S, D = L.shape(src)
    L.need_float(node, src)
    L.emit(node, "kvwrite", {"H": H, "S": S, "D": D, "T": node.attrs["max_context"], "pos_dtype": L.dtype(pos)},
           [src, pos, cache], [cache])


@lowers("CausalAttention")
def lower_attention(L: Lowering, node: Node) -> None:
    q, pos, kc, vc = node.inputs
    out = node.outputs[0]
    _, H, S, D = L.shape(q)
    a = node.attrs
    L.need_float(node, q)
    L.emit(node, "attention", {"H": H, "Hkv": a["kv_heads"], "S": S, "D": D, "T": a["max_context"],
                               "scale": float(a["scale"]), "window": int(a["window"]), "pos_dtype": L.dtype(pos)},
           [q, pos, kc, vc, out], [out])
