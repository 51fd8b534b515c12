"""WebGPU kernels and whole bundles on a real GPU through wgpu-py (Vulkan), for a lent GPU machine.

    python -m nnjit.bench.gpu_device DIR [--out results.json]

DIR holds, per model, a bundle compiled with `--backend webgpu` plus `inputs.npz` and `ref.npz`
(onnxruntime outputs computed where the bundle was built), prepared by
`python -m nnjit.bench.gpu_device --prepare DIR`. Reports the adapter, per-model max relative error
and median latency (submit + read-back). Kernel-level GFLOP/s come from bench/wgsl_gemm.py."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

MODELS = ["matmul-512", "encoder-layer", "mobilenetv2", "digits-cnn"]


def prepare(root: Path) -> None:
    from nnjit.bench import zoo
    from nnjit.bench.compare import bind_shapes, native_outputs
    from nnjit.bench.inputs import random_inputs
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.pipeline import compile_model
    for name in MODELS:
        out = root / name
        compile_model(zoo.cached(name), out / "bundle", bind_shapes(zoo.spec(name)), backends=("webgpu",))
        feeds = random_inputs(read_manifest(out / "bundle")["inputs"], seed=0)
        np.savez(out / "inputs.npz", **feeds)
        np.savez(out / "ref.npz", **native_outputs(zoo.cached(name), feeds))
        print("prepared", name)


def run(root: Path, runs: int) -> dict:
    from nnjit.compiler.gpu_runtime import GPUSession
    from nnjit.compiler.wgpu_native import adapter_name
    res = {"adapter": adapter_name(), "models": {}}
    for name in MODELS:
        d = root / name
        if not (d / "bundle").is_dir():
            continue
        feeds = dict(np.load(d / "inputs.npz"))
        ref = dict(np.load(d / "ref.npz"))
        t0 = time.perf_counter()
        s = GPUSession(d / "bundle")
        create_ms = (time.perf_counter() - t0) * 1e3
        out = s.run(feeds)
        err = max(float(np.abs(out[k].astype(np.float64) - r).max() / max(np.abs(r).max(), 1e-30)) for k, r in ref.items())
        times = s.time_runs(feeds, runs)
        res["models"][name] = {"max_rel_err": err, "create_ms": create_ms, "median_ms": float(np.median(times)),
                               "p10_ms": float(np.percentile(times, 10)), "p90_ms": float(np.percentile(times, 90))}
        print(name, res["models"][name], flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--prepare", action="store_true")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--out")
    a = p.parse_args(argv)
    root = Path(a.dir)
    if a.prepare:
        prepare(root)
        return 0
    res = run(root, a.runs)
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
