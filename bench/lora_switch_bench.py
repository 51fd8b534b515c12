"""`make bench-lora-switch` → docs/benchmarks_lora_switch.md: decode latency per token of LoRA-Switch
(compiler/passes/lora_switch.py: one fused merge launch per token whose adapter set changed, then the
base model's gemms) against the unfused dynamic model (NNJIT_LORA_SWITCH=0: each adapter's (x·A)·B
per layer at every token) and the base model without adapters, on wasm (headless Chromium, 1 thread;
wasmtime) and WebGPU (Chromium's SwiftShader; wgpu-py on lavapipe — both software adapters here).

The crossover: merging costs about k·r·d² multiply-adds per matrix (plus reading W and writing M),
the unfused path k·r·d per matrix and token plus its extra steps. The table derives, per engine and
rank, the merge cost per merged token and the change rate f* below which switching wins.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from .compare import _cpu_name

VARIANTS = ("base", "switch", "unfused")
ENGINES = ("wasm-chromium", "webgpu-chromium", "wasm-wasmtime", "webgpu-wgpu")
PROMPT = [464, 3290, 318, 257, 1332, 11, 12, 13, 14, 15, 16, 17, 18]


@contextlib.contextmanager
def _switch(on: bool):
    prev = os.environ.get("NNJIT_LORA_SWITCH")
    os.environ["NNJIT_LORA_SWITCH"] = "1" if on else "0"
    try:
        yield
    finally:
        os.environ.pop("NNJIT_LORA_SWITCH") if prev is None else os.environ.__setitem__("NNJIT_LORA_SWITCH", prev)


def _model(rank: int, td: Path) -> Path:
    from . import zoo, zoo_lora, zoo_switch

    if rank == zoo_switch.RANK:
        return zoo.cached("gpt2-tiny-switch")
    out = td / f"gpt2-tiny-switch-r{rank}.onnx"
    zoo_switch.build_gpt2_switch("gpt2-tiny", zoo._torch_export, zoo._save_onnx, rank=rank)(out)
    zoo_lora.copy_sidecars(zoo.cached("gpt2-tiny"), out)
    return out


def _bundles(src: Path, td: Path, rank: int, T: int) -> dict:
    from nnjit.compiler.decoder import compile_decoder

    from . import zoo

    kw = {"max_context": T, "prefill_len": 16}
    dirs = {v: td / f"r{rank}-{v}" for v in VARIANTS}
    compile_decoder(zoo.cached("gpt2-tiny"), dirs["base"], **kw)
    for v, on in (("switch", True), ("unfused", False)):
        with _switch(on):
            compile_decoder(src, dirs[v], **kw)
    return dirs


def _native_ms(session, n_new: int, reps: int) -> tuple[list[float], list[int]]:
    from nnjit.compiler.generate import Decoder, Sampling

    d = Decoder(session)
    out, tokens = [], []
    for _ in range(reps + 1):  # the first generation warms up
        tokens = d.run(PROMPT, Sampling(max_new_tokens=n_new))["tokens"]
        out.append(1000 * d.timing["decode_s"] / d.timing["decoded"])
    return out[1:], tokens


def _page_ms(h, bundle: Path, n_new: int, reps: int, backend: str, picks: list) -> tuple[list[float], list[int]]:
    from nnjit.browsers.generate_page import generate_in_page
    from nnjit.compiler.generate import Sampling

    v = generate_in_page(h, bundle, PROMPT, Sampling(max_new_tokens=n_new), repeat=reps + 1, backend=backend,
                         lora_switch="switch")
    assert v["info"]["backend"] == backend, v["info"]
    if v["info"].get("loraSwitch"):  # the page's own strategy timing at create (web_runtime/lora_switch.js)
        p = v["info"]["loraSwitch"]
        picks.append({"merge_ms": p["mergeMs"], "skip_ms": p["skipMs"], "unfused_ms": p["unfusedMs"],
                      "crossover_f": p["crossoverF"], "strategy": p["strategy"]})
    return [r["decodeMs"] / (len(v["tokens"]) - 1) for r in v["runs"][1:]], v["tokens"]


def _native_pick(session) -> dict:
    from nnjit.compiler import switch_jit

    t = switch_jit.time_strategies(session)
    return {**t, "strategy": "switch" if switch_jit.choose(t) == "decode" else "unfused"}


def bench(ranks, engines, rounds: int, reps: int, n_new: int) -> list[dict]:
    from nnjit.browsers.page_runner import BrowserHarness
    from nnjit.compiler.gpu_runtime import GPUSession
    from nnjit.compiler.native_runtime import NativeSession

    rows = []
    with tempfile.TemporaryDirectory() as tdir, contextlib.ExitStack() as stack:
        td = Path(tdir)
        pages = {}
        if "wasm-chromium" in engines:
            pages["wasm-chromium"] = (stack.enter_context(BrowserHarness()), "wasm")
        if "webgpu-chromium" in engines:
            pages["webgpu-chromium"] = (stack.enter_context(BrowserHarness(timeout_s=300, webgpu=True)), "webgpu")
        for rank in ranks:
            dirs = _bundles(_model(rank, td), td, rank, len(PROMPT) + n_new + 1)
            counter = NativeSession(dirs["switch"])
            ref_tokens = _native_ms(counter, n_new, 0)[1]
            merges, decoded = counter.stats["merge_dispatches"], n_new - 1
            for engine in engines:
                times = {v: [] for v in VARIANTS}
                picks = []
                for _ in range(rounds):
                    for v in VARIANTS:  # the variants alternate so that machine noise hits them alike
                        if engine in pages:
                            h, backend = pages[engine]
                            t, toks = _page_ms(h, dirs[v], n_new, reps, backend, picks)
                        else:
                            sess = NativeSession(dirs[v]) if engine == "wasm-wasmtime" else GPUSession(dirs[v])
                            t, toks = _native_ms(sess, n_new, reps)
                            if v == "switch":
                                picks.append(_native_pick(sess))
                        assert v == "base" or toks == ref_tokens, (engine, v)
                        times[v] += t
                for v in VARIANTS:
                    t = np.array(times[v])
                    rows.append({"engine": engine, "rank": rank, "variant": v, "median": float(np.median(t)),
                                 "p10": float(np.percentile(t, 10)), "p90": float(np.percentile(t, 90)), "n": len(t),
                                 "merges": merges if v == "switch" else None, "decoded": decoded,
                                 "pick": _median_pick(picks) if v == "switch" else None})
    return rows


def _median_pick(picks: list[dict]) -> dict | None:
    if not picks:
        return None
    out = {k: float(np.median([p[k] for p in picks])) for k in ("merge_ms", "skip_ms", "unfused_ms")}
    m, s, u = out["merge_ms"], out["skip_ms"], out["unfused_ms"]
    out["crossover_f"] = (u - s) / (m - s) if m > s else (float("inf") if u >= s else float("-inf"))
    out["strategy"] = "switch" if out["crossover_f"] >= 1 else "unfused"
    out["n"] = len(picks)
    return out


def _crossover(rows: list[dict], engine: str, rank: int) -> str:
    r = next(r for r in rows if r["engine"] == engine and r["rank"] == rank and r["variant"] == "switch")
    p = r["pick"]
    if p is None:
        return f"| {engine} | {rank} | - | - | - | - | - | - | - |"
    f = p["crossover_f"]
    fs = "∞" if f == float("inf") else ("−∞" if f == float("-inf") else f"{f:.2f}")
    return (f"| {engine} | {rank} | {p['merge_ms']:.2f} | {p['skip_ms']:.2f} | {p['unfused_ms']:.2f} | {fs} | "
            f"{p['strategy']} | {p['unfused_ms'] / p['skip_ms']:.2f}× | {p['unfused_ms'] / p['merge_ms']:.2f}× |")


def render(rows: list[dict], command: str, rounds: int, reps: int, n_new: int, load) -> str:
    head = (f"# LoRA-Switch: decode latency\n\nGenerated by `{command}` on {datetime.date.today().isoformat()}, "
            f"machine: {_cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, 1-minute load "
            f"average {load[0]:.1f} at the start, {load[1]:.1f} at the end (a shared machine: timings are noisy). "
            "Not edited by hand.\n\n"
            "Model: gpt2-tiny-switch (bench/zoo_switch.py: gpt2-tiny, pools of 8 adapters on the 4 projections of "
            "each of 2 layers, top-2 router on layer 0's input), greedy decoding of "
            f"{n_new} tokens after a {len(PROMPT)}-token prompt; ms per decoded token, median (10th–90th percentile) "
            f"over {rounds} rounds × {reps} generations (after one warm-up generation per session). 'base': gpt2-tiny "
            "without adapters; 'switch': the LoRA-Switch decode plan; 'unfused': the same model with "
            "NNJIT_LORA_SWITCH=0. Engines: wasm in headless Chromium (1 thread) and in wasmtime; WebGPU on Chromium's "
            "SwiftShader and on wgpu-py's lavapipe — both CPU (software) adapters, no GPU here. All variants give the "
            "same tokens (asserted). A gate step compares the router's k indices with the merged set; on wasm the host "
            "then skips the merge call, on WebGPU the merge is dispatched indirectly with 0 workgroups.\n\n"
            "| engine | rank | variant | ms/token | p10–p90 | vs base | merges / decoded tokens |\n|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        base = next(b for b in rows if b["engine"] == r["engine"] and b["rank"] == r["rank"] and b["variant"] == "base")
        mg = f"{r['merges']} / {r['decoded']}" if r["merges"] is not None else "-"
        lines.append(f"| {r['engine']} | {r['rank']} | {r['variant']} | {r['median']:.3f} | {r['p10']:.3f}–{r['p90']:.3f} | "
                     f"{r['median'] / base['median']:.2f}× | {mg} |")
    cross = ("\n\n## Crossover (the runtime's strategy timing)\n\nThe greedy continuation above changes its "
             "adapter set on few tokens (merges / decoded tokens), so the end-to-end rows mostly time skipped merges. "
             "Here each decode plan is timed directly, as the runtime does before it picks (compiler/switch_jit.py "
             "natively, web_runtime/lora_switch.js in the page, medians over the sessions above): 'merge' = the switch "
             "plan with the set changing every run, 'skip' = set unchanged, 'unfused' = the unfused plan, ms per decode "
             "run at position −1. Switching wins while the change rate f < f* = (unfused − skip) / (merge − skip); the "
             "runtime picks 'switch' when f* ≥ 1 (faster even if every token changes set).\n\n"
             "| engine | rank | merge ms | skip ms | unfused ms | f* | pick | unfused / skip | unfused / merge |\n"
             "|---|---|---|---|---|---|---|---|---|\n")
    pairs = sorted({(r["engine"], r["rank"]) for r in rows}, key=lambda p: (ENGINES.index(p[0]), p[1]))
    return head + "\n".join(lines) + cross + "\n".join(_crossover(rows, e, k) for e, k in pairs) + "\n"


def main(argv=None) -> int:
    import sys

    ap = argparse.ArgumentParser(prog="python -m nnjit.bench.lora_switch_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", nargs="+", type=int, default=[4, 64])
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--write", type=Path, help="write the markdown here")
    a = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows = bench(a.ranks, a.engines, a.rounds, a.reps, a.tokens)
    command = "python -m nnjit.bench.lora_switch_bench " + " ".join(sys.argv[1:] if argv is None else argv)
    text = render(rows, command.strip(), a.rounds, a.reps, a.tokens, (load0, os.getloadavg()[0]))
    print(text)
    if a.write:
        a.write.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
