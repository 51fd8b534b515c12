"""The parameter committee at run time, natively (docs/moe.md): only R experts per MoE layer live in
wasm memory; the others stay in a host-side store. Per policy:

- substitute: an out-of-committee expert reads its most similar committee member's slot;
- skip: it is dropped and the token's kept gates take its share (the kernel rescales them);
- swap: a host step between the router and the moe kernel makes each token's experts resident,
  evicting the least recently used slot that the tokens in flight do not need, and runs the batch
  in runs of tokens whose experts are all resident (`run_tokens`).

substitute and skip are only slot tables (written once); swap rewrites the table per run of
tokens. NativeSession calls `attach` once and `run_step` before every step.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .moe_options import POLICIES, Layer, apply_plan, compact, load_plan, moe_layers, resident_count


class MoeRuntime:
    def __init__(self, manifest: dict, weights: bytes, options: dict):
        options = dict(options)
        unknown = set(options) - {"residentExperts", "budgetBytes", "policy", "plan"}
        if unknown:
            raise InputError(f"moe options: unknown {sorted(unknown)}; expected residentExperts | budgetBytes, "
                             "policy, plan")
        self.policy = options.get("policy", "swap")
        if self.policy not in POLICIES:
            raise InputError(f"moe.policy: expected one of {', '.join(POLICIES)}, got {self.policy!r}")
        self.layers = moe_layers(manifest, weights)
        if not self.layers:
            raise InputError("moe options given, but the bundle has no MoE layer (no moe step)")
        self.R = resident_count(self.layers, options)
        if self.policy == "swap" and self.R < max(layer.k for layer in self.layers):
            raise InputError(f"moe.residentExperts: policy 'swap' needs at least k = "
                             f"{max(layer.k for layer in self.layers)} resident experts per layer, got {self.R}")
        apply_plan(self.layers, load_plan(options.get("plan")), self.R)
        self.manifest, self.image = compact(manifest, weights, self.layers, self.R)
        self.by_step = {layer.step["id"]: layer for layer in self.layers}
        self.swaps = 0
        self.swap_bytes = 0
        self.observer = None  # the planner's hook: fn(layer, x, ids, gates) before each moe step
        self._clock = 0

    @property
    def resident_expert_bytes(self) -> int:
        return self.R * sum(layer.slot_bytes for layer in self.layers)

    @property
    def store_bytes(self) -> int:
        return sum(layer.E * layer.slot_bytes for layer in self.layers)

    def attach(self, session, files: dict, relaxed: bool) -> None:
        """Fill each layer's slots with its committee, write its slot table, and keep a `run_tokens`
        entry of the same kernel binary the session runs (so a swap run computes the same bits)."""
        self.session = session
        kernels = {k["id"]: k for k in self.manifest["kernels"]}
        for layer in self.layers:
            layer.slot_expert = list(layer.committee)           # slot → expert
            layer.last_use = [0] * self.R
            for slot, e in enumerate(layer.committee):
                self._write_slot(layer, slot, e)
            layer.table = self._table(layer)
            self._write_table(layer)
            k = kernels[layer.step["candidates"].get("wasm", [layer.step["kernel"]])[0]]
            rel = k["relaxed"]["file"] if relaxed and k.get("relaxed") else k["file"]
            inst = session.mem.instantiate_module(files[rel])
            layer.run_tokens = inst.exports(session.mem.store)["run_tokens"]

    def _table(self, layer: Layer) -> np.ndarray:
        slot_of = {e: s for s, e in enumerate(layer.slot_expert)}
        table = np.full(layer.E, -1, np.int32)
        for e in range(layer.E):
            if e in slot_of:
                table[e] = slot_of[e]
            elif self.policy == "substitute":
                table[e] = slot_of[next(c for c in layer.similar[e] if c in slot_of)]
        return table

    def _addr(self, tid: int) -> int:
        return self.session.addr(tid)

    def _write_slot(self, layer: Layer, slot: int, expert: int) -> None:
        sf = layer.slot_bytes // 4
        self.session.mem.view(self._addr(layer.store_tid) + slot * layer.slot_bytes, (sf,), np.float32)[...] = \
            layer.store[expert]

    def _write_table(self, layer: Layer) -> None:
        self.session.mem.view(self._addr(layer.table_tid), (layer.E,), np.int32)[...] = layer.table

    def run_step(self, s: dict, fn) -> bool:
        """Before step `s`: True when this runtime ran it (a swap-policy moe step)."""
        layer = self.by_step.get(s.get("id"))
        if layer is None or (self.observer is None and self.policy != "swap"):
            return False
        a = s["args"]
        ids_dtype = np.int64 if self.session.tensors[a[1]]["dtype"] == "int64" else np.int32
        T = self.session.tensors[a[0]]["bytes"] // (4 * layer.H)
        ids = self.session.mem.view(self._addr(a[1]), (T, layer.k), ids_dtype).copy()
        if self.observer is not None:
            x = self.session.mem.view(self._addr(a[0]), (T, layer.H), np.float32).copy()
            gates = self.session.mem.view(self._addr(a[2]), (T, layer.k), np.float32).copy()
            self.observer(layer, x, ids, gates)
        if self.policy != "swap":
            return False
        self._swap_run(layer, [self._addr(t) for t in a], ids)
        return True

    def _swap_run(self, layer: Layer, addrs: list[int], ids: np.ndarray) -> None:
        T = ids.shape[0]
        start, pinned = 0, set()
        for t in range(T):
            need = [int(e) for e in dict.fromkeys(ids[t].tolist()) if 0 <= e < layer.E]
            missing = [e for e in need if layer.table[e] < 0]
            held = {int(layer.table[e]) for e in need if layer.table[e] >= 0}
            if len([s for s in range(self.R) if s not in pinned | held]) < len(missing):
                self._flush(layer, addrs, start, t)  # the tokens in flight keep their slots until run
                start, pinned = t, set()
            for e in missing:
                victim = min((s for s in range(self.R) if s not in pinned | held), key=lambda s: layer.last_use[s])
                old = layer.slot_expert[victim]
                layer.table[old] = -1
                self._write_slot(layer, victim, e)
                layer.slot_expert[victim], layer.table[e] = e, victim
                held.add(victim)
                self.swaps += 1
                self.swap_bytes += layer.slot_bytes
            for e in need:
                self._clock += 1
                layer.last_use[layer.table[e]] = self._clock
                pinned.add(int(layer.table[e]))
        self._flush(layer, addrs, start, T)

    def _flush(self, layer: Layer, addrs: list[int], t0: int, t1: int) -> None:
        if t1 > t0:
            self._write_table(layer)
            self.session.mem.call(layer.run_tokens, *addrs, t0, t1)
