"""nnjit WebGPU vs onnxruntime-web's WebGPU EP on the same adapter (headless Chromium with
--enable-unsafe-webgpu: SwiftShader on a machine without a GPU), plus the same bundle on native
WebGPU (wgpu-py: Vulkan, lavapipe without a GPU) and matmul-512 against a naive
one-thread-per-output WGSL kernel.

    python -m nnjit.bench.compare_webgpu [--models a,b] [--runs 5] [--write docs/benchmarks_webgpu.md]
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .compare import _cpu_name, bind_shapes, max_errors, native_outputs, stats

DEFAULT_MODELS = ["matmul-512", "encoder-layer", "mobilenetv2"]

NAIVE_GEMM = """// One invocation per output element, no tiling or staging: the baseline a tuned kernel must beat.
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n = g.x;
  let m = g.y;
  if (m >= {M}u || n >= {N}u) { return; }
  var acc = 0.0;
  for (var k = 0u; k < {K}u; k++) {
    acc += A[m * {K}u + k] * B[(n / {NR}u) * {K}u * {NR}u + k * {NR}u + n % {NR}u];
  }
  C[m * {N}u + n] = acc;
}
"""


def naive_variant(bundle: Path, out: Path) -> Path:
    """A copy of a one-gemm bundle whose WebGPU gemm kernel is the naive kernel above."""
    from nnjit.compiler.bundle import sha256
    shutil.copytree(bundle, out)
    m = json.loads((out / "manifest.json").read_text())
    gemms = [k for k in m["kernels"] if k["backend"] == "webgpu" and k["family"] == "gemm"]
    for k in gemms:  # every candidate (GPU and CPU-adapter schedules) becomes the naive kernel
        c = k["config"]
        if c["batch"] or c["bias"] or c["residual"] or not c["b_packed"]:
            raise ValueError("naive_variant expects a plain packed-B gemm bundle such as matmul-512")
        text = NAIVE_GEMM
        for key in ("M", "N", "K"):
            text = text.replace("{" + key + "}", str(c[key]))
        text = text.replace("{NR}", str(c["nr"])).encode()
        (out / k["file"]).write_bytes(text)
        k.update(sha256=sha256(text), dispatch=[-(-c["N"] // 16), -(-c["M"] // 16), 1], workgroup=[16, 16],
                 schedule={"naive": True})
    (out / "manifest.json").write_text(json.dumps(m, indent=1))
    return out


def measure(models: list[str], runs: int, log=print) -> dict:
    from nnjit.bench import zoo
    from nnjit.bench.inputs import random_inputs
    from nnjit.browsers.page_runner import BrowserHarness
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.gpu_runtime import GPUSession
    from nnjit.compiler.pipeline import compile_model
    from nnjit.compiler.wgpu_native import adapter_name

    rows, gemm = [], {}
    with tempfile.TemporaryDirectory(prefix="nnjit-bench-gpu-") as tmp, BrowserHarness(webgpu=True, timeout_s=900) as h:
        for name in models:
            onnx_path = zoo.cached(name)
            bundle = Path(tmp) / name
            compile_model(onnx_path, bundle, bind_shapes(zoo.spec(name)), backends=("wasm", "webgpu"))
            feeds = random_inputs(read_manifest(bundle)["inputs"], seed=0)
            refs = native_outputs(onnx_path, feeds)
            res = h.run_bundle(bundle, feeds, runs + 1, backend="webgpu")
            if res["backend"] != "webgpu":
                raise RuntimeError(f"{name}: nnjit ran on {res['backend']} ({res['fallback_reason']})")
            ow = h.run_ort(onnx_path, feeds, runs + 1, ep="webgpu")
            native = GPUSession(bundle)
            nat_out = native.run(feeds)
            nat = native.time_runs(feeds, runs)
            row = {"model": name, "nnjit": stats(res["latency_ms"]["runs"][1:]), "ort_web": stats(ow["latency_ms"]["runs"][1:]),
                   "native": stats(nat), "err": max_errors(res["outputs"], refs)[1],
                   "ort_err": max_errors(ow["outputs"], refs)[1], "native_err": max_errors(nat_out, refs)[1],
                   "adapter": res["info"].get("gpu"), "browser": h.browser.version}
            rows.append(row)
            log(f"  {name}: nnjit {row['nnjit']['median']:.1f} ms, ORT-web {row['ort_web']['median']:.1f} ms, "
                f"native {row['native']['median']:.1f} ms")
            if name == "matmul-512":
                naive = naive_variant(bundle, Path(tmp) / "matmul-512-naive")
                nv = h.run_bundle(naive, feeds, runs + 1, backend="webgpu")
                assert max_errors(nv["outputs"], refs)[1] < 1e-4
                flop = 2 * 512**3
                gemm = {"tuned_ms": row["nnjit"]["median"], "naive_ms": float(np.median(nv["latency_ms"]["runs"][1:])),
                        "native_tuned_ms": row["native"]["median"],
                        "native_naive_ms": float(np.median(GPUSession(naive).time_runs(feeds, runs)))}
                gemm.update({k.replace("_ms", "_gflops"): flop / v / 1e6 for k, v in list(gemm.items())})
    return {"rows": rows, "gemm": gemm, "native_adapter": adapter_name()}


def markdown(r: dict, command: str) -> str:
    rows = r["rows"]
    gpu = rows[0]["adapter"] if rows else None
    lines = ["# WebGPU benchmarks", "",
             f"Generated by `{command}` on {datetime.date.today().isoformat()}, machine: {_cpu_name()}, no GPU; "
             f"headless Chromium {rows[0]['browser'] if rows else '?'} with --enable-unsafe-webgpu (adapter: "
             f"{json.dumps(gpu) if gpu else '?'}); native WebGPU through wgpu-py on {r['native_adapter']}. Not edited by hand.",
             "", "Median ms per run (10th–90th percentile), whole model, outputs read back. nnjit and ORT-web's WebGPU EP "
             "run in the same browser session on the same software adapter. Native runs the same bundle on another "
             "adapter, so compare it only with itself.", "",
             "| model | nnjit WebGPU | ORT-web WebGPU | ORT-web / nnjit | native wgpu (same kernels) | max rel err nnjit / ORT-web |",
             "|---|---|---|---|---|---|"]
    cell = lambda s: f"{s['median']:.1f} ({s['p10']:.1f}–{s['p90']:.1f})"
    ratios = []
    for row in rows:
        ratio = row["ort_web"]["median"] / row["nnjit"]["median"]
        ratios.append(ratio)
        lines.append(f"| {row['model']} | {cell(row['nnjit'])} | {cell(row['ort_web'])} | {ratio:.2f}× | {cell(row['native'])} | "
                     f"{row['err']:.1e} / {row['ort_err']:.1e} |")
    if ratios:
        lines += ["", f"Geometric mean ORT-web / nnjit: {float(np.exp(np.mean(np.log(ratios)))):.2f}×."]
    g = r.get("gemm")
    if g:
        lines += ["", "matmul-512 (whole-model run incl. read-back) — tuned nnjit gemm vs a naive one-thread-per-output kernel:", "",
                  "| adapter | tuned | naive | speed-up |", "|---|---|---|---|",
                  f"| Chromium (SwiftShader) | {g['tuned_ms']:.1f} ms, {g['tuned_gflops']:.2f} GFLOP/s | {g['naive_ms']:.1f} ms, "
                  f"{g['naive_gflops']:.2f} GFLOP/s | {g['naive_ms'] / g['tuned_ms']:.1f}× |",
                  f"| native wgpu ({r['native_adapter']}) | {g['native_tuned_ms']:.1f} ms, {g['native_tuned_gflops']:.2f} GFLOP/s | "
                  f"{g['native_naive_ms']:.1f} ms, {g['native_naive_gflops']:.2f} GFLOP/s | {g['native_naive_ms'] / g['native_tuned_ms']:.1f}× |"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import sys
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--write")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    r = measure([m for m in a.models.split(",") if m], a.runs)
    cmd = ("python -m nnjit.bench.compare_webgpu " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    text = markdown(r, cmd) + f"\n(total {time.perf_counter() - t0:.0f} s)\n"
    print(text)
    if a.write:
        Path(a.write).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
