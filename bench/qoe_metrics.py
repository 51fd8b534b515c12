"""The QoE metrics of docs/metrics.md, computed from what the bench page recorded (rAF timestamps,
input handler times, PerformanceObserver entries, run times) and from psutil samples.

Pure functions, no browser: the definitions are here once and testable on planted data. A metric
that cannot be measured is returned as NA(reason), never as 0 or an estimate.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np


@dataclasses.dataclass(frozen=True)
class NA:
    """A metric that has no value here, and why (the engine lacks the API, the runtime does not expose it, ...)."""
    reason: str


# Every metric a browser cell reports: name → unit. A cell writes one row for each (value or n/a),
# then its `cell_status` row; per-process-type memory rows come on top, as the tree has them.
CELL_METRICS: dict[str, str] = {
    "cold_fetch_ms": "ms", "cold_compile_ms": "ms", "cold_tune_ms": "ms", "cold_first_run_ms": "ms", "cold_total_ms": "ms",
    "warm_median_ms": "ms", "warm_p90_ms": "ms", "threads_run": "threads",
    "input_delay_p50_ms": "ms", "input_delay_p95_ms": "ms", "next_paint_p50_ms": "ms", "next_paint_p95_ms": "ms",
    "et_input_delay_p50_ms": "ms", "et_input_delay_p95_ms": "ms", "et_latency_p50_ms": "ms", "et_latency_p95_ms": "ms",
    "interactions": "count", "long_tasks": "count", "long_task_ms": "ms", "loaf_count": "count", "loop_runs": "count",
    "idle_frame_ms": "ms", "idle_fps": "fps", "fps_median": "fps", "fps_min": "fps", "fps_ratio": "ratio",
    "late_frame_share": "share",
    "pss_idle_mb": "MiB", "pss_peak_mb": "MiB", "pss_peak_delta_mb": "MiB", "weight_mb": "MiB", "memory_ratio": "ratio",
    "js_heap_used_mb": "MiB", "uasm_mb": "MiB", "wasm_memory_mb": "MiB", "gpu_buffer_mb": "MiB",
    "max_abs_err": "abs", "max_rel_err": "rel", "adapter_software": "bool",
    # Real data (bench/qoe_dataset.py): the task metric, and real-time accuracy on a 30 fps frame stream.
    "top1_agreement": "share", "top1_accuracy": "share", "cosine_mean": "cos", "cosine_min": "cos",
    "realtime_accuracy": "share", "processed_share": "share",
    # GUI load impact (bench/qoe_gui.py): FCP, LCP, load event of the reference page without / with the runtime.
    **{f"gui_{m}_{way}_ms": "ms" for m in ("fcp", "lcp", "load") for way in ("without", "with", "delta")},
}
NATIVE_METRICS: dict[str, str] = {"cold_total_ms": "ms", "warm_median_ms": "ms", "warm_p90_ms": "ms"}
MIB = 1 << 20
# Event Timing reports only entries ≥ durationThreshold (16 ms, its minimum): an interaction without
# an entry was faster, and counts as 16 (an upper bound), as docs/metrics.md says.
ET_THRESHOLD_MS = 16.0
FIRST_EVENTS = ("pointerdown", "keydown")   # the page's handlers: the first event of a click / key press
ET_NAMES = {"pointerdown", "pointerup", "mousedown", "mouseup", "click", "keydown", "keyup", "keypress"}


def adapter_software(gpu: dict | None, backend: str | None, runtime: str):
    """1.0 when the WebGPU adapter emulates a GPU on the CPU (SwiftShader, lavapipe/llvmpipe, or one the
    browser calls a fallback adapter), 0.0 for a hardware GPU: WebGPU latency is compared with the
    native-wgpu baseline only on the same kind (the rule of web_runtime/engine.js deviceClassOf)."""
    if backend != "webgpu":
        return NA(f"{runtime} on {backend}: no WebGPU adapter" if backend else f"{runtime}: no WebGPU adapter")
    if not gpu:
        return NA(f"{runtime}: does not expose its WebGPU adapter")
    text = " ".join(str(gpu.get(k, "")) for k in ("vendor", "architecture", "device", "description"))
    return 1.0 if gpu.get("fallbackAdapter") or re.search(r"swiftshader|llvmpipe|lavapipe", text, re.I) else 0.0


def pct(xs, q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q, method="linear"))


def latency(cold: dict, times: list[float], runtime: str) -> dict:
    """cold_* from the page's phase stamps (None: the runtime has no such phase) and warm median/p90."""
    no_split = {"ort": "ort-web: no phase split of cold start (create is one call)",
                "tfjs": "tfjs-wasm: no phase split of cold start (backend and program load are one call)",
                "synthetic": "synthetic runtime: loads nothing"}.get(runtime)
    out = {}
    for key, src in (("cold_fetch_ms", "fetch"), ("cold_compile_ms", "compile"), ("cold_tune_ms", "tune"),
                     ("cold_first_run_ms", "firstRun"), ("cold_total_ms", "total")):
        v = cold.get(src)
        out[key] = float(v) if v is not None else NA(no_split or f"{runtime}: no {src} phase")
    out["warm_median_ms"] = pct(times, 50) if times else NA("no warm runs")
    out["warm_p90_ms"] = pct(times, 90) if times else NA("no warm runs")
    return out


def _interaction_entries(events: list[dict]) -> list[dict]:
    """The longest Event Timing entry of each interaction (INP-style). Entries without an
    interactionId (an engine that does not assign them) are taken one per click/keydown."""
    groups: dict = {}
    for e in events:
        if e["name"] not in ET_NAMES:
            continue
        key = e["interactionId"] or (f"{e['name']}@{e['startTime']}" if e["name"] in FIRST_EVENTS else None)
        if key is None:
            continue
        if key not in groups or e["duration"] > groups[key]["duration"]:
            groups[key] = e
    return list(groups.values())


def responsiveness(loop: dict, features: dict, engine: str, dispatched: int) -> dict:
    inter = [i for i in loop["interactions"] if i["type"] in FIRST_EVENTS]
    out: dict = {"interactions": float(len(inter)), "loop_runs": float(loop["runs"])}
    if not inter:
        why = NA(f"none of the {dispatched} dispatched inputs reached the page's handler")
        out.update(input_delay_p50_ms=why, input_delay_p95_ms=why, next_paint_p50_ms=why, next_paint_p95_ms=why)
    else:
        delays = [i["delay"] for i in inter]
        paints = [i["paint"] for i in inter if i["paint"] is not None]
        out.update(input_delay_p50_ms=pct(delays, 50), input_delay_p95_ms=pct(delays, 95))
        np_na = NA("no next paint was recorded")
        out.update(next_paint_p50_ms=pct(paints, 50) if paints else np_na, next_paint_p95_ms=pct(paints, 95) if paints else np_na)
    types = features.get("entryTypes", [])
    if "event" in types:
        entries = _interaction_entries(loop["events"])
        missing = max(0, len(inter) - len(entries))
        d = [e["processingStart"] - e["startTime"] for e in entries] + [ET_THRESHOLD_MS] * missing
        lat = [e["duration"] for e in entries] + [ET_THRESHOLD_MS] * missing
        if d:
            out.update(et_input_delay_p50_ms=pct(d, 50), et_input_delay_p95_ms=pct(d, 95),
                       et_latency_p50_ms=pct(lat, 50), et_latency_p95_ms=pct(lat, 95))
        else:
            na = NA("no interaction reached the page")
            out.update(et_input_delay_p50_ms=na, et_input_delay_p95_ms=na, et_latency_p50_ms=na, et_latency_p95_ms=na)
    else:
        na = NA(f"{engine}: no 'event' entry type (Event Timing)")
        out.update(et_input_delay_p50_ms=na, et_input_delay_p95_ms=na, et_latency_p50_ms=na, et_latency_p95_ms=na)
    if "longtask" in types:
        out["long_tasks"] = float(len(loop["longtasks"]))
        out["long_task_ms"] = float(sum(t["duration"] for t in loop["longtasks"]))
    else:
        out["long_tasks"] = out["long_task_ms"] = NA(f"{engine}: no 'longtask' entry type")
    out["loaf_count"] = float(len(loop["loafs"])) if "long-animation-frame" in types else NA(
        f"{engine}: no 'long-animation-frame' entry type")
    return out


def smoothness(idle_frames: list[float], loop: dict) -> dict:
    """fps per 1 s window of the inference window (a last partial window dropped), late frames =
    intervals > 1.5 × the idle median interval."""
    if len(idle_frames) < 3:
        na = NA(f"only {len(idle_frames)} animation frames in the idle window (rAF throttled or not running)")
        return dict.fromkeys(("idle_frame_ms", "idle_fps", "fps_median", "fps_min", "fps_ratio", "late_frame_share"), na)
    idle_ms = float(np.median(np.diff(idle_frames)))
    out: dict = {"idle_frame_ms": idle_ms, "idle_fps": 1000.0 / idle_ms}
    t0, t1, frames = loop["t0"], loop["t1"], np.asarray(loop["frames"], dtype=float)
    n_windows = int((t1 - t0) // 1000)
    if n_windows < 1:
        na = NA(f"inference window {t1 - t0:.0f} ms is shorter than one 1 s window")
        out.update(fps_median=na, fps_min=na, fps_ratio=na, late_frame_share=na)
        return out
    fps = [float(((frames >= t0 + 1000 * w) & (frames < t0 + 1000 * (w + 1))).sum()) for w in range(n_windows)]
    out.update(fps_median=float(np.median(fps)), fps_min=float(min(fps)), fps_ratio=float(np.median(fps)) / out["idle_fps"])
    inside = frames[frames < t0 + 1000 * n_windows]
    if len(inside) < 2:
        out["late_frame_share"] = 1.0 if len(inside) == 0 else 0.0
        return out
    # Intervals from each frame's predecessor (the one before the window counts for the first frame).
    before = frames[frames < t0]
    prev = np.concatenate([before[-1:], inside[:-1]]) if len(before) else inside[:-1]
    cur = inside if len(before) else inside[1:]
    out["late_frame_share"] = float(((cur - prev) > 1.5 * idle_ms).sum() / len(cur))
    return out


def memory(idle: dict, peak: dict, weight_bytes: int | None, page: dict, engine: str, os_na: str | None = None) -> dict:
    """`idle` / `peak`: {'total': bytes, '<process type>': bytes} from bench/qoe_memory.py; `os_na`: why
    the OS side cannot be sampled at all (a remote browser)."""
    out: dict = {}
    if os_na or not idle or not peak:
        na = NA(os_na or "no psutil samples of the browser's process tree")
        out.update(pss_idle_mb=na, pss_peak_mb=na, pss_peak_delta_mb=na, memory_ratio=na)
    else:
        out["pss_idle_mb"] = idle["total"] / MIB
        out["pss_peak_mb"] = peak["total"] / MIB
        out["pss_peak_delta_mb"] = (peak["total"] - idle["total"]) / MIB
        for kind in sorted(set(peak) - {"total"}):
            out[f"pss_peak_delta_{kind}_mb"] = (peak[kind] - idle.get(kind, 0)) / MIB
        out["memory_ratio"] = ((peak["total"] - idle["total"]) / weight_bytes) if weight_bytes else NA(
            "no weights (synthetic runtime)")
    out["weight_mb"] = weight_bytes / MIB if weight_bytes else NA("no weights (synthetic runtime)")
    out["js_heap_used_mb"] = page["jsHeapUsed"] / MIB if page.get("jsHeapUsed") is not None else NA(
        f"{engine}: no performance.memory")
    out["uasm_mb"] = page["uasmBytes"] / MIB if page.get("uasmBytes") is not None else NA(
        f"{engine}: {page.get('uasmReason') or 'no measureUserAgentSpecificMemory'}")
    return out


def runtime_memory(info: dict, runtime: str) -> dict:
    """What the runtime itself says it holds (nnjit's session.info.memoryBytes): its wasm memory and
    its GPU buffers. Peers do not say (ORT-web's wasm heap and buffers are internal)."""
    held = info.get("memoryBytes")
    if not held:
        na = NA(f"{runtime}: does not report the memory it holds")
        return {"wasm_memory_mb": na, "gpu_buffer_mb": na}
    backend = info.get("backend")
    return {"wasm_memory_mb": held["wasm"] / MIB if held.get("wasm") is not None else NA(f"{runtime} on {backend}: no wasm memory"),
            "gpu_buffer_mb": held["gpu"] / MIB if held.get("gpu") is not None else NA(f"{runtime} on {backend}: no GPU buffers")}


def accuracy(outputs: dict | None, refs: dict | None) -> dict:
    if refs is None:
        na = NA("synthetic runtime: no model to compare")
        return {"max_abs_err": na, "max_rel_err": na}
    if not outputs:
        na = NA("the runtime returned no outputs")
        return {"max_abs_err": na, "max_rel_err": na}
    abs_err = rel_err = 0.0
    for name, ref in refs.items():
        ref = np.asarray(ref, np.float64)
        got = np.asarray(outputs[name], np.float64).reshape(ref.shape)
        if ref.size:
            a = float(np.abs(got - ref).max())
            abs_err = max(abs_err, a)
            rel_err = max(rel_err, a / max(float(np.abs(ref).max()), 1e-30))
    return {"max_abs_err": abs_err, "max_rel_err": rel_err}


TASK_METRICS = ("top1_agreement", "top1_accuracy", "cosine_mean", "cosine_min")
REALTIME_METRICS = ("realtime_accuracy", "processed_share")


def task(outs: np.ndarray | None, refs: dict | None, kind: str | None, na: str | None = None) -> dict:
    """The task metric on real data: `outs` [n, ...] the runtime's first output per sample, `refs`
    {out: onnxruntime's [n, ...], labels?: [n]}. Classifiers: top-1 agreement with onnxruntime and
    accuracy against labels; embedding models: cosine similarity to onnxruntime's outputs."""
    if na or outs is None or refs is None:
        reason = NA(na or "no real data for this model")
        return {k: reason for k in TASK_METRICS}
    ref = np.asarray(refs["out"], np.float64).reshape(len(refs["out"]), -1)
    got = np.asarray(outs, np.float64).reshape(ref.shape)
    if kind == "embedding":
        cos = (got * ref).sum(1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1), 1e-30)
        not_cls = NA("an embedding model: scored by cosine similarity, not top-1")
        return {"top1_agreement": not_cls, "top1_accuracy": not_cls, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
    top = got.argmax(1)
    labels = refs.get("labels")
    not_emb = NA("a classifier: scored by top-1, not cosine similarity")
    return {"top1_agreement": float((top == ref.argmax(1)).mean()),
            "top1_accuracy": float((top == np.asarray(labels)).mean()) if labels is not None else NA("the dataset has no labels"),
            "cosine_mean": not_emb, "cosine_min": not_emb}


def realtime(stream: dict | None, ref_top1: np.ndarray | None, na: str | None = None) -> dict:
    """Real-time accuracy of a 30 fps frame stream (docs/metrics.md §5). `stream`: {fps, frames, hold,
    runs: [{frame, end, top1}]} with times in ms from the stream's start; frame i shows sample
    (i // hold) mod len(ref_top1), is due at i/fps and is shown at the next frame's due time with the
    result of the latest inference finished by then (none yet: wrong)."""
    if na or stream is None or ref_top1 is None:
        reason = NA(na or "no real data for this model")
        return {k: reason for k in REALTIME_METRICS}
    fps, frames, hold = stream["fps"], stream["frames"], stream["hold"]
    runs = sorted(stream["runs"], key=lambda r: r["end"])
    ends = np.array([r["end"] for r in runs], dtype=float)
    right = 0
    for i in range(frames):
        k = int(np.searchsorted(ends, (i + 1) * 1000.0 / fps, side="right"))
        if k and runs[k - 1]["top1"] == int(ref_top1[(i // hold) % len(ref_top1)]):
            right += 1
    return {"realtime_accuracy": right / frames, "processed_share": len({r["frame"] for r in runs}) / frames}
