"""nnjit tuned on the device vs onnxruntime-web (WASM) vs native onnxruntime, at 1 and N threads.

For each model and thread count, rounds interleave the three runtimes in one headless Chromium
session (and native onnxruntime in this process), so machine noise hits them alike. nnjit tunes in
the page first (budget --budget seconds; the first round tunes, later rounds load the winners from
the IndexedDB cache, as a second page load would); its default kernels (tuning off) are measured
too, at 1 thread. nnjit runs in its Worker (the default) and, with the same tuned kernels, on the
page's main thread ({worker: false}) — where onnxruntime-web runs here (no proxy), so that column is
the like-for-like comparison, and the gap between the two is the cost of the Worker hop — and in the
Worker writing into reused output arrays (run's options.outputs: no fresh pages per run). Cells:
median of all warm runs (10th–90th percentile).

    python -m nnjit.bench.jit_bench [--models a,b] [--threads 1,2] [--runs 20] [--rounds 3]
        [--budget 30] [--exhaustive minilm-l6] [--write docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .compare import WARMUP, _cpu_name, bind_shapes, max_errors, native_ort, native_outputs, stats

# Untimed runs before the timed ones, by time, in both browser runtimes' pages: a fresh page keeps
# speeding up for about a second here (browser start-up work on the other core), which a fixed
# count of warm-up runs does not cover for millisecond models.
WARM_MS = 1500

DEFAULT_MODELS = ["matmul-512", "matmul-128x768", "mlp", "encoder-layer", "mobilenetv2", "minilm-l6"]


def _flops(manifest: dict) -> float | None:
    """2·M·N·K of a single-gemm model (the matmul microbenchmarks), else None."""
    gemms = [s for s in manifest["steps"] if s["family"] == "gemm"]
    if len(gemms) != 1 or len(manifest["steps"]) != 1:
        return None
    k = next(k for k in manifest["kernels"] if k["id"] == gemms[0]["kernel"])["config"]
    return 2.0 * k["M"] * k["N"] * k["K"] * float(np.prod(k.get("batch") or [1]))


def _tuning(res: dict) -> dict:
    t = res["tuning"] or {}
    r = t.get("result") or {}
    return {"status": t.get("status"), "source": t.get("source"), "seconds": res["tune_ms"] / 1000,
            "measured": r.get("measured", 0), "candidates": t.get("candidates", 0), "complete": r.get("complete"),
            "default_ms": r.get("defaultMs"), "best_ms": r.get("bestMs")}


def measure(models, threads, runs, rounds, budget_s, exhaustive, log=print) -> dict:
    from nnjit.bench import zoo
    from nnjit.bench.inputs import random_inputs
    from nnjit.browsers.page_runner import BrowserHarness
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.pipeline import compile_model

    rows, search = [], []
    with tempfile.TemporaryDirectory(prefix="nnjit-jit-") as tmp, BrowserHarness(timeout_s=900) as h:
        for name in models:
            spec = zoo.spec(name)
            onnx_path = zoo.cached(name)
            bundle = Path(tmp) / name
            compile_model(onnx_path, bundle, bind_shapes(spec), backends=("wasm",))
            manifest = read_manifest(bundle)
            feeds = random_inputs(manifest["inputs"], seed=0)
            refs = native_outputs(onnx_path, feeds)
            flops = _flops(manifest)
            for t in threads:
                nn, kern, main, reuse, dflt, ortw, nat, tuning, errs = [], [], [], [], [], [], [], None, None
                # The tuned session: tunes on the first page load, loads the winners from IndexedDB after.
                tuned = dict(threads=t, tune_budget_ms=int(budget_s * 1000), shared_context=True, warmup_ms=WARM_MS)
                for r in range(rounds):
                    res = h.run_bundle(bundle, feeds, runs, **tuned)
                    if tuning is None:
                        tuning = _tuning(res)
                        errs = max_errors(res["outputs"], refs)
                        got_threads = res["info"]["threads"]
                    nn += res["latency_ms"]["runs"]
                    kern += res["compute_ms"]
                    on_main = h.run_bundle(bundle, feeds, runs, worker=False, **tuned)
                    main += on_main["latency_ms"]["runs"]
                    main_threads = on_main["info"]["threads"]
                    reuse += h.run_bundle(bundle, feeds, runs, reuse_outputs=True, **tuned)["latency_ms"]["runs"]
                    if t == 1:
                        dflt += h.run_bundle(bundle, feeds, runs, threads=1, tune_budget_ms=0, warmup_ms=WARM_MS)["latency_ms"]["runs"]
                    ortw += h.run_ort(onnx_path, feeds, runs, threads=t, warmup_ms=WARM_MS)["latency_ms"]["runs"]
                    nat += native_ort(onnx_path, feeds, runs, threads=t)
                    log(f"  {name} t{t} round {r + 1}/{rounds}: nnjit {np.median(nn):.2f} ms (main thread {np.median(main):.2f})"
                        f"{f' (default {np.median(dflt):.2f})' if dflt else ''}, ort-web {np.median(ortw):.2f} ms, "
                        f"native {np.median(nat):.2f} ms")
                rows.append({"model": name, "threads": t, "threads_run": got_threads, "nnjit": stats(nn),
                             "kernels": stats(kern), "main": stats(main), "main_threads": main_threads,
                             "reuse": stats(reuse), "default": stats(dflt) if dflt else None, "ort_web": stats(ortw),
                             "native": stats(nat), "tuning": tuning, "max_rel_err": errs[1], "flops": flops})
            if name in exhaustive:
                search.append(_exhaustive(h, bundle, feeds, name, budget_s, runs, rounds, log))
        browser = h.browser.version
    return {"rows": rows, "search": search, "browser": browser, "rounds": rounds}


def _exhaustive(h, bundle, feeds, name, budget_s, runs, rounds, log) -> dict:
    """The same space searched to the end (no budget) from an empty cache, against the budgeted search.
    Each search tunes in a browser context of its own (an empty IndexedDB); then page loads of the two,
    each loading its own winners from its cache, take turns for `rounds` rounds, so that machine noise
    hits both alike (one page load of each differed by 5% on this machine where both searches had measured the
    whole space)."""
    out, contexts = {"model": name}, {}
    h._context.close()
    try:
        for label, budget in (("budget", budget_s), ("exhaustive", 3600.0)):
            h._context = None  # an empty IndexedDB: tune from scratch
            res = h.run_bundle(bundle, feeds, runs, threads=1, tune_budget_ms=int(budget * 1000), shared_context=True,
                               warmup_ms=WARM_MS)
            contexts[label] = h._context
            out[label] = {**_tuning(res), "winners": (res["tuning"].get("result") or {}).get("winners") or [],
                          "runs": list(res["latency_ms"]["runs"])}
            log(f"  {name} {label} search: {out[label]['seconds']:.1f} s, {out[label]['measured']}/"
                f"{out[label]['candidates']} candidates")
        for r in range(rounds):
            for label, context in contexts.items():
                h._context = context
                res = h.run_bundle(bundle, feeds, runs, threads=1, tune_budget_ms=int(budget_s * 1000),
                                   shared_context=True, warmup_ms=WARM_MS)
                out[label]["runs"] += res["latency_ms"]["runs"]
    finally:
        for context in contexts.values():
            context.close()
        h._context = None
    for label in contexts:
        out[label]["latency"] = stats(out[label].pop("runs"))
    pairs = list(zip(out["budget"]["winners"], out["exhaustive"]["winners"]))
    out["same_winners"] = sum(a["candidate"] == b["candidate"] for a, b in pairs)
    out["groups"] = len(pairs)
    log(f"  {name} search: budgeted {out['budget']['latency']['median']:.2f} ms, exhaustive "
        f"{out['exhaustive']['latency']['median']:.2f} ms; same winner in {out['same_winners']}/{out['groups']} groups")
    return out


def _geomean(xs):
    return float(np.exp(np.mean(np.log(xs)))) if xs else float("nan")


def markdown(result: dict, command: str) -> str:
    rows = result["rows"]
    cell = lambda s: f"{s['median']:.2f} ({s['p10']:.2f}–{s['p90']:.2f})"  # noqa: E731
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {datetime.date.today().isoformat()}, machine: {_cpu_name()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, headless Chromium {result['browser']}. "
        "Not edited by hand.",
        "",
        f"Warm latency in ms: median of all timed runs after {WARM_MS / 1000:.1f} s of untimed runs per page load "
        f"(native: {WARMUP} runs), over all rounds (10th–90th percentile), "
        "timed from the page (Worker: nnjit in its Worker, the default — postMessage, input and output copies "
        "included; 'kernels' is the time inside the Worker; main: the same tuned kernels on the page's main thread, "
        "as onnxruntime-web runs here, with its helper threads joined by spinning; reused: in the Worker, writing "
        "into the same output arrays every run, run's options.outputs). nnjit tuned on this device in "
        "the page first (first round; later rounds load the winners from IndexedDB); 'default' is the same bundle "
        "with tuning off, in the Worker. onnxruntime-web: WASM EP, SIMD, same thread count, main thread; native: "
        "onnxruntime CPU EP. ORT-web / nnjit > 1 means nnjit is faster.",
        "",
        "| model | threads | nnjit Worker | kernels | nnjit main | nnjit reused | nnjit default | ORT-web (wasm) | native ORT | "
        "ORT-web / nnjit (Worker, main) | nnjit / native (Worker, main) | tuning | GFLOP/s (Worker, main) | max rel err |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["tuning"]
        tune = (f"{t['seconds']:.1f} s, {t['measured']}/{t['candidates']}{'' if t['complete'] else ' (partial)'}"
                if t["source"] == "tuned" else (t["status"] or "-"))
        nn, mn = r["nnjit"]["median"], r["main"]["median"]
        gf = f"{r['flops'] / nn / 1e6:.1f}, {r['flops'] / mn / 1e6:.1f}" if r["flops"] else "-"
        threads = f"{r['threads_run']}" + (f" (main {r['main_threads']})" if r["main_threads"] != r["threads_run"] else "")
        lines.append(
            f"| {r['model']} | {threads} | {cell(r['nnjit'])} | {r['kernels']['median']:.2f} | {cell(r['main'])} | "
            f"{cell(r['reuse'])} | "
            f"{cell(r['default']) if r['default'] else '-'} | {cell(r['ort_web'])} | {cell(r['native'])} | "
            f"{r['ort_web']['median'] / nn:.2f}×, {r['ort_web']['median'] / mn:.2f}× | "
            f"{nn / r['native']['median']:.2f}×, {mn / r['native']['median']:.2f}× | "
            f"{tune} | {gf} | {r['max_rel_err']:.1e} |")
    lines += ["", "Summary:"]
    for t in sorted({r["threads"] for r in rows}):
        sel = [r for r in rows if r["threads"] == t]
        for where, key in (("Worker", "nnjit"), ("main thread", "main")):
            speed = [r["ort_web"]["median"] / r[key]["median"] for r in sel]
            lines.append(f"- {t} thread{'s' if t > 1 else ''}, nnjit in the {where}: ORT-web / nnjit geomean "
                         f"{_geomean(speed):.2f}× (lowest {min(speed):.2f}×); nnjit / native geomean "
                         f"{_geomean([r[key]['median'] / r['native']['median'] for r in sel]):.2f}×")
    by = {(r["model"], r["threads"]): r for r in rows}
    for m in ("matmul-512", "matmul-128x768"):
        one, two = by.get((m, 1)), by.get((m, 2))
        if one and two:
            gf = lambda r, key: one["flops"] / r[key]["median"] / 1e6  # noqa: E731
            lines.append(f"- {m}, 1 thread: {gf(one, 'nnjit'):.1f} GFLOP/s in the Worker (kernels alone "
                         f"{gf(one, 'kernels'):.1f}), {gf(one, 'main'):.1f} on the main thread; 2-thread speedup "
                         f"{one['nnjit']['median'] / two['nnjit']['median']:.2f}× in the Worker (kernels "
                         f"{one['kernels']['median'] / two['kernels']['median']:.2f}×), "
                         f"{one['main']['median'] / two['main']['median']:.2f}× on the main thread, "
                         f"{one['reuse']['median'] / two['reuse']['median']:.2f}× in the Worker with reused outputs "
                         f"({gf(one, 'reuse'):.1f} GFLOP/s at 1 thread)")
    for s in result["search"]:
        b, e = s["budget"], s["exhaustive"]
        lines.append(f"- {s['model']} search, 1 thread, from an empty cache: budgeted {b['seconds']:.1f} s "
                     f"({b['measured']}/{b['candidates']} candidates{'' if b['complete'] else ', stopped by the budget'}) "
                     f"→ model {b['latency']['median']:.2f} ms; exhaustive {e['seconds']:.1f} s ({e['measured']}/{e['candidates']}) "
                     f"→ {e['latency']['median']:.2f} ms (medians of {1 + result['rounds']} page loads each, "
                     f"taking turns); budgeted reaches {100 * e['latency']['median'] / b['latency']['median']:.0f}% "
                     f"of the exhaustive search's speed; the same winner in {s['same_winners']} of {s['groups']} step groups")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budget", type=float, default=30.0, help="tuning budget per model and thread count, seconds")
    p.add_argument("--exhaustive", default="minilm-l6", help="models whose budgeted search is compared with an exhaustive one")
    p.add_argument("--write", help="write the markdown to this file")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    result = measure([m for m in a.models.split(",") if m], [int(t) for t in a.threads.split(",")], a.runs, a.rounds,
                     a.budget, [m for m in a.exhaustive.split(",") if m])
    cmd = "python -m nnjit.bench.jit_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(result, cmd.strip())
    print(text)
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if a.write:
        Path(a.write).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
