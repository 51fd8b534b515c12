"""LoraSwitch (compiler/passes/lora_switch.py) → three kernels: `lora_switch_gate` compares the router's
set with the one the gate ([merges run, valid, ids...]) says the merged weights hold and writes the
verdict to `go`; `lora_switch` rebuilds every switched projection's merged weight M = W + scale·Σ_{i∈ids}
A_i·B_i of all layers in one launch; `lora_switch_commit` records the set M now holds in the gate.

The merge step must follow its gate step directly: the wasm hosts read the verdict (go[0]) and skip the
merge call (web_runtime/lora_switch.js, compiler/native_runtime.py); on WebGPU `go` holds the merge's
indirect dispatch arguments (0 workgroups when the set did not change), so no read-back is needed to
skip it. The gate cannot be updated by the merge launch itself (its threads would race the compare),
hence the one-thread commit after it."""
from __future__ import annotations

from ..ir import Node
from .common import Lowering, lowers


@lowers("LoraSwitch")
def lower_lora_switch(L: Lowering, node: Node) -> None:
    ids, w, a, b = node.inputs
    state, gate = node.outputs[:2]
    k = int(L.shape(ids)[-1])
    # go: [x, y, z, unused, the merge's grid x, y, z, unused] (WebGPU's layout; wasm uses word 0 only).
    go = L.temp("lora_switch.go", "int32", (8,))
    L.emit(node, "lora_switch_gate", {"k": k, "ids_dtype": L.dtype(ids)}, [ids, gate, go], [go])
    L.emit(node, "lora_switch", {"k": k, "ids_dtype": L.dtype(ids), "pool": node.attrs["pool"],
                                 "segments": node.attrs["segments"], "total": int(L.shape(state)[0])},
           [ids, w, a, b, state, gate], [state])
    L.emit(node, "lora_switch_commit", {"k": k, "ids_dtype": L.dtype(ids)}, [ids, gate], [gate])
