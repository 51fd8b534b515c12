"""LoraSwitch (compiler/passes/lora_switch.py) → two kernels: `lora_switch` rebuilds every switched
projection's merged weight M = W + scale·Σ_{i∈ids} A_i·B_i of all layers in one launch, and
`lora_switch_commit` records the set M now holds in the gate ([merges run, valid, ids...]).

The merge kernel itself skips when the gate already holds the router's set: a GPU cannot skip the
dispatch without reading the ids back, and the gate cannot be updated by the merge launch itself
(its threads still compare against it), hence the one-thread commit launched right after. The wasm
host skips the merge call outright (web_runtime/lora_switch.js, compiler/native_runtime.py)."""
from __future__ import annotations

from ..ir import Node
from .common import Lowering, lowers


@lowers("LoraSwitch")
def lower_lora_switch(L: Lowering, node: Node) -> None:
    ids, w, a, b = node.inputs
    state, gate = node.outputs[:2]
    k = int(L.shape(ids)[-1])
    L.emit(node, "lora_switch", {"k": k, "ids_dtype": L.dtype(ids), "pool": node.attrs["pool"],
                                 "segments": node.attrs["segments"], "total": int(L.shape(state)[0])},
           [ids, w, a, b, state, gate], [state])
    L.emit(node, "lora_switch_commit", {"k": k, "ids_dtype": L.dtype(ids)}, [ids, gate], [gate])
