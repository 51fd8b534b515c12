"""`nnjit bench` on browsers of another machine, on loopback: a Playwright server (`playwright
run-server --unsafe`) behind --pw-endpoint, and Debian's chromedriver on a port as the remote W3C
WebDriver endpoint behind --grid (a Selenium Grid jar is not available here; a Grid forwards the
same protocol to such a driver). The browser must run under that server, not under the harness; its
rows carry real values, and OS-side memory is n/a with the reason, never sampled from elsewhere.
An endpoint that does not answer makes its configurations' rows unavailable, naming it, and the run
goes on.
"""
from __future__ import annotations

import contextlib
import csv
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pandas as pd
import psutil
import pytest

from nnjit.bench.results import load_frame
from nnjit.browsers.server import REPO

pytestmark = pytest.mark.browser
FAST = ["--idle", "1", "--window", "1.2", "--interactions", "4", "--gap-ms", "250", "--runs", "12", "--gui-loads", "1",
        "--no-native", "--placements", "worker"]
CHROMEDRIVER = "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(cmd: list[str], ready_url: str, timeout_s: float = 30):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{cmd[0]} did not serve {ready_url}: {proc.stderr.read() if proc.poll() is not None else 'timeout'}")
                time.sleep(0.2)
        yield proc
    finally:
        for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        proc.wait()


class BrowserWatch:
    """Whether a chromium process ever ran under `server` (and none under the harness `bench`)."""

    def __init__(self, server: subprocess.Popen):
        self.server, self.under_server, self.under_bench, self._stop = server, False, False, threading.Event()

    @staticmethod
    def _has_chromium(pid: int) -> bool:
        try:
            procs = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            return False
        for p in procs:
            with contextlib.suppress(psutil.Error):
                if "chromium" in " ".join(p.cmdline()[:1]):
                    return True
        return False

    def run(self, bench: subprocess.Popen) -> None:
        while not self._stop.is_set():
            self.under_server |= self._has_chromium(self.server.pid)
            self.under_bench |= self._has_chromium(bench.pid)
            self._stop.wait(0.2)

    def bench(self, cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        t = threading.Thread(target=self.run, args=(proc,))
        t.start()
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            self._stop.set()
            t.join()
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def cells(out) -> dict:
    by: dict = {}
    with open(out / "results.csv", newline="") as f:
        for r in csv.DictReader(f):
            by.setdefault((r["config"], r["runtime"], r["placement"], r["model"]), {})[r["metric"]] = r
    return by


def bench(out, *argv) -> list[str]:
    return [sys.executable, "-m", "nnjit.cli.main", "bench", "--out", str(out), *FAST, *argv]


def assert_remote_cell(cell: dict, endpoint: str) -> None:
    assert cell["cell_status"]["status"] == "ok", cell["cell_status"]
    for metric in ("warm_median_ms", "warm_p90_ms", "cold_total_ms", "input_delay_p50_ms", "fps_median", "gui_load_without_ms",
                   "gui_load_with_ms", "gui_lcp_with_ms"):
        assert cell[metric]["status"] == "ok" and float(cell[metric]["value"]) > 0, (metric, cell[metric])
    assert cell["gui_load_delta_ms"]["status"] == "ok" and cell["gui_load_delta_ms"]["value"] != ""
    for metric in ("pss_idle_mb", "pss_peak_mb", "pss_peak_delta_mb", "memory_ratio"):
        r = cell[metric]
        assert r["status"] == "n/a" and r["value"] == "", (metric, r)
        assert r["reason"] == f"remote browser ({endpoint}): its processes are not on this machine", r
    assert not any(m.startswith("pss_peak_delta_") and m != "pss_peak_delta_mb" for m in cell)  # no per-type rows
    assert cell["warm_median_ms"]["browser_version"]   # the remote browser's own, from its session


def test_pw_endpoint_runs_the_cell_on_a_playwright_server(tmp_path):
    port = free_port()
    endpoint = f"ws://127.0.0.1:{port}/"
    server_cmd = [sys.executable, "-m", "playwright", "run-server", "--port", str(port), "--host", "127.0.0.1", "--unsafe"]
    with serving(server_cmd, f"http://127.0.0.1:{port}/") as server:
        watch = BrowserWatch(server)
        p = watch.bench(bench(tmp_path / "res", "--configs", "chromium-pw-wasm-t1", "--pw-endpoint", endpoint,
                              "--runtimes", "nnjit-wasm", "--models", "mlp"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert watch.under_server and not watch.under_bench, (watch.under_server, watch.under_bench)
    cell = cells(tmp_path / "res")["chromium-pw-wasm-t1", "nnjit-wasm", "worker", "mlp"]
    assert_remote_cell(cell, endpoint)
    assert float(cell["max_rel_err"]["value"]) <= 1e-4   # the real model ran there, on bundles served from here
    assert cell["js_heap_used_mb"]["status"] == "ok"     # page-side memory still comes from the page


def test_grid_runs_the_cell_on_a_remote_webdriver(tmp_path):
    if not os.access(CHROMEDRIVER, os.X_OK):
        pytest.skip(f"{CHROMEDRIVER} missing: install Debian's chromium-driver")
    port = free_port()
    grid = f"http://127.0.0.1:{port}"
    with serving([CHROMEDRIVER, f"--port={port}"], f"{grid}/status") as driver:
        watch = BrowserWatch(driver)
        p = watch.bench(bench(tmp_path / "res", "--configs", "chromium-sel-wasm-t1", "--grid", grid,
                              "--runtimes", "synthetic", "--models", "busy"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert watch.under_server and not watch.under_bench, (watch.under_server, watch.under_bench)
    assert_remote_cell(cells(tmp_path / "res")["chromium-sel-wasm-t1", "synthetic", "worker", "busy"], grid)


def test_unreachable_grid_is_a_row_naming_it_and_the_run_goes_on(tmp_path):
    grid = f"http://127.0.0.1:{free_port()}"   # nothing listens there
    p = subprocess.run(bench(tmp_path / "res", "--configs", "chromium-sel-wasm-t1,chromium-pw-wasm-t1", "--grid", grid,
                             "--runtimes", "synthetic", "--models", "busy"), capture_output=True, text=True, cwd=REPO, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    by = cells(tmp_path / "res")
    sel = by["chromium-sel-wasm-t1", "synthetic", "worker", "busy"]["cell_status"]
    assert sel["status"] == "unavailable" and f"WebDriver endpoint {grid}" in sel["reason"], sel
    local = by["chromium-pw-wasm-t1", "synthetic", "worker", "busy"]
    assert local["cell_status"]["status"] == "ok" and float(local["pss_idle_mb"]["value"]) > 50   # launched here: sampled
    # The Parquet copy holds the same rows, unavailable ones included.
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "res" / "results.parquet"), load_frame(tmp_path / "res" / "results.csv"))
