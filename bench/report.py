"""`nnjit report`: results.csv → tables (HTML or markdown) and matplotlib plots embedded as base64
PNG, so report.html is one file readable offline.

Tables: headline per engine/backend (latency ratio vs native: onnxruntime for CPU backends, native-wgpu
on the same kind of adapter for webgpu; fps and p95 input delay Worker vs main thread, memory ratio),
latency, responsiveness and smoothness, memory, accuracy, GUI load impact, native baselines, and what
was n/a or failed and why. Reads results.csv, or results.parquet where there is no CSV. n/a cells print as "n/a"; their reasons are listed, never filled in.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from .qoe_metrics import CELL_METRICS
from .results import load_frame, results_file

CELL = ["config", "engine", "backend", "threads", "runtime", "placement", "model"]
LATENCY_TITLE = ("Latency (ms; ratio = warm median / the native baseline: onnxruntime at the same thread count, 1 or 2, "
                 "for CPU backends; native-wgpu on the same kind of adapter for webgpu)")


def _wide(df):
    """One row per cell, one column per metric (NaN where n/a)."""
    cells = df[df["config"] != "native"]
    facts = cells.drop_duplicates(["config", "runtime", "placement", "model"]).set_index(
        ["config", "runtime", "placement", "model"])[["engine", "backend", "threads"]]
    wide = cells[cells["metric"] != "cell_status"].pivot_table(index=["config", "runtime", "placement", "model"],
                                                                columns="metric", values="value", aggfunc="first")
    wide = facts.join(wide, how="left").reset_index()
    for m in CELL_METRICS:  # every metric has a column, all-n/a ones too
        if m not in wide.columns:
            wide[m] = np.nan
    return wide


def _native(df) -> dict:
    """(model, threads) → native onnxruntime warm median ms."""
    n = df[(df["config"] == "native") & (df["metric"] == "warm_median_ms") & df["runtime"].str.startswith("onnxruntime-t")]
    return {(r.model, int(r.runtime.rsplit("-t", 1)[1])): r.value for r in n.itertuples()}


def _native_wgpu(df) -> dict:
    """model → (warm median ms, adapter name, adapter_software) of the native-wgpu baseline."""
    n = df[(df["config"] == "native") & (df["runtime"] == "native-wgpu")]
    out = {}
    for model, g in n.groupby("model"):
        v = dict(zip(g["metric"], g["value"]))
        out[model] = (v.get("warm_median_ms", np.nan), g["browser_version"].iloc[0], v.get("adapter_software", np.nan))
    return out


def _baseline(row, native: dict, gpu: dict) -> tuple[float, str]:
    """(native ms, which baseline) for one browser cell: webgpu cells against native-wgpu on the same kind
    of adapter (software or hardware), the others against onnxruntime at the same thread count (1 or 2)."""
    if row.backend == "webgpu":
        ms, adapter, soft = gpu.get(row.model, (np.nan, "", np.nan))
        if ms != ms:
            return np.nan, "no native-wgpu row"
        if row.adapter_software != soft:  # NaN (not exposed) never equals: no ratio across kinds
            return np.nan, f"native-wgpu on {adapter}: another kind of adapter"
        return ms, f"native-wgpu on {adapter}"
    t = 1 if (_int(row.threads) or 1) <= 1 else 2
    return native.get((row.model, t), np.nan), f"onnxruntime t{t}"


def _int(v) -> int | None:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def _delay_p95(w):
    """The page's own p95 input delay: measured alike on every engine, so engines compare. (Event
    Timing's has no entry below 16 ms, which docs/metrics.md counts as 16: an upper bound that would
    read 16 ms for an engine that answers in 0.3.)"""
    return w["input_delay_p95_ms"]


def _by_type(w):
    """Per-process-type PSS deltas of each cell as one column ("renderer 86.7, browser 1.2"): the
    types differ per engine, and a column per type would read n/a where an engine has no such process."""
    cols = [c for c in w.columns if c.startswith("pss_peak_delta_") and c != "pss_peak_delta_mb"]

    def one(row):
        parts = sorted(((row[c], c[len("pss_peak_delta_"):-3]) for c in cols if row[c] == row[c] and abs(row[c]) >= 0.5),
                       reverse=True)
        return ", ".join(f"{k} {v:.1f}" for v, k in parts) or "-"
    return w.apply(one, axis=1) if len(w) else []


def _native_table(df) -> tuple[str, object]:
    import pandas as pd

    nat = df[(df["config"] == "native") & (df["metric"] != "cell_status")].rename(columns={"browser_version": "adapter"})
    nat = nat.pivot_table(index=["runtime", "model", "adapter"], columns="metric", values="value", aggfunc="first").reset_index() \
        if len(nat) else pd.DataFrame()
    return ("Native baselines: onnxruntime CPU EP (1, 2 threads); native-wgpu, the nnjit bundle's WebGPU plan "
            "through wgpu-py on this machine's adapter", nat)


def _run_facts(df):
    """When and where the run was measured, and how its cells ended."""
    import pandas as pd

    t = pd.to_datetime(df["time"], utc=True, errors="coerce").dropna() if "time" in df else pd.Series([], dtype="datetime64[ns, UTC]")
    status = df[(df["metric"] == "cell_status") & (df["config"] != "native")]["status"].value_counts()
    first = df.iloc[0]
    facts = [("rows from", t.min().strftime("%Y-%m-%d %H:%M UTC") if len(t) else "n/a"),
             ("rows until", t.max().strftime("%Y-%m-%d %H:%M UTC") if len(t) else "n/a"),
             ("span", f"{(t.max() - t.min()).total_seconds() / 60:.0f} min" if len(t) else "n/a"),
             ("machine", f"{first.get('host', '')}: {first.get('cpu', '')}, {first.get('cores', '')} cores, "
                         f"{first.get('mem_gib', '')} GiB, {first.get('os', '')}"),
             ("configurations", f"{df[df['config'] != 'native']['config'].nunique()} in the results, "
                                f"{df[(df['metric'] == 'cell_status') & (df['config'] != 'native') & (df['status'] != 'n/a')]['config'].nunique()} "
                                "with a cell that ran (not n/a)"),
             ("browser cells", ", ".join(f"{k} {v}" for k, v in status.items()) or "none")]
    for engine, g in df[df["config"] != "native"].groupby("engine"):
        versions = set(g["browser_version"].dropna().astype(str)) - {""} if "browser_version" in g else set()
        facts.append((f"{engine} version", ", ".join(sorted(versions)) or "n/a"))
    return pd.DataFrame(facts, columns=["fact", "value"])


def tables(df) -> list[tuple[str, object]]:
    import pandas as pd

    w = _wide(df)
    if w.empty:  # a baselines-only run (`--runtimes native-wgpu`) still shows its native rows
        return [("No browser cells", pd.DataFrame()), _native_table(df)]
    native, gpu = _native(df), _native_wgpu(df)
    base = [_baseline(r, native, gpu) for r in w.itertuples()]
    w["native_ms"] = [b[0] for b in base]
    w["native_baseline"] = [b[1] for b in base]
    w["ratio_vs_native"] = w["warm_median_ms"] / w["native_ms"]
    w["input_delay_p95"] = _delay_p95(w)
    out = [("Run", _run_facts(df))]
    head = w.groupby(["engine", "backend", "runtime", "placement"], dropna=False).agg(
        cells=("config", "size"), ratio_vs_native=("ratio_vs_native", "median"),
        fps_median=("fps_median", "median"), input_delay_p95_ms=("input_delay_p95", "median"),
        memory_ratio=("memory_ratio", "median")).reset_index()
    out.append(("Headline per engine and backend (medians over configurations and models)", head))

    def pick(cols):
        have = [c for c in cols if c in w.columns]
        return w[CELL[:1] + ["runtime", "placement", "model"] + have]

    out.append((LATENCY_TITLE,
                pick(["cold_fetch_ms", "cold_compile_ms", "cold_tune_ms", "cold_first_run_ms", "cold_total_ms", "warm_median_ms",
                      "warm_p90_ms", "native_ms", "native_baseline", "ratio_vs_native", "threads_run", "adapter_software"])))
    out.append(("Responsiveness and smoothness during back-to-back inference",
                pick(["input_delay_p50_ms", "input_delay_p95_ms", "et_input_delay_p95_ms", "et_latency_p95_ms",
                      "next_paint_p95_ms", "long_tasks", "long_task_ms", "loaf_count", "idle_fps", "fps_median",
                      "fps_min", "late_frame_share", "loop_runs"])))
    w["delta_by_process_type"] = _by_type(w)
    mem_cols = ["pss_idle_mb", "pss_peak_mb", "pss_peak_delta_mb", "delta_by_process_type", "weight_mb", "memory_ratio",
                "js_heap_used_mb", "uasm_mb", "wasm_memory_mb", "gpu_buffer_mb"]
    out.append(("Memory (MiB; PSS of the browser's process tree, peak − idle; ratio = delta / weight bytes)", pick(mem_cols)))
    out.append(("Accuracy vs native onnxruntime on the same inputs; on real data (top-1 agreement with onnxruntime, "
                "top-1 accuracy vs labels, embedding cosine); real time (a 30 fps stream of the real samples)",
                pick(["max_abs_err", "max_rel_err", "top1_agreement", "top1_accuracy", "cosine_mean", "cosine_min",
                      "realtime_accuracy", "processed_share"])))
    out.append(("GUI load impact (ms from navigation start, medians of the reference page's loads; "
                "delta = with the runtime loading − without)",
                pick([f"gui_{m}_{way}_ms" for m in ("fcp", "lcp", "load") for way in ("without", "with", "delta")])))
    out.append(_native_table(df))
    na = df[df["status"].isin(["n/a", "error", "timeout", "unavailable"]) & (df["metric"] != "cell_status")]
    reasons = na.groupby(["status", "reason"]).agg(rows=("metric", "size"), configs=("config", "nunique"),
                                                   metrics=("metric", lambda s: ", ".join(sorted(set(s))[:6]))).reset_index()
    out.append(("n/a and failures, with their reasons", reasons.sort_values("rows", ascending=False)))
    return out


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return "n/a"
        a = abs(v)
        return f"{v:.2e}" if (a and (a < 1e-2 or a >= 1e5)) else f"{v:.3g}" if a < 10 else f"{v:.1f}"
    return str(v)


def markdown(tabs) -> str:
    parts = []
    for title, t in tabs:
        parts.append(f"## {title}\n")
        if t.empty:
            parts.append("(none)\n")
            continue
        cols = list(t.columns)
        parts.append("| " + " | ".join(cols) + " |")
        parts.append("|" + "---|" * len(cols))
        for row in t.itertuples(index=False):
            parts.append("| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |")
        parts.append("")
    return "\n".join(parts)


def _html_table(t) -> str:
    if t.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in t.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plots(df) -> list[tuple[str, str]]:
    """(title, base64 PNG) per plot; empty when matplotlib is missing (the report says so)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    tabs = dict(tables(df))
    w = _wide(df)
    if w.empty:
        return []
    lat = tabs[LATENCY_TITLE]
    out = []

    def png(fig) -> str:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return base64.b64encode(buf.getvalue()).decode()

    one_model = w["model"].nunique() == 1

    def bars(ax, frame, col, label):
        frame = frame.dropna(subset=[col])
        labels = [f"{r.config} {r.runtime}@{r.placement}" + ("" if one_model else f" {r.model}") for r in frame.itertuples()]
        ax.bar(range(len(frame)), frame[col], color=["#36c" if p == "worker" else "#c63" for p in frame["placement"]])
        ax.set_xticks(range(len(frame)), labels, rotation=90, fontsize=7)
        ax.set_ylabel(label)

    if "ratio_vs_native" in lat:
        fig, ax = plt.subplots(figsize=(max(7, 0.3 * len(lat)), 6))
        bars(ax, lat, "ratio_vs_native", "warm median / native (×)")
        ax.axhline(1, color="k", lw=0.5)
        ax.set_title("Latency vs native onnxruntime (blue: Worker, orange: main thread)")
        out.append(("Latency ratio vs native", png(fig)))
    w["input_delay_p95"] = _delay_p95(w)
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 0.6 * len(w)), 6))
    bars(axes[0], w, "fps_median", "fps (median of 1 s windows)")
    axes[0].set_title("Smoothness during inference")
    bars(axes[1], w, "input_delay_p95", "p95 input delay (ms)")
    axes[1].set_title("Input delay during inference")
    out.append(("fps and p95 input delay, Worker vs main thread", png(fig)))
    if {"weight_mb", "pss_peak_delta_mb"} <= set(w.columns):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for rt, g in w.groupby("runtime"):
            ax.scatter(g["weight_mb"], g["pss_peak_delta_mb"], label=rt)
        ax.ticklabel_format(useOffset=False, style="plain")
        top = w["weight_mb"].max()
        ax.set_xlim(0, (top * 1.15) if top == top and top > 0 else 1)
        ax.set_xlabel("model weights (MiB)")
        ax.set_ylabel("PSS peak − idle (MiB)")
        ax.legend(fontsize=7)
        ax.set_title("Memory vs model size")
        out.append(("Memory vs model size", png(fig)))
    if "max_rel_err" in w and w["max_rel_err"].notna().any():
        fig, ax = plt.subplots(figsize=(max(7, 0.3 * len(w)), 6))
        bars(ax, w, "max_rel_err", "max relative error")
        ax.set_yscale("log")
        ax.set_title("Accuracy vs native onnxruntime")
        out.append(("Accuracy", png(fig)))
    return out


def render_html(results_dir: Path) -> str:
    df = load_frame(results_file(results_dir))
    tabs = tables(df)
    figs = plots(df)
    cells = df[df["metric"] == "cell_status"]
    versions = ", ".join(sorted({f"{e} {v}" for e, v in zip(df["engine"], df["browser_version"]) if v}))
    first = df.iloc[0] if len(df) else None
    machine = f"{first['cpu']}, {first['cores']} cores, {first['mem_gib']} GiB, {first['os']}" if first is not None else "?"
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>nnjit QoE report</title><style>",
             "body{font-family:sans-serif;margin:2em;} table{border-collapse:collapse;font-size:12px;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} th{background:#eee} td:first-child{text-align:left}"
             "img{max-width:100%}</style></head><body>",
             "<h1>nnjit QoE report</h1>",
             f"<p>{len(cells)} cells ({', '.join(f'{k} {v}' for k, v in cells['status'].value_counts().items())}), "
             f"{len(df)} rows. Machine: {html.escape(machine)}. Browsers: {html.escape(versions or 'none')}. "
             f"nnjit {html.escape(str(first['nnjit_version']) if first is not None else '?')}. Metric definitions: docs/metrics.md.</p>"]
    if not figs:
        parts.append("<p><b>No plots:</b> matplotlib is not installed in this environment (tables only).</p>")
    for title, b64 in figs:
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{b64}'>")
    for title, t in tabs:
        parts.append(f"<h2>{html.escape(title)}</h2>{_html_table(t)}")
    parts.append("</body></html>")
    return "\n".join(parts)


SUMMARY = ("Run", "Headline", "Native baselines", "n/a and failures")


def render_markdown(results_dir: Path, summary: bool = False) -> str:
    """All tables, or with `summary` only SUMMARY's, under a title naming the command and the file."""
    tabs = tables(load_frame(results_file(results_dir)))
    if summary:
        tabs = [(t, d) for t, d in tabs if t.startswith(SUMMARY)]
    head = (f"# QoE results\n\nGenerated by `nnjit report {results_dir} --markdown{' --summary' if summary else ''}` from "
            "the results `nnjit bench` wrote there (the Run table says when and where).\n")
    return head + "\n" + markdown(tabs)
