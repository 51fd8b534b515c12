"""`nnjit browsers probe`: launch each engine × driver of the matrix once, measure what works here, and
mark every configuration available or not, with the reason.

Each group is probed in a child process (`python -m nnjit.browsers.probe --group ENGINE:DRIVER`)
with a hard deadline: a browser, driver or page that hangs is killed with its whole process tree
and reported as a timeout naming the stage it hung in, never a stuck command.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .matrix import BrowserConfig, Matrix, load_matrix

PAGE_DIR = Path(__file__).with_name("probe_page")
STAGE = "nnjit-probe-stage: "
# Feature modules, validated by the page with WebAssembly.validate (simd_run is also run).
WAT = {
    "simd": "(module (func (result v128) (v128.const i32x4 0 0 0 0)))",
    "relaxed_simd": "(module (func (result v128) (f32x4.relaxed_madd (v128.const f32x4 0 0 0 0) "
                    "(v128.const f32x4 0 0 0 0) (v128.const f32x4 0 0 0 0))))",
    "atomics": "(module (memory 1 1 shared) (func (result i32) (i32.atomic.load (i32.const 0))))",
    # Instantiated and called (f(1.5) must be 3): lane 0 of a f32x4 add.
    "simd_run": '(module (func (export "f") (param f32) (result f32) (f32x4.extract_lane 0 '
                '(f32x4.add (f32x4.splat (local.get 0)) (f32x4.splat (local.get 0))))))',
}
# ~30-100 ms of main-thread work, timed in the page: how much CDP throttling really slows it (an
# indication, not a calibration: the throttler pauses the renderer in slices, so short tasks vary).
BUSY = "() => { const t0 = performance.now(); let x = 0; for (let i = 0; i < 3e6; i++) x = (x + i * i) % 1000003; return [performance.now() - t0, x]; }"


def _stage(name: str) -> None:
    print(STAGE + name, file=sys.stderr, flush=True)


def _cpu_throttle(handle, rate: float = 4.0) -> dict:
    for _ in range(3):  # warm up: before tier-up a first call is several times slower
        handle.evaluate(BUSY)
    base = statistics.median(handle.evaluate(BUSY)[0] for _ in range(3))
    handle.set_cpu_throttle(rate)
    slow = statistics.median(handle.evaluate(BUSY)[0] for _ in range(3))
    handle.set_cpu_throttle(1)
    return {"available": True, "rate": rate, "slowdown": round(slow / base, 2), "base_ms": round(base, 1)}


def probe_group(config: BrowserConfig, timeout_s: float = 60.0) -> dict:
    """Launch `config` (a group's probe config), open the probe page from a COOP/COEP server, measure."""
    import wasmtime

    from .drivers import LaunchError, launch_handle
    from .server import StaticServer

    out = {"engine": config.engine, "driver": config.driver, "launched": False, "reason": None}
    modules = {name: list(wasmtime.wat2wasm(src)) for name, src in WAT.items()}
    with StaticServer({"/probe/": PAGE_DIR}) as server:
        _stage("launching")
        t0 = time.monotonic()
        try:
            handle = launch_handle(config, timeout_s=timeout_s)
        except LaunchError as e:
            out["reason"] = str(e)
            return out
        with handle:
            out.update(launched=True, launch_s=round(time.monotonic() - t0, 2), version=handle.version, features=None)
            stage = "opening the probe page"
            try:
                _stage(stage)
                handle.open(server.url("/probe/probe.html"))
                _stage(stage := "probing features")
                features = handle.evaluate("m => self.nnjitProbe(m)", modules, timeout_s=timeout_s)
                out["user_agent"] = features.pop("user_agent")
                if config.cpu_throttle is not None:
                    _stage(stage := "timing CDP CPU throttling")
                    features["cpu_throttle"] = _cpu_throttle(handle)
                else:
                    features["cpu_throttle"] = {"available": False, "reason": f"{config.engine} has no CDP"}
                out["features"] = features
            except Exception as e:  # a driver or page error: the browser ran, the probe could not finish
                out["reason"] = f"{stage}: {type(e).__name__}: {' '.join(str(e).split())[:400]}"
            _stage("closing")
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    import psutil

    try:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything of its session that left the tree
    except ProcessLookupError:
        pass


def run_group(matrix: Matrix, engine: str, driver: str, timeout_s: float = 90.0) -> dict:
    """probe_group in a child process, killed (with its browser) after `timeout_s`."""
    cmd = [sys.executable, "-m", "nnjit.browsers.probe", "--group", f"{engine}:{driver}", "--matrix", str(matrix.path),
           "--timeout", str(max(10.0, timeout_s - 15))]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        # A child that did finish may still be waited on because a stray grandchild holds its pipes.
        timed_out = proc.poll() is None
        _kill_tree(proc)
        stdout, stderr = proc.communicate()
    stages = [line[len(STAGE):] for line in stderr.splitlines() if line.startswith(STAGE)]
    base = {"engine": engine, "driver": driver, "launched": False, "probe_s": round(time.monotonic() - t0, 1)}
    if timed_out:
        return {**base, "reason": f"timed out after {timeout_s:g} s while {stages[-1] if stages else 'starting'}"}
    lines = stdout.strip().splitlines()
    try:
        return {**json.loads(lines[-1]), "probe_s": base["probe_s"]}
    except (IndexError, json.JSONDecodeError):
        tail = " ".join(line for line in stderr.strip().splitlines()[-3:] if not line.startswith(STAGE))
        where = f" while {stages[-1]}" if stages else ""
        return {**base, "reason": f"probe exited with status {proc.returncode}{where}: {tail[-400:] or 'no output'}"}


def availability(config: BrowserConfig, group: dict) -> tuple[bool, str]:
    """Whether `config` can run here given its group's probe, and why not (or a caveat when it can)."""
    if not group.get("launched"):
        return False, f"{config.engine} via {config.driver} did not launch: {group.get('reason')}"
    f = group.get("features")
    if not f:
        return False, f"{config.engine} via {config.driver} launched but its probe failed: {group.get('reason')}"
    if not (f["wasm"].get("simd") and f["wasm"].get("simd_runs")):
        return False, f"wasm SIMD: {f['wasm'].get('reason', 'not validated')} (the runtime needs SIMD128)"
    if config.threads > 1 and not f["threads"].get("available"):
        return False, f"threads: {f['threads'].get('reason')}"
    if config.backend == "webgpu" and not f["webgpu"].get("available"):
        return False, f"webgpu: {f['webgpu'].get('reason')}"
    if config.cpu_throttle not in (None, 1) and not f["cpu_throttle"].get("available"):
        return False, f"cpu throttle: {f['cpu_throttle'].get('reason')}"
    if config.tier != "default":
        return True, f"tier '{config.tier}' flags not exercised by the probe (it launches default tiers)"
    return True, ""


def probe(matrix: Matrix, ids: list[str] | None = None, timeout_s: float = 90.0, on_group=None) -> dict:
    """Probe the groups that `ids` (default: every configuration) need; {"groups": [...], "configs": [...]}."""
    configs = [matrix.get(i) for i in ids] if ids else list(matrix.configs)
    groups = {}
    for engine, driver in dict.fromkeys(c.group for c in configs):
        groups[engine, driver] = run_group(matrix, engine, driver, timeout_s)
        if on_group:
            on_group(groups[engine, driver])
    rows = []
    for c in configs:
        ok, reason = availability(c, groups[c.group])
        rows.append({"id": c.id, "engine": c.engine, "driver": c.driver, "backend": c.backend, "threads": c.threads,
                     "available": ok, "reason": reason})
    return {"groups": list(groups.values()), "configs": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="probe one engine:driver group of the browser matrix (prints JSON)")
    p.add_argument("--group", required=True, metavar="ENGINE:DRIVER")
    p.add_argument("--matrix", default=None)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    matrix = load_matrix(args.matrix)
    engine, _, driver = args.group.partition(":")
    result = probe_group(matrix.probe_config(engine, driver), timeout_s=args.timeout)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
