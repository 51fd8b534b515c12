"""`nnjit bench`: the QoE benchmark over the browser matrix (docs/metrics.md, docs/cli.md).

    nnjit bench --matrix browsers/matrix.toml [--configs ID,... | --quick] --models a,b --runtimes r,s
                --out results/ [--resume] [--timeout S]
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="measure latency, responsiveness, smoothness, memory and accuracy over the browser matrix",
                              description="Measure every configuration × runtime × placement × model of the browser matrix; "
                                          "rows go to OUT/results.csv as they are measured.")
    p.add_argument("--matrix", metavar="FILE", help="matrix file (default: the package's browsers/matrix.toml)")
    p.add_argument("--configs", metavar="ID,...", help="configurations to run (default: all; --quick: a small set)")
    p.add_argument("--quick", action="store_true", help="a small default set: 4 configurations across the engines, "
                   "one small zoo model, nnjit-wasm and ort-wasm")
    p.add_argument("--models", metavar="NAME,...", help="zoo models (or synthetic busy[-xN][-blockMS][-allocMIB][-hang] with --runtimes synthetic)")
    p.add_argument("--runtimes", metavar="NAME,...", help="nnjit-wasm, nnjit-webgpu, ort-wasm, ort-webgpu, tfjs-wasm, "
                   "synthetic (default: all but synthetic; each runs on the configurations of its backend), native-wgpu "
                   "(the native WebGPU baseline alone; it also comes with any webgpu cell unless --no-native)")
    p.add_argument("--placements", default="worker,main", metavar="worker,main",
                   help="inference in a Worker and/or on the page's main thread (default both)")
    p.add_argument("--out", default="results", metavar="DIR", help="results directory (default results/)")
    p.add_argument("--resume", action="store_true", help="keep OUT/results.csv and skip the cells it has complete")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="seconds per cell before its browser is "
                   "killed and the cell reported as timed out (default 300)")
    p.add_argument("--runs", type=int, default=20, help="timed warm runs per cell (default 20)")
    p.add_argument("--warmup", type=float, default=1.0, metavar="S", help="least warm-up before the timed runs "
                   "(default 1 s, and at least 3 runs)")
    p.add_argument("--interactions", type=int, default=20, help="input events per inference window (default 20)")
    p.add_argument("--gap-ms", type=int, default=250, help="ms between input events (default 250)")
    p.add_argument("--idle", type=float, default=2.0, metavar="S", help="idle window before loading (default 2 s)")
    p.add_argument("--window", type=float, default=5.0, metavar="S", help="least inference window (default 5 s)")
    p.add_argument("--tune", type=float, default=0.0, metavar="S", help="nnjit on-device tuning budget (default 0: off)")
    p.add_argument("--no-native", action="store_true", help="skip the native onnxruntime and native-wgpu rows")
    p.add_argument("--gui-loads", type=int, default=5, metavar="N", help="loads of the GUI reference page each way, "
                   "without and with the runtime loading (default 5; 0: skip, the gui_* rows say n/a)")
    p.add_argument("--grid", metavar="URL", help="run the Selenium configurations on this remote WebDriver endpoint "
                   "(a Selenium Grid, or a chromedriver --port=N) instead of launching them here")
    p.add_argument("--pw-endpoint", metavar="WS", help="run the Playwright configurations on this Playwright server "
                   "(`playwright run-server --unsafe`, ws://HOST:PORT/) instead of launching them here")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="address of this machine that the browsers "
                   "load the bench pages from; the page server listens on it (default 127.0.0.1)")
    p.set_defaults(func=main)
    return p


def _split(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def main(args) -> int:
    from nnjit.bench import qoe_plan as plan
    from nnjit.bench.qoe_run import Runner
    from nnjit.bench.results import ResultsFile, compact_for_resume, write_parquet
    from nnjit.bench.tfjs_program import unsupported_cells
    from nnjit.browsers.matrix import load_matrix

    from .run_cmd import UsageError

    if args.timeout <= 0 or args.runs < 1 or args.interactions < 1:
        raise UsageError("--timeout, --runs and --interactions must be positive")
    if args.gui_loads < 0:
        raise UsageError("--gui-loads must be 0 or more")
    remote = _remote(args, UsageError)
    matrix = load_matrix(args.matrix)
    ids = _split(args.configs) or (list(plan.QUICK_CONFIGS) if args.quick else [c.id for c in matrix.configs])
    configs = [matrix.get(i) for i in ids]
    models = _split(args.models) or (list(plan.QUICK_MODELS) if args.quick else None)
    if not models:
        raise UsageError("--models is required (or --quick)")
    runtimes = _split(args.runtimes) or list(plan.QUICK_RUNTIMES if args.quick else plan.DEFAULT_RUNTIMES)
    placements = _split(args.placements)
    if not placements or set(placements) - set(plan.PLACEMENTS):
        raise UsageError(f"--placements: choose from {', '.join(plan.PLACEMENTS)}")
    zoo_models = [m for m in models if plan.synthetic_options(m) is None]
    if zoo_models:
        from nnjit.bench import zoo

        for m in zoo_models:
            zoo.spec(m)  # an unknown name is a usage error before anything launches
    cells = plan.make_cells(configs, runtimes, models, placements)
    if not cells and not (set(runtimes) & set(plan.NATIVE_RUNTIMES) and zoo_models):
        raise UsageError("no cell to run: no runtime matches the configurations' backends, or models and runtimes do not go together")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    done: set = set()
    if csv_path.exists() and csv_path.stat().st_size:
        if not args.resume:
            raise UsageError(f"{csv_path} exists: pass --resume to continue it, or choose another --out")
        done = compact_for_resume(csv_path)
    todo = [c for c in cells if c.key not in done]
    native = [] if args.no_native else [(m, t) for m in zoo_models for t in (1, 2)
                                         if ("native", f"onnxruntime-t{t}", "native", m) not in done]
    # The native WebGPU baseline (t = "wgpu") wherever WebGPU is measured in a browser, or on request.
    want_wgpu = "native-wgpu" in runtimes or any(plan.runtime_backend(c.runtime) == "webgpu" for c in cells)
    native += [(m, "wgpu") for m in zoo_models if want_wgpu and not args.no_native and ("native", "native-wgpu", "native", m) not in done]

    t0 = time.monotonic()
    backends = {"wasm"} | ({"webgpu"} if any(c.runtime == "nnjit-webgpu" for c in todo) or any(t == "wgpu" for _, t in native) else set())
    prepared = {m: plan.prepare_model(m, out / ".work", backends, log=lambda s: print(s, file=sys.stderr))
                for m in zoo_models if any(c.model == m for c in todo) or any(n[0] == m for n in native)}
    settings = {"idle_s": args.idle, "runs": args.runs, "interactions": args.interactions, "gap_ms": args.gap_ms,
                "loop_min_s": args.window, "tune_ms": int(args.tune * 1000), "warmup_ms": int(args.warmup * 1000),
                "gui_loads": args.gui_loads}
    results = ResultsFile(csv_path)
    print(f"{len(cells)} cells on {len(configs)} configurations ({len(cells) - len(todo)} already complete), "
          f"{len(native)} native baselines → {csv_path}", file=sys.stderr)
    try:
        with _progress(len(todo) + len(native)) as progress:
            runner = Runner(matrix, results, prepared, settings, args.timeout, progress=progress, remote=remote)
            for m, t in native:
                if t == "wgpu":
                    progress(advance=0, text=f"native-wgpu {m}")
                    runner.native_wgpu(m, prepared[m], args.runs)
                else:
                    progress(advance=0, text=f"native onnxruntime {m} t{t}")
                    runner.native(m, prepared[m], t, args.runs)
            skip = unsupported_cells(todo, prepared)
            for c, reason in skip.items():
                runner.not_applicable(c, reason)
            by_config = collections.defaultdict(list)
            for c in todo:
                if c not in skip:
                    by_config[c.config].append(c)
            for config_id in ids:
                if by_config.get(config_id):
                    runner.run_config(config_id, by_config[config_id])
    finally:
        results.close()
    print(write_parquet(csv_path), file=sys.stderr)
    _summary(csv_path, time.monotonic() - t0)
    return 0


def _remote(args, UsageError) -> dict:
    """--grid / --pw-endpoint / --host, checked for form only: an endpoint that does not answer is not a
    usage error but its configurations' rows (unavailable, naming the endpoint), and the run goes on."""
    import urllib.parse

    for flag, value, schemes in (("--grid", args.grid, ("http", "https")), ("--pw-endpoint", args.pw_endpoint, ("ws", "wss"))):
        if value is not None:
            u = urllib.parse.urlsplit(value)
            if u.scheme not in schemes or not u.hostname:
                raise UsageError(f"{flag} {value!r}: expected {schemes[0]}://HOST:PORT/...")
    if not args.host or any(c in args.host for c in "/:@ "):
        raise UsageError(f"--host {args.host!r}: expected an address of this machine (e.g. 10.0.0.5)")
    return {"grid": args.grid, "pw_endpoint": args.pw_endpoint, "host": args.host}


class _progress:
    """A rich progress bar over all cells (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("{task.description}"), console=Console(stderr=True))
        self._task = self._p.add_task("", total=total)

    def __call__(self, advance: int = 0, text: str = "") -> None:
        self._p.update(self._task, advance=advance, **({"description": text} if text else {}))

    def __enter__(self):
        self._p.__enter__()
        return self

    def __exit__(self, *exc):
        self._p.__exit__(*exc)


def _summary(csv_path: Path, seconds: float) -> None:
    from nnjit.bench.results import read_rows

    rows = read_rows(csv_path)
    cells = [r for r in rows if r["metric"] == "cell_status"]
    by_status = collections.Counter(r["status"] for r in cells)
    na = collections.Counter(r["reason"] for r in rows if r["status"] == "n/a" and r["metric"] != "cell_status")
    print(f"done in {seconds:.0f} s: {len(rows)} rows, {len(cells)} cells "
          f"({', '.join(f'{k} {v}' for k, v in sorted(by_status.items()))}) in {csv_path}")
    for reason, n in na.most_common(12):
        print(f"  n/a ×{n}: {reason}")
    for r in cells:
        if r["status"] not in ("ok", "n/a"):
            print(f"  {r['status']}: {r['config']} {r['runtime']}@{r['placement']} {r['model']}: {r['reason'][:200]}")
