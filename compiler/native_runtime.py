"""Run a bundle natively through wasmtime, exactly as the browser runtime does (same memory layout,
same kernels): the browser-free path for end-to-end tests and for debugging a bundle."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bundle import load_bundle
from .errors import InputError
from .ir import NP_DTYPES
from .wasm_native import Memory


class NativeSession:
    def __init__(self, bundle_dir: str | Path, relaxed: bool = True):
        self.manifest, weights, files = load_bundle(Path(bundle_dir))
        m = self.manifest
        self.mem = Memory(m["memory"]["total_bytes"])
        base = m["memory"]["weights_base"]
        self.mem.bytes()[base:base + len(weights)] = np.frombuffer(weights, np.uint8)
        self.fns = {}
        for k in m["kernels"]:
            if k.get("backend", "wasm") != "wasm":
                continue
            rel = k["relaxed"]["file"] if relaxed and k.get("relaxed") else k["file"]
            self.fns[k["id"]] = self.mem.instantiate(files[rel])
        self.tensors = m["tensors"]

    def addr(self, tid: int) -> int:
        t = self.tensors[tid]
        mem = self.manifest["memory"]
        return (mem["weights_base"] if t["storage"] == "weight" else mem["arena_base"]) + t["offset"]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = self.manifest
        names = {i["name"] for i in m["inputs"]}
        for k in feeds:
            if k not in names:
                raise InputError(f"unknown input {k!r}; the model's inputs are {sorted(names)}")
        for spec in m["inputs"]:
            if spec["name"] not in feeds:
                raise InputError(f"missing input {spec['name']!r} ({spec['dtype']} {spec['shape']})")
            x = np.asarray(feeds[spec["name"]])
            if list(x.shape) != spec["shape"]:
                raise InputError(f"input {spec['name']!r}: expected shape {spec['shape']}, got {list(x.shape)}")
            want = np.dtype(NP_DTYPES[spec["dtype"]])
            if x.dtype != want:
                raise InputError(f"input {spec['name']!r}: expected dtype {spec['dtype']}, got {x.dtype}")
            self.mem.view(self.addr(spec["tensor"]), x.shape, want)[...] = x
        for s in m["steps"]:
            kid = s.get("candidates", {}).get("wasm", [s["kernel"]])[0]
            self.mem.call(self.fns[kid], *[self.addr(a) for a in s["args"]])
        return {o["name"]: self.mem.view(self.addr(o["tensor"]), tuple(o["shape"]), NP_DTYPES[o["dtype"]]).copy()
                for o in m["outputs"]}
