"""nnjit vs onnxruntime-web (WASM EP, 1 thread) vs native onnxruntime (1 thread) on the zoo models.

Both browser runtimes run in the same headless Chromium session, interleaved round by round, and
native onnxruntime runs in the same rounds, so machine noise hits all three alike. Each cell is the
median of all warm runs; the spread is the 10th–90th percentile.

    python -m nnjit.bench.compare [--models a,b] [--runs 20] [--rounds 3] [--write docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_MODELS = ["matmul-512", "mlp", "encoder-layer", "mobilenetv2"]
DYNAMIC_DEFAULTS = (1, 128)  # batch, then every other dynamic dim (sequence length)
# Runs dropped before timing, for both browser runtimes alike: V8 compiles wasm with Liftoff first and
# tiers hot functions up in the background, and in this 2-core machine the first ~10 runs of a
# session drift down (measured: matmul-512 kernel 10 ms → 6.5 ms over runs 2–20).
WARMUP = 10


def bind_shapes(spec) -> dict[str, list[int]]:
    out = {}
    for i in spec.inputs:
        if any(isinstance(d, str) for d in i["shape"]):
            out[i["name"]] = [d if isinstance(d, int) else DYNAMIC_DEFAULTS[min(k, 1)] for k, d in enumerate(i["shape"])]
    return out


def native_ort(onnx_path, feeds, runs: int, threads: int = 1) -> list[float]:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    for _ in range(WARMUP):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def native_outputs(onnx_path, feeds) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def max_errors(outs: dict, refs: dict) -> tuple[float, float]:
    abs_err, rel_err = 0.0, 0.0
    for k, ref in refs.items():
        ref = np.asarray(ref, np.float64)
        got = np.asarray(outs[k], np.float64).reshape(ref.shape)
        a = float(np.abs(got - ref).max()) if ref.size else 0.0
        abs_err = max(abs_err, a)
        rel_err = max(rel_err, a / max(float(np.abs(ref).max()), 1e-30) if ref.size else 0.0)
    return abs_err, rel_err


def stats(times: list[float]) -> dict:
    t = np.asarray(times)
    return {"median": float(np.median(t)), "p10": float(np.percentile(t, 10)), "p90": float(np.percentile(t, 90))}


def measure(models: list[str], runs: int, rounds: int, log=print) -> list[dict]:
    from nnjit.bench import zoo
    from nnjit.bench.inputs import random_inputs
    from nnjit.browsers.page_runner import BrowserHarness
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.pipeline import compile_model

    rows = []
    with tempfile.TemporaryDirectory(prefix="nnjit-bench-") as tmp, BrowserHarness() as h:
        for name in models:
            spec = zoo.spec(name)
            onnx_path = zoo.cached(name)
            bundle = Path(tmp) / name
            t0 = time.perf_counter()
            summary = compile_model(onnx_path, bundle, bind_shapes(spec))
            compile_s = time.perf_counter() - t0
            feeds = random_inputs(read_manifest(bundle)["inputs"], seed=0)
            refs = native_outputs(onnx_path, feeds)
            nn, kern, ortw, nat, first = [], [], [], [], []
            errs = None
            for r in range(rounds):
                res = h.run_bundle(bundle, feeds, runs + WARMUP)
                first.append(res["create_ms"] + res["latency_ms"]["first"])  # Session.create → first output
                # Page-side latency (postMessage round trip and output copy included), as a page sees it.
                nn += res["latency_ms"]["runs"][WARMUP:]
                kern += res["compute_ms"][WARMUP:]
                if errs is None:
                    errs = max_errors(res["outputs"], refs)
                    relaxed = res["relaxed_simd"]
                ow = h.run_ort(onnx_path, feeds, runs + WARMUP)
                ortw += ow["latency_ms"]["runs"][WARMUP:]
                nat += native_ort(onnx_path, feeds, runs)
                log(f"  {name} round {r + 1}/{rounds}: nnjit {np.median(nn):.2f} ms, ort-web {np.median(ortw):.2f} ms, "
                    f"native {np.median(nat):.2f} ms")
            rows.append({"model": name, "nnjit": stats(nn), "ort_web": stats(ortw), "native": stats(nat),
                         "nnjit_first_ms": float(np.median(first)),
                         "nnjit_kernels": stats(kern), "max_abs_err": errs[0], "max_rel_err": errs[1],
                         "relaxed_simd": relaxed, "compile_s": compile_s, "arena_bytes": summary["arena_bytes"],
                         "intermediate_bytes": summary["intermediate_bytes"], "browser": h.browser.version})
    return rows


def markdown(rows: list[dict], command: str) -> str:
    cpu = _cpu_name()
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {datetime.date.today().isoformat()}, machine: {cpu}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, headless Chromium "
        f"{rows[0]['browser'] if rows else '?'}. Not edited by hand.",
        "",
        f"Warm latency in ms: median of all runs after {WARMUP} warm-up runs per round (10th–90th percentile). "
        "nnjit (in its Worker, timed from the page; 'of which kernels' is the time inside the Worker: inputs in, kernels, outputs out) and onnxruntime-web (WASM EP, SIMD, 1 thread) run in the same browser session, interleaved with native onnxruntime (CPU EP, "
        "1 thread), round by round. Ratios > 1 mean nnjit is faster.",
        "",
        "| model | nnjit (wasm) | of which kernels | ORT-web (wasm) | native ORT | ORT-web / nnjit | nnjit / native | max rel err | arena / intermediates |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        def cell(s):
            return f"{s['median']:.2f} ({s['p10']:.2f}–{s['p90']:.2f})"
        lines.append(
            f"| {r['model']} | {cell(r['nnjit'])} | {r['nnjit_kernels']['median']:.2f} | {cell(r['ort_web'])} | {cell(r['native'])} | "
            f"{r['ort_web']['median'] / r['nnjit']['median']:.2f}× | {r['nnjit']['median'] / r['native']['median']:.2f}× | "
            f"{r['max_rel_err']:.1e} | {r['arena_bytes'] / 2**20:.2f} / {r['intermediate_bytes'] / 2**20:.2f} MiB |")
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--write", help="write the markdown table to this file")
    a = p.parse_args(argv)
    rows = measure([m for m in a.models.split(",") if m], a.runs, a.rounds)
    cmd = "python -m nnjit.bench.compare " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    text = markdown(rows, cmd.strip())
    print(text)
    if a.write:
        Path(a.write).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
