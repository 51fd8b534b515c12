"""Run a bundle natively through wasmtime, exactly as the browser runtime does (same memory layout,
same kernels): the browser-free path for end-to-end tests and for debugging a bundle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import wasmtime

from .bundle import load_bundle
from .errors import BundleError
from .feeds import check_feeds
from .passthrough import take_feeds
from .strings import decode_outputs, encode_feeds
from .ir import NP_DTYPES, PACKED, from_bytes, to_bytes
from .wasm_native import Memory


class NativeSession:
    def __init__(self, bundle_dir: str | Path, relaxed: bool = True, moe: dict | None = None):
        """`moe`: a parameter committee (docs/moe.md) — only some experts of each MoE layer resident."""
        # load_bundle checks the manifest's structure and every tensor range against memory.total_bytes
        # and the weights' size before anything touches wasm memory.
        self.manifest, weights, files = load_bundle(Path(bundle_dir))
        self.moe = None
        if moe is not None:  # a smaller memory layout: only the committee's expert slots
            from .moe_runtime import MoeRuntime
            self.moe = MoeRuntime(self.manifest, weights, moe)
            self.manifest, weights = self.moe.manifest, self.moe.image
        m = self.manifest
        self.mem = Memory(m["memory"]["total_bytes"])
        base = m["memory"]["weights_base"]
        self.mem.bytes()[base:base + len(weights)] = np.frombuffer(weights, np.uint8)
        kernels = {k["id"]: k for k in m["kernels"]}
        self.fns = {}
        for k in m["kernels"]:
            if k.get("backend", "wasm") != "wasm":
                continue
            rel = k["relaxed"]["file"] if relaxed and k.get("relaxed") else k["file"]
            try:
                inst = self.mem.instantiate_module(files[rel])
                fn = inst.exports(self.mem.store)["run"]
            except KeyError:
                raise BundleError(f"{rel}: kernel {k['id']} exports no 'run' function") from None
            except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
                raise BundleError(f"{rel}: kernel {k['id']} is not a loadable wasm module "
                                  f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from None
            if not isinstance(fn, wasmtime.Func):
                raise BundleError(f"{rel}: kernel {k['id']}: export 'run' is not a function")
            self.fns[k["id"]] = fn
        self.tensors = {t["id"]: t for t in m["tensors"]}
        # LoRA-Switch (docs/lora_switch.md): merges run and skipped (a token whose set did not change
        # needs none; the gate step right before each merge step says which).
        self.stats = {"merge_dispatches": 0, "merge_skipped": 0}
        # A decoder bundle has a second plan (decoder.decode) over the same memory: docs/decoders.md.
        self.plans = {"main": (m["inputs"], m["outputs"], self._plan(m["steps"], kernels))}
        if "decoder" in m:
            d = m["decoder"]["decode"]
            self.plans["decode"] = (d["inputs"], d["outputs"], self._plan(d["steps"], kernels))
            if "decode_unfused" in m["decoder"]:  # LoRA-Switch: the other strategy (compiler/switch_jit.py)
                u = m["decoder"]["decode_unfused"]
                self.plans["decode_unfused"] = (u["inputs"], u["outputs"], self._plan(u["steps"], kernels))
        if self.moe is not None:
            self.moe.attach(self, files, relaxed)

    def _plan(self, steps: list[dict], kernels: dict) -> list:
        plan = []
        for s in steps:
            kid = s.get("candidates", {}).get("wasm", [s["kernel"]])[0]
            if kid not in self.fns:
                raise BundleError(f"manifest.json: step {s.get('id')}: expected a wasm kernel, "
                                  f"got {kid!r} ({kernels[kid].get('backend', 'wasm')})")
            fn = self.fns[kid]
            params = fn.type(self.mem.store).params
            if len(params) != len(s["args"]):
                raise BundleError(f"manifest.json: step {s.get('id')} args: expected {len(params)} tensor ids "
                                  f"for kernel {kid}, got {len(s['args'])}")
            if s["family"] == "lora_switch" and (not plan or plan[-1][0]["family"] != "lora_switch_gate"):
                raise BundleError(f"manifest.json: step {s.get('id')} (lora_switch) must follow its lora_switch_gate "
                                  f"step, got {plan[-1][0]['family'] if plan else 'nothing'} before it")
            plan.append((s, fn))
        return plan

    def addr(self, tid: int) -> int:
        t = self.tensors[tid]
        mem = self.manifest["memory"]
        return (mem["weights_base"] if t["storage"] == "weight" else mem["arena_base"]) + t["offset"]

    def run(self, feeds: dict[str, np.ndarray], plan: str = "main") -> dict[str, np.ndarray]:
        inputs, outputs, steps = self.plans[plan]
        feeds, passed = take_feeds(self.manifest.get("passthrough", []) if plan == "main" else [], feeds)
        feeds, table = encode_feeds(inputs, feeds, self.manifest.get("strings", []))
        checked = check_feeds(inputs, feeds)
        for spec in inputs:
            x = checked[spec["name"]]
            if spec["dtype"] in PACKED:
                raw = to_bytes(x, spec["dtype"])
                self.mem.view(self.addr(spec["tensor"]), (len(raw),), np.uint8)[...] = np.frombuffer(raw, np.uint8)
            else:
                self.mem.view(self.addr(spec["tensor"]), x.shape, x.dtype)[...] = x
        prev = None
        for s, fn in steps:
            before, prev = prev, s
            if s["family"] == "lora_switch" and not self._switch_go(before):
                continue
            if self.moe is not None and self.moe.run_step(s, fn):
                continue
            try:
                self.mem.call(fn, *[self.addr(a) for a in s["args"]])
            except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise BundleError(f"step {s.get('id')} ({s.get('op')} {s.get('node')}): kernel trapped: {msg}") from None
        return {**decode_outputs(outputs, {o["name"]: self._read(o) for o in outputs}, table, self.manifest.get("strings", [])), **passed}

    def _switch_go(self, gate_step: dict | None) -> bool:
        """Whether a merge step must run: the verdict its gate step (the step before it) wrote in go[0]."""
        go = int(self.mem.view(self.addr(gate_step["args"][2]), (1,), np.int32)[0])
        self.stats["merge_dispatches" if go else "merge_skipped"] += 1
        return bool(go)

    def _read(self, o: dict) -> np.ndarray:
        if o["dtype"] in PACKED:
            raw = self.mem.view(self.addr(o["tensor"]), (self.tensors[o["tensor"]]["bytes"],), np.uint8)
            return from_bytes(raw.tobytes(), o["dtype"], tuple(o["shape"]))
        return self.mem.view(self.addr(o["tensor"]), tuple(o["shape"]), NP_DTYPES[o["dtype"]]).copy()
