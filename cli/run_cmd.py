"""`nnjit run BUNDLE`: run a compiled bundle in headless Chromium or Firefox, optionally against onnxruntime CPU.

--backend webgpu launches the browser with WebGPU enabled (Chromium: SwiftShader, Firefox: lavapipe
here); the report's `backend` is what actually ran (an 'auto' session without an adapter, or a
WebGPU session whose device was lost, runs on wasm; `fallback_reason` says why).

Exit codes: 0 ok; 2 bad input (bundle, inputs, model, options, or a named runtime error raised in
the page), printed as one `ErrorName: message` line on stderr; 1 any other failure.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from nnjit.compiler.errors import InputError, ModelLoadError, NnjitError


class UsageError(NnjitError):
    """An option value the command cannot honour."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help="run a bundle in a headless browser",
        description="Run a compiled bundle in a headless browser and report latency (and accuracy with --compare).")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle directory written by `nnjit compile`")
    p.add_argument("--backend", choices=["wasm", "webgpu", "auto"], default="wasm",
                   help="auto: webgpu where the browser has an adapter, else wasm")
    p.add_argument("--browser", choices=["chromium", "firefox"], default="chromium")
    p.add_argument("--threads", type=int, default=1,
                   help="wasm kernel threads (gemm, conv, attention and softmax split across a pool of Workers; the page is cross-origin isolated)")
    p.add_argument("--tune", type=float, default=0, metavar="SECONDS",
                   help="tune kernels on the device for up to SECONDS first (a progress bar on stderr); 0: off")
    p.add_argument("--inputs", metavar="X.npz", help="inputs by name (default: seeded random inputs)")
    p.add_argument("--compare", metavar="MODEL.onnx", help="also run onnxruntime CPU on the same inputs and report errors")
    p.add_argument("--runs", type=int, default=10, help="timed runs; the first is reported apart from the rest")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--profile", action="store_true", help="also time every step (median of 20 runs) and list them")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)
    return p


def _reference_session(model: Path, bundle_inputs: list[dict], bundle_outputs: list[dict]):
    """An onnxruntime CPU session (1 thread) checked to have the bundle's inputs and outputs."""
    import onnxruntime as ort

    if not model.is_file():
        raise ModelLoadError(f"{model}: no such file")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own classes for unreadable or invalid models
        raise ModelLoadError(f"{model}: onnxruntime cannot load it ({_one_line(e)})") from None
    have_in = {i.name for i in sess.get_inputs()}
    have_out = {o.name for o in sess.get_outputs()}
    want_in = {i["name"] for i in bundle_inputs}
    want_out = {o["name"] for o in bundle_outputs}
    if have_in != want_in or not want_out <= have_out:
        raise InputError(f"{model}: inputs {sorted(have_in)} / outputs {sorted(have_out)} do not match the bundle's "
                         f"inputs {sorted(want_in)} / outputs {sorted(want_out)}")
    return sess


def compare_outputs(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> tuple[float, float]:
    """(max_abs_err, max_rel_err) over all outputs; rel = max|out − ref| / max|ref| per output.

    A NaN where the reference has none (or the reverse) counts as an infinite error.
    """
    max_abs = max_rel = 0.0
    for name, out in outputs.items():
        ref = reference[name]
        if out.shape != ref.shape:
            raise RuntimeError(f"output {name!r}: the bundle gave shape {list(out.shape)}, onnxruntime {list(ref.shape)}")
        if out.size == 0:
            continue
        a, b = out.astype(np.float64), ref.astype(np.float64)
        diff = np.abs(a - b)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
        err = float(diff.max())
        scale = float(np.nanmax(np.abs(b))) if not np.isnan(b).all() else 0.0
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / scale if scale > 0 else err)
    return max_abs, max_rel


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _execute(args) -> dict:
    from nnjit.bench.inputs import check_inputs, load_inputs, random_inputs
    from nnjit.browsers.page_runner import run_bundle_in_browser, verify_bundle

    if not 1 <= args.threads <= 64:
        raise UsageError(f"--threads {args.threads}: need 1 to 64")
    if not 0 <= args.tune <= 3600:
        raise UsageError(f"--tune {args.tune}: need 0 to 3600 seconds")
    if args.runs < 1:
        raise UsageError(f"--runs {args.runs}: need at least 1 run")
    manifest = verify_bundle(args.bundle)  # before the browser starts: a bad bundle fails in milliseconds
    if args.inputs:
        inputs = check_inputs(manifest["inputs"], load_inputs(args.inputs))
    else:
        inputs = random_inputs(manifest["inputs"], args.seed)
    reference = None
    if args.compare:
        reference = _reference_session(Path(args.compare), manifest["inputs"], manifest["outputs"])

    with _progress_bar(args.tune > 0 and not args.json) as on_progress:
        result = run_bundle_in_browser(args.bundle, inputs, args.runs, browser_name=args.browser, backend=args.backend,
                                       profile_runs=20 if args.profile else 0, threads=args.threads,
                                       tune_budget_ms=int(args.tune * 1000), on_progress=on_progress)
    lat = result["latency_ms"]
    report = {
        "backend": result["backend"],
        "fallback_reason": result["fallback_reason"],
        "browser": args.browser,
        "threads": result["info"].get("threads", 1),
        "runs": args.runs,
        "relaxed_simd": result["relaxed_simd"],
        "latency_ms": {"first": lat["first"], "median": lat["median"], "p90": lat["p90"]},
        "outputs": {name: list(arr.shape) for name, arr in result["outputs"].items()},
    }
    if reference is not None:
        names = list(result["outputs"])
        ref = dict(zip(names, reference.run(names, inputs), strict=True))
        report["max_abs_err"], report["max_rel_err"] = compare_outputs(result["outputs"], ref)
    if args.profile:
        report["profile"] = result["profile"]
    if args.tune > 0:
        report["tuning"] = _tuning_report(result["tuning"], result["tune_ms"])
    report["_threads_reason"] = result["info"].get("threadsReason")
    report["_browser_version"] = result["browser_version"]
    report["_gpu"] = result["info"].get("gpu")
    report["_model"] = (manifest.get("model") or {}).get("name")
    return report


@contextlib.contextmanager
def _progress_bar(show: bool):
    """A rich progress bar over the tuner's measurements; yields the page runner's on_progress callback."""
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("tuning"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(p: dict) -> None:
            best = p.get("bestSoFar") or {}
            note = f"kernels {best.get('ms', 0):.3f} ms (default {best.get('defaultMs', 0):.3f} ms)" if best.get("ms") else ""
            bar.update(task, completed=p["done"], total=max(p["total"], 1), description=note)

        yield update


def _tuning_report(t: dict, tune_ms: float) -> dict:
    r = t.get("result") or {}
    return {"status": t["status"], "source": t.get("source"), "cache_dropped": t.get("cacheDropped"),
            "groups": t.get("groups"), "candidates": t.get("candidates"), "measured": r.get("measured", 0),
            "complete": r.get("complete"), "seconds": round(tune_ms / 1000, 3),
            "default_kernel_ms": r.get("defaultMs"), "tuned_kernel_ms": r.get("bestMs")}


def _summary(r: dict, bundle: str) -> str:
    lat = r["latency_ms"]
    if r["backend"] == "webgpu":
        gpu = r["_gpu"] or {}
        adapter = " ".join(filter(None, (gpu.get("vendor"), gpu.get("architecture") or gpu.get("description")))) or "unnamed adapter"
        how = f"webgpu backend in a Worker, {adapter}{' (fallback adapter)' if gpu.get('fallbackAdapter') else ''}"
    else:
        how = (f"wasm backend in a Worker, {r['threads']} thread{'s' if r['threads'] > 1 else ''}, "
               f"relaxed SIMD {'on' if r['relaxed_simd'] else 'off'}")
    lines = [
        f"bundle   {bundle}" + (f" (model {r['_model']})" if r["_model"] else ""),
        f"browser  {r['browser']} {r['_browser_version']}, {how}",
        f"latency  first {lat['first']:.3f} ms, then median {lat['median']:.3f} ms, p90 {lat['p90']:.3f} ms ({r['runs']} runs)",
    ]
    if r["fallback_reason"]:
        lines.append(f"note     runs on wasm: {r['fallback_reason']}")
    if r.get("_threads_reason"):
        lines.append(f"note     1 thread: {r['_threads_reason']}")
    if "tuning" in r:
        t = r["tuning"]
        if t["source"] == "cache":
            lines.append(f"tuning   cached winners for {t['groups']} step groups: nothing to tune")
        elif t["measured"]:
            lines.append(f"tuning   {t['measured']}/{t['candidates']} candidates in {t['seconds']:.1f} s"
                         f"{'' if t['complete'] else ' (budget spent before the end)'}: kernels "
                         f"{t['default_kernel_ms']:.3f} ms by default, {t['tuned_kernel_ms']:.3f} ms tuned")
        else:
            lines.append(f"tuning   {t['status']}")
    lines += [f"output   {name} {shape}" for name, shape in r["outputs"].items()]
    if "max_abs_err" in r:
        lines.append(f"compare  max_abs_err {r['max_abs_err']:.3g}, max_rel_err {r['max_rel_err']:.3g} vs onnxruntime CPU")
    if r.get("profile"):
        total = sum(p["ms"] for p in r["profile"]) or 1.0
        lines.append(f"profile  {len(r['profile'])} steps, {total:.3f} ms in kernels (median per step of 20 runs):")
        lines += [f"  {p['step']:4d} {p['ms']:8.3f} ms {100 * p['ms'] / total:5.1f}%  {p['family']:<12} {p['op']:<12} {p['node']}"
                  for p in r["profile"]]
    return "\n".join(lines)


def main(args) -> int:
    from nnjit.browsers.page_runner import PageError

    try:
        report = _execute(args)
    except NnjitError as e:
        print(f"{type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 2
    except PageError as e:
        if e.is_runtime_error:
            print(f"{e.name}: {_one_line(e.message)}", file=sys.stderr)
            return 2
        print(f"error in the page: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if not k.startswith("_")}))
    else:
        print(_summary(report, args.bundle))
    return 0
