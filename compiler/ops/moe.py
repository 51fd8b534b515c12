"""MoeExperts (compiler/passes/moe.py) → the moe kernel: each token's routed experts only, read from
expert slots through a slot table (docs/moe.md, kernels_wasm/moe.wat.j2)."""
from __future__ import annotations

from .. import moe_layout
from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, lowers


@lowers("MoeExperts")
def lower_moe(L: Lowering, node: Node) -> None:
    x, ids, gates, table, store = node.inputs
    y = node.outputs[0]
    a = node.attrs
    H, F, E, k = int(a["H"]), int(a["F"]), int(a["E"]), int(a["k"])
    moe_layout.check_k(k, E, f"node {node.name!r} (MoeExperts)")
    L.need_float(node, x, gates)
    if L.dtype(ids) not in ("int64", "int32"):
        raise UnsupportedOpError(f"node {node.name} (MoeExperts): expert ids are {L.dtype(ids)}; "
                                 "expected int64 or int32")
    T = L.g.values[x].size // H
    gated = bool(a.get("gated", 0))
    hidden = L.temp(node.name + "_hidden", "float32", (moe_layout.scratch_floats(F, gated),))
    params = {"T": T, "H": H, "F": F, "E": E, "k": k, "act": a["act"], "gated": gated,
              "idx_bytes": 8 if L.dtype(ids) == "int64" else 4, **moe_layout.layout(H, F, gated)}
    L.emit(node, "moe", params, [x, ids, gates, table, store, y, hidden], [y, hidden])
