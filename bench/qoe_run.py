"""`nnjit bench`'s runner: every cell of the plan, one child process per browser configuration
(bench/qoe_cell.py), rows appended to results.csv as they arrive, a rich progress bar over all cells.

A child that hangs past --timeout seconds in one cell is killed with its browser; a child that dies
(the browser crashed, the driver failed) leaves its current cell unfinished: either way the cell's
missing metrics get rows with the status and the reason (the stage it hung or died in) and a new
child goes on with the configuration's remaining cells. Native baselines (onnxruntime at 1 and 2 threads,
native-wgpu) come once per model; cells a runtime cannot run (tfjs-wasm beyond its microbenchmarks) are
written n/a without a browser.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import qoe_metrics as M
from .qoe_plan import Cell
from .results import STATUS_ROW, ResultsFile

NATIVE_CONFIG = "native"
NATIVE_WGPU = "native-wgpu"


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
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _reader(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


class Runner:
    def __init__(self, matrix, out: ResultsFile, models: dict, settings: dict, timeout_s: float, progress=None,
                 launch_timeout_s: float = 60.0, remote: dict | None = None):
        self.matrix, self.out, self.models, self.settings = matrix, out, models, settings
        self.remote = remote or {}  # {"grid", "pw_endpoint", "host"}: browsers/remote.py
        self.timeout_s, self.progress, self.launch_timeout_s = timeout_s, progress, launch_timeout_s
        self.versions: dict[str, str] = {}

    def _row(self, config_id: str, cell_key, metric, value, unit, status, reason, **facts_over) -> None:
        c = self.matrix.get(config_id) if config_id != NATIVE_CONFIG else None
        facts = ({"engine": c.engine, "driver": c.driver, "backend": c.backend, "threads": c.threads,
                  "cpu_throttle": c.cpu_throttle, "tier": c.tier} if c else {"engine": "native", "backend": "cpu"})
        self.out.append({"config": cell_key[0], "runtime": cell_key[1], "placement": cell_key[2], "model": cell_key[3],
                         "metric": metric, "value": value, "unit": unit, "status": status, "reason": reason,
                         "browser_version": self.versions.get(config_id, ""), **facts, **facts_over})

    def _advance(self, text: str = "") -> None:
        if self.progress:
            self.progress(advance=1, text=text)

    def _stage(self, text: str) -> None:
        if self.progress:
            self.progress(advance=0, text=text)

    def run_config(self, config_id: str, cells: list[Cell]) -> None:
        remaining = list(cells)
        while remaining:
            remaining = self._child(config_id, remaining)

    def _child(self, config_id: str, cells: list[Cell]) -> list[Cell]:
        """Run a child on `cells`; the cells still to do when it stopped (after writing the rows of the one it stopped in)."""
        spec = {"matrix": str(self.matrix.path), "config": config_id, "cells": [list(c.key) for c in cells],
                "models": self.models, "settings": self.settings, "launch_timeout_s": self.launch_timeout_s,
                "remote": self.remote}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f, \
                tempfile.TemporaryFile("w+") as err:
            json.dump(spec, f)
            f.close()
            proc = subprocess.Popen([sys.executable, "-m", "nnjit.bench.qoe_cell", f.name], stdout=subprocess.PIPE,
                                    stderr=err, text=True, start_new_session=True)
            q: queue.Queue = queue.Queue()
            threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
            left = list(cells)
            current, stage, emitted, started = left[0], "starting", set(), False
            deadline = time.monotonic() + self.timeout_s + self.launch_timeout_s
            try:
                while True:
                    try:
                        line = q.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        _kill_tree(proc)
                        if STATUS_ROW in emitted:  # the cell was complete, only its "done" came late: not a timeout
                            self._advance()
                            return left[1:]
                        self._fill(config_id, current, emitted, "timeout", f"timed out after {self.timeout_s:g} s while {stage}")
                        return left[1:]
                    if line is None:
                        code = proc.wait()
                        if not left:
                            return []
                        if not started and current != cells[0]:
                            return left  # it stopped after a cell it finished itself (exit 3): a new browser for the rest
                        err.seek(0)
                        tail = " ".join(" ".join(err.read().split()).split()[-60:])
                        self._fill(config_id, current, emitted, "error",
                                   f"the browser or its driver died (exit {code}) while {stage}: {tail[-400:] or 'no output'}")
                        return left[1:]
                    msg = json.loads(line)
                    started = started or msg["t"] in ("stage", "row")
                    if msg["t"] == "launch":
                        # The cell's own clock starts once the browser is up (launching had its own allowance).
                        self.versions[config_id] = msg["version"]
                        deadline = time.monotonic() + self.timeout_s
                    elif msg["t"] == "stage":
                        stage = msg["stage"]
                        self._stage(f"{config_id} {current.runtime}@{current.placement} {current.model}: {stage}")
                    elif msg["t"] == "row":
                        emitted.add(msg["metric"])
                        self._row(config_id, msg["cell"], msg["metric"], msg["value"], msg["unit"], msg["status"], msg["reason"])
                    elif msg["t"] == "done":
                        left.pop(0)
                        self._advance()
                        if not left:
                            continue
                        current, stage, emitted, started = left[0], "starting the cell", set(), False
                        deadline = time.monotonic() + self.timeout_s
            finally:
                if proc.poll() is None:
                    _kill_tree(proc)
                os.unlink(f.name)

    def _fill(self, config_id: str, cell: Cell, emitted: set, status: str, reason: str) -> None:
        for metric, unit in M.CELL_METRICS.items():
            if metric not in emitted:
                self._row(config_id, cell.key, metric, None, unit, status, reason)
        self._row(config_id, cell.key, STATUS_ROW, None, "", status, reason)
        self._advance()

    def not_applicable(self, cell: Cell, reason: str) -> None:
        """A cell its runtime cannot run (TF.js on a model beyond the gemm/conv microbenchmarks): every
        metric n/a with the reason, no browser started."""
        self._fill(cell.config, cell, set(), "n/a", reason)

    def native_wgpu(self, model: str, info: dict, runs: int) -> None:
        """The bundle's WebGPU plan through wgpu-py on this machine's adapter (bench/native_wgpu.py, in
        a child process): rows of config `native`, runtime `native-wgpu`; the adapter goes in
        browser_version and wgpu-py's version in driver."""
        key = (NATIVE_CONFIG, NATIVE_WGPU, "native", model)
        metrics = {**M.NATIVE_METRICS, "max_abs_err": "abs", "max_rel_err": "rel", "adapter_software": "bool"}
        spec = {"bundle": info["bundle"], "inputs": info["inputs"], "refs": info["refs"], "runs": runs}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        res, status, reason = None, "ok", ""
        try:
            p = subprocess.run([sys.executable, "-m", "nnjit.bench.native_wgpu", f.name], capture_output=True, text=True,
                               timeout=self.timeout_s)
            lines = p.stdout.strip().splitlines()
            if p.returncode == 0 and lines and lines[-1].startswith("{"):
                res = json.loads(lines[-1])
            else:
                status, reason = "error", f"native-wgpu exited {p.returncode}: {' '.join(p.stderr.split())[-400:] or 'no output'}"
        except subprocess.TimeoutExpired:
            status, reason = "timeout", f"timed out after {self.timeout_s:g} s"
        finally:
            os.unlink(f.name)
        facts = {"backend": "webgpu", "driver": f"wgpu-py {res['wgpu']}" if res and "wgpu" in res else "wgpu-py",
                 "browser_version": (res or {}).get("adapter", "")}
        if res and "na" in res:
            res, status, reason = None, "n/a", res["na"]
        values = {}
        if res:
            values = {"cold_total_ms": res["cold_total_ms"], "warm_median_ms": M.pct(res["times"], 50),
                      "warm_p90_ms": M.pct(res["times"], 90), **res["outputs_err"],
                      "adapter_software": 1.0 if res["device_class"] == "cpu" else 0.0}
        for metric, unit in metrics.items():
            v = values.get(metric)
            if v is not None:
                self._row(NATIVE_CONFIG, key, metric, v, unit, "ok", "", **facts)
            else:
                self._row(NATIVE_CONFIG, key, metric, None, unit, "n/a" if status == "ok" else status,
                          reason or "the runtime returned no outputs", **facts)
        self._row(NATIVE_CONFIG, key, STATUS_ROW, None, "", status, reason, **facts)
        self._advance()

    def native(self, model: str, info: dict, threads: int, runs: int) -> None:
        """onnxruntime CPU on this machine, `threads` intra-op threads: the baseline rows."""
        import numpy as np
        import onnxruntime as ort

        from .compare import WARMUP

        key = (NATIVE_CONFIG, f"onnxruntime-t{threads}", "native", model)
        feeds = dict(np.load(info["inputs"]))
        t0 = time.perf_counter()
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(info["onnx"], so, providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
        self._row(NATIVE_CONFIG, key, "cold_total_ms", (time.perf_counter() - t0) * 1e3, "ms", "ok", "")
        for _ in range(WARMUP):
            sess.run(None, feeds)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, feeds)
            times.append((time.perf_counter() - t) * 1e3)
        self._row(NATIVE_CONFIG, key, "warm_median_ms", M.pct(times, 50), "ms", "ok", "")
        self._row(NATIVE_CONFIG, key, "warm_p90_ms", M.pct(times, 90), "ms", "ok", "")
        self._row(NATIVE_CONFIG, key, STATUS_ROW, None, "", "ok", "")
        self._advance()
