"""Run a bundle's WebGPU kernels natively through wgpu-py, laid out exactly as the browser backend
does it: one weights buffer, one arena buffer, every tensor a 256-byte aligned sub-range, pipelines
and bind groups built once, one command encoder and one submit per run. It is the browser-free
test path and the "native WebGPU" baseline of the benchmarks."""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from .bundle import load_bundle
from .errors import BundleError
from .feeds import check_feeds
from .passthrough import take_feeds
from .strings import decode_outputs, encode_feeds
from .ir import from_bytes, to_bytes
from .wgpu_native import device


_READ_ONLY = re.compile(r"var<storage(\s*,\s*read)?\s*>")


def as_arena_shader(text: str) -> str:
    """Inputs and outputs are ranges of one arena buffer, and WebGPU forbids using a buffer as read-only
    and writable storage in one dispatch: declare every binding read_write (as the browser backend does)."""
    return _READ_ONLY.sub("var<storage, read_write>", text)


def device_class(dev) -> str:
    """'cpu' for adapters that emulate a GPU on the CPU (lavapipe, SwiftShader), as the browser runtime decides."""
    info = dev.adapter.info
    text = " ".join(str(info.get(k, "")) for k in ("vendor", "device", "description", "adapter_type"))
    return "cpu" if re.search(r"swiftshader|llvmpipe|lavapipe|\bcpu\b", text, re.I) else "gpu"


def webgpu_gap(manifest: dict) -> str | None:
    """Why a bundle cannot run on WebGPU (a step the compiler gave no WGSL kernel), as the web runtime's webgpuGap."""
    from .codegen.wgsl import gap
    kernels = {k.get("id"): k for k in manifest.get("kernels", [])}
    for st in manifest["steps"] + manifest.get("decoder", {}).get("decode", {}).get("steps", []):
        if not st.get("candidates", {}).get("webgpu"):
            why = gap(st.get("family"), kernels.get(st.get("kernel"), {}).get("config", {}))
            return (f"the bundle has no webgpu kernel for step {st.get('id')} ({st.get('op')} {st.get('node')})"
                    + (f": {why}" if why else ""))
    return None


def _round4(n: int) -> int:
    return -(-max(n, 4) // 4) * 4


class GPUSession:
    def __init__(self, bundle_dir: str | Path):
        import wgpu
        self.wgpu = wgpu
        self.manifest, weights, files = load_bundle(Path(bundle_dir))
        m = self.manifest
        self.dev = dev = device()
        kernels = {k["id"]: k for k in m["kernels"] if k["backend"] == "webgpu"}
        gap = webgpu_gap(m)
        if gap:
            raise BundleError(f"{bundle_dir}: {gap}; run it on wasm")
        if not kernels and m["steps"]:  # a graph folded to constants has no steps and needs no kernels
            raise BundleError(f"{bundle_dir}: the bundle has no webgpu kernels (compile with --backend wasm,webgpu)")
        usage = wgpu.BufferUsage
        self.weights = dev.create_buffer_with_data(data=weights + bytes(_round4(len(weights)) - len(weights)) if weights else bytes(4),
                                                   usage=usage.STORAGE | usage.COPY_SRC)
        arena_bytes = max(_round4(m["memory"]["arena_bytes"]), 4)
        self.arena = dev.create_buffer(size=arena_bytes, usage=usage.STORAGE | usage.COPY_DST | usage.COPY_SRC)
        self.pipelines = {}
        dec = m.get("decoder", {}).get("decode")
        unfused = m.get("decoder", {}).get("decode_unfused")  # LoRA-Switch's other strategy
        all_steps = m["steps"] + (dec["steps"] if dec else []) + (unfused["steps"] if unfused else [])
        for kid, k in kernels.items():
            if not any(kid in st["candidates"].get("webgpu", ()) for st in all_steps):
                continue
            module = dev.create_shader_module(code=as_arena_shader(files[k["file"]].decode()))
            self.pipelines[kid] = dev.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": k["entry"]})
        self.tensors = m["tensors"]
        self.device_class = device_class(dev)
        self.calls = self._calls(m["steps"], kernels)
        # A decoder bundle's one-token plan over the same buffers (docs/decoders.md).
        self.plans = {"main": (m["inputs"], m["outputs"], self.calls)}
        if dec:
            self.plans["decode"] = (dec["inputs"], dec["outputs"], self._calls(dec["steps"], kernels))
        if unfused:
            self.plans["decode_unfused"] = (unfused["inputs"], unfused["outputs"], self._calls(unfused["steps"], kernels))

    def _calls(self, steps: list[dict], kernels: dict) -> list:
        """(pipeline, bind group, dispatch, step) per step; dispatch is [x, y, z], or for a LoRA-Switch
        merge the buffer its gate step writes the indirect arguments to (docs/lora_switch.md): a buffer
        of its own, since one read as INDIRECT may not be writable storage (the arena) in that dispatch."""
        calls, go = [], None
        usage = self.wgpu.BufferUsage
        for st in steps:
            cands = st["candidates"]["webgpu"]
            kid = next((c for c in cands if kernels[c].get("device_class", "any") in ("any", self.device_class)), cands[0])
            pipe = self.pipelines[kid]
            entries = [{"binding": i, "resource": self._range(a)} for i, a in enumerate(st["args"])]
            dispatch = kernels[kid]["dispatch"]
            if st["family"] == "lora_switch":
                if go is None:
                    raise BundleError(f"manifest.json: step {st.get('id')} (lora_switch) must follow its lora_switch_gate step")
                self.dev.queue.write_buffer(go, 16, np.array(dispatch, np.uint32).tobytes())  # the grid to launch
                dispatch = go
            go = None
            if st["family"] == "lora_switch_gate":
                go = self.dev.create_buffer(size=32, usage=usage.STORAGE | usage.INDIRECT | usage.COPY_DST | usage.COPY_SRC)
                entries[2]["resource"] = {"buffer": go, "offset": 0, "size": 32}
            bind = self.dev.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=entries)
            calls.append((pipe, bind, dispatch, st))
        return calls

    def _range(self, tid: int) -> dict:
        t = self.tensors[tid]
        limit = self.dev.limits["max-storage-buffer-binding-size"]
        if _round4(t["bytes"]) > limit:
            from .errors import BackendError
            raise BackendError(f"tensor {tid} ({t['name']}) needs a {_round4(t['bytes'])}-byte binding, over this "
                               f"adapter's max-storage-buffer-binding-size {limit}")
        buf = self.weights if t["storage"] == "weight" else self.arena
        return {"buffer": buf, "offset": t["offset"], "size": _round4(t["bytes"])}

    def _encode(self, steps=None):
        enc = self.dev.create_command_encoder()
        p = enc.begin_compute_pass()
        for pipe, bind, dispatch, _ in (self.calls if steps is None else steps):
            p.set_pipeline(pipe)
            p.set_bind_group(0, bind)
            if isinstance(dispatch, list):
                p.dispatch_workgroups(*dispatch)
            else:
                p.dispatch_workgroups_indirect(dispatch, 0)
        p.end()
        return enc.finish()

    def merge_grids(self, plan: str = "decode") -> list[list[int]]:
        """The indirect arguments each LoRA-Switch merge of `plan` launched with in the last run: [0, 0, 0]
        when its gate found the set unchanged (no workgroup ran), else the merge's grid."""
        return [np.frombuffer(self.dev.queue.read_buffer(d, 0, 12), np.uint32).tolist()
                for _, _, d, _ in self.plans[plan][2] if not isinstance(d, list)]

    def run(self, feeds: dict[str, np.ndarray], plan: str = "main") -> dict[str, np.ndarray]:
        inputs, outputs, calls = self.plans[plan]
        feeds, passed = take_feeds(self.manifest.get("passthrough", []) if plan == "main" else [], feeds)
        feeds, table = encode_feeds(inputs, feeds, self.manifest.get("strings", []))
        checked = check_feeds(inputs, feeds)
        for spec in inputs:
            x = checked[spec["name"]]
            raw = to_bytes(x, spec["dtype"])
            self.dev.queue.write_buffer(self.arena, self.tensors[spec["tensor"]]["offset"], raw + bytes(_round4(len(raw)) - len(raw)))
        self.dev.queue.submit([self._encode(calls)])
        return {**decode_outputs(outputs, self._read_outputs(outputs), table, self.manifest.get("strings", [])), **passed}

    def _read_outputs(self, outputs=None) -> dict[str, np.ndarray]:
        out = {}
        for o in outputs or self.manifest["outputs"]:
            t = self.tensors[o["tensor"]]
            buf = self.weights if t["storage"] == "weight" else self.arena
            raw = self.dev.queue.read_buffer(buf, t["offset"], _round4(t["bytes"]))
            out[o["name"]] = from_bytes(raw, o["dtype"], tuple(o["shape"]))
        return out

    def time_runs(self, feeds, runs: int = 10) -> list[float]:
        """Wall ms per run, each = submit of the whole plan + read-back of the outputs."""
        self.run(feeds)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.dev.queue.submit([self._encode()])
            self._read_outputs()
            times.append((time.perf_counter() - t0) * 1e3)
        return times
