"""The native WebGPU baseline of `nnjit bench` (runtime `native-wgpu`): the model's nnjit bundle, its
WebGPU plan (the same WGSL kernels and buffer layout the browser backend uses, compiler/gpu_runtime.py),
run outside any browser through wgpu-py on this machine's adapter (lavapipe, Vulkan on the CPU, where
there is no GPU).

    python -m nnjit.bench.native_wgpu SPEC.json    (SPEC: {"bundle", "inputs", "refs", "runs"})

prints one JSON line: {"adapter", "device_class", "wgpu", "cold_total_ms", "times", "outputs_err"} when it
ran, or {"na": reason} when it cannot run here (no adapter, no WebGPU kernel for a step). The bench runs
it as a child process, so a Vulkan driver that crashes or hangs costs one row, not the run.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from . import qoe_metrics as M

WARMUP = 10  # as the native onnxruntime rows (bench/compare.py)


def measure(bundle: str, feeds: dict, refs: dict, runs: int) -> dict:
    """Warm latency of whole runs (inputs written, one submit, outputs read back: what a browser
    session.run() includes), after WARMUP runs; cold = adapter and device, pipelines, first run."""
    from nnjit.compiler.errors import NnjitError

    t0 = time.perf_counter()
    try:
        import wgpu

        from nnjit.compiler.wgpu_native import adapter_name, device
        device()
    except Exception as e:  # no wgpu-py, no Vulkan/GL driver, or no adapter: all mean no baseline here
        return {"na": f"no WebGPU adapter: {type(e).__name__}: {' '.join(str(e).split())[:300]}"}
    from nnjit.compiler.gpu_runtime import GPUSession

    try:
        sess = GPUSession(bundle)
    except NnjitError as e:  # the bundle has no WebGPU kernel for a step, or a tensor exceeds a limit
        return {"na": f"native-wgpu cannot run this bundle: {' '.join(str(e).split())[:300]}", "adapter": adapter_name()}
    out = sess.run(feeds)
    cold_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(WARMUP):
        sess.run(feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = sess.run(feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return {"adapter": adapter_name(), "device_class": sess.device_class, "wgpu": wgpu.__version__,
            "cold_total_ms": cold_ms, "times": times,
            "outputs_err": {k: None if isinstance(v, M.NA) else v for k, v in M.accuracy(out, refs).items()}}


def main(argv=None) -> int:
    spec = json.loads(open((argv or sys.argv[1:])[0]).read())
    res = measure(spec["bundle"], dict(np.load(spec["inputs"])), dict(np.load(spec["refs"])), int(spec["runs"]))
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
