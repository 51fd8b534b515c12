"""`make bench-decoders` → docs/benchmarks_decoders.md: decoder LMs, nnjit (wasm in headless Chromium,
1 and 2 threads; natively through wasmtime) beside onnxruntime CPU on the same exported graph.

Per model: prefill tokens/s for a 128-token prompt, decode ms per token at positions 16, 128 and 512
(a prompt of that length, then 8 new tokens; median), greedy agreement with onnxruntime over 32
tokens, and memory: the bundle's wasm memory (weights + KV cache + arena) and the browser's peak PSS
above idle while it loads and generates, against the weight bytes.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

POSITIONS = (16, 128, 512)
NEW = 8


def _prompt(n: int) -> list[int]:
    return [int(x) for x in np.random.default_rng(n).integers(100, 20000, n)]


def _median_ms(step, reps: int = 9) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _ort_decode_ms(ref, p: int) -> float:
    """One onnxruntime step with a past of length p (zeros: the values do not change the time)."""
    past = {i.name: np.zeros((1, i.shape[1], p, i.shape[3]), np.float32) for i in ref.past}
    return _median_ms(lambda: ref.step([11], p, past))


def bench_model(name: str, threads=(1, 2)) -> dict:
    from nnjit.bench import zoo
    from nnjit.bench.decoder_ref import OrtDecoder
    from nnjit.browsers.generate_page import generate_in_page
    from nnjit.browsers.page_runner import BrowserHarness
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.decoder import compile_decoder
    from nnjit.compiler.generate import Decoder, Sampling
    from nnjit.compiler.native_runtime import NativeSession

    onnx_path = zoo.cached(name)
    row: dict = {"model": name}
    with tempfile.TemporaryDirectory() as td:
        b = Path(td) / "b"
        s = compile_decoder(onnx_path, b, backends=["wasm"])
        m = read_manifest(b)
        row.update(compile_s=s["seconds"], weights_mib=s["weights_bytes"] / 2**20, kv_mib=s["kv_cache_bytes"] / 2**20,
                   wasm_memory_mib=m["memory"]["total_bytes"] / 2**20, max_context=s["max_context"])
        ref = OrtDecoder(onnx_path)
        dec = Decoder(NativeSession(b))
        p128 = _prompt(128)
        g_ref = ref.greedy(p128, 32)
        g_nat = dec.run(p128, Sampling(max_new_tokens=32))
        row["greedy_match_native"] = g_nat["tokens"] == g_ref["tokens"]
        row["logits_rel_err"] = float((np.abs(g_nat["logits"] - g_ref["logits"]).max(axis=1)
                                       / np.abs(g_ref["logits"]).max(axis=1)).max())
        t0 = time.perf_counter()
        ref.step(p128, 0, ref.empty_past())
        row["ort_prefill_tok_s"] = 128 / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        dec.prefill(p128)
        row["native_prefill_tok_s"] = 128 / (time.perf_counter() - t0)
        for p in POSITIONS:
            row[f"ort_decode_ms@{p}"] = _ort_decode_ms(ref, p)
            row[f"native_decode_ms@{p}"] = _median_ms(lambda: dec.step(11, p))
        with BrowserHarness() as h:
            from nnjit.bench.qoe_memory import Sampler, browser_root, sample
            root = browser_root()
            idle = sample(root).get("total", 0) if root else 0
            for t in threads:
                # Browser tree PSS above idle while the session loads and generates (docs/metrics.md §4).
                with Sampler(root) as mem:
                    v = generate_in_page(h, b, p128, Sampling(max_new_tokens=32), threads=t, repeat=2)
                row[f"web{t}_peak_mib"] = (mem.peak().get("total", 0) - idle) / 2**20 if root else float("nan")
                row[f"web{t}_match"] = v["tokens"] == g_ref["tokens"]
                row[f"web{t}_prefill_tok_s"] = v["runs"][-1]["prefillTokensPerS"]
                for p in POSITIONS:
                    v = generate_in_page(h, b, _prompt(p), Sampling(max_new_tokens=NEW), threads=t, repeat=2)
                    r = v["runs"][-1]
                    row[f"web{t}_decode_ms@{p}"] = r["decodeMs"] / (len(v["tokens"]) - 1)
            # onnxruntime-web on the same graph: a 128-token prefill (past 0) and one token on a past
            # of length p, fed as inputs (it has no KV cache of its own); a failure is reported, not fatal.
            try:
                feeds = {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32) for i in ref.past}
                feeds.update(input_ids=np.array([p128], np.int64), position_ids=np.arange(128, dtype=np.int64)[None])
                v = h.run_ort(onnx_path, feeds, runs=3, warmup_ms=500)
                row["ortweb1_prefill_tok_s"] = 128 / v["latency_ms"]["median"] * 1000
                for p in POSITIONS:
                    feeds = {i.name: np.zeros((1, i.shape[1], p, i.shape[3]), np.float32) for i in ref.past}
                    feeds.update(input_ids=np.array([[11]], np.int64), position_ids=np.array([[p]], np.int64))
                    row[f"ortweb1_decode_ms@{p}"] = h.run_ort(onnx_path, feeds, runs=5, warmup_ms=500)["latency_ms"]["median"]
            except Exception as e:  # noqa: BLE001 - the peer's failure is a result of the run
                row["ortweb_error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
            row["browser"] = h.browser.version
    return row


def render(rows: list[dict], threads) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# Decoder benchmarks\n\nGenerated by `make bench-decoders` (python -m nnjit.bench.decoder_bench) on {now}, "
           f"{platform.node()} ({platform.processor() or platform.machine()}), Chromium {rows[0].get('browser', '?')}. "
           "onnxruntime CPU 1 thread on the same exported graph (past keys/values fed back). Decode ms/token: "
           f"a prompt of that many tokens, then {NEW} new tokens (web: Session.generate, second of two runs), "
           "or 9 single steps at that position (native; onnxruntime with a past of that length); median.\n"]
    head = ["model", "engine", "prefill tok/s (128)"] + [f"decode ms @{p}" for p in POSITIONS] + ["decode tok/s @128"]
    out.append("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        engines = [("onnxruntime (native)", "ort_prefill_tok_s", "ort_decode_ms")]
        engines.append(("nnjit wasm (wasmtime)", "native_prefill_tok_s", "native_decode_ms"))
        engines += [(f"nnjit wasm Chromium, {t} thread{'s' if t > 1 else ''}", f"web{t}_prefill_tok_s", f"web{t}_decode_ms")
                    for t in threads]
        if "ortweb1_prefill_tok_s" in r:
            engines.append(("onnxruntime-web wasm Chromium, 1 thread (past fed as inputs)", "ortweb1_prefill_tok_s",
                            "ortweb1_decode_ms"))
        for label, pre, dk in engines:
            cells = [r["model"], label, f"{r[pre]:.1f}"] + [f"{r[f'{dk}@{p}']:.2f}" for p in POSITIONS]
            cells.append(f"{1000 / r[f'{dk}@128']:.1f}")
            out.append("| " + " | ".join(cells) + " |")
    for r in rows:
        if "ortweb_error" in r:
            out.append(f"\nonnxruntime-web on {r['model']}: {r['ortweb_error']}")
    out.append("\n| model | greedy 32 == onnxruntime (native / web) | max logits rel err | weights MiB | KV cache MiB "
               "| wasm memory MiB | browser peak PSS above idle MiB (1 thread) | peak / weights | compile s |"
               "\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        web = " / ".join(str(r[f"web{t}_match"]) for t in threads)
        out.append(f"| {r['model']} | {r['greedy_match_native']} / {web} | {r['logits_rel_err']:.1e} | {r['weights_mib']:.1f} "
                   f"| {r['kv_mib']:.1f} (max context {r['max_context']}) | {r['wasm_memory_mib']:.1f} "
                   f"| {r['web1_peak_mib']:.0f} | {r['web1_peak_mib'] / r['weights_mib']:.2f} | {r['compile_s']:.0f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="gpt2,gemma3-270m",
                    help="zoo decoders; gemma3-270m is skipped (and said so) where `make gemma` has not run")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--out", default="docs/benchmarks_decoders.md")
    a = ap.parse_args(argv)
    threads = [int(t) for t in a.threads.split(",")]
    from nnjit.bench.zoo import GemmaNotInstalledError
    rows, skipped = [], []
    for m in a.models.split(","):
        try:
            rows.append(bench_model(m, threads))
        except GemmaNotInstalledError as e:
            skipped.append(f"{m}: {e}")
    text = render(rows, threads) + "".join(f"\nNot measured: {s}\n" for s in skipped)
    Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
