"""GUI load impact (docs/metrics.md §6) end to end: FCP, LCP and load event of the reference page
without and with the runtime loading. Fidelity: a planted main-thread block of known length during the
page load (the synthetic runtime's busy-blockMS, bench/pages/gui/load.js) pushes LCP and the load event
by at least that block, and the same runtime without the block does not; an engine without LCP
(WebKitGTK) says n/a with the reason. Real runtimes' numbers (nnjit, ORT-web; Worker and main thread)
are checked by test_bench_qoe.py's quick-path test.
"""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from nnjit.browsers.server import REPO

pytestmark = [pytest.mark.browser, pytest.mark.serial]
FAST = ["--idle", "1", "--window", "1.2", "--interactions", "4", "--gap-ms", "250", "--runs", "12", "--no-native"]
GUI = [f"gui_{m}_{way}_ms" for m in ("fcp", "lcp", "load") for way in ("without", "with", "delta")]
BLOCK_MS = 300
# The delta is a difference of two medians over different loads, each a few ms from its neighbours, and
# the engine's off-main-thread work between the image arriving and the load event (decode) overlaps the
# block: the 300 ms block has read 299-473 ms here (299: CI's load event, 298.6). A block partly hidden by
# fetches reads far less (200 ms read as 69 and 106 ms: docs/metrics.md §6).
AT_LEAST = 0.95 * BLOCK_MS


def run_bench(out, *argv):
    p = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "bench", "--out", str(out), *FAST, *argv],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    by: dict = {}
    with open(out / "results.csv", newline="") as f:
        for r in csv.DictReader(f):
            by.setdefault((r["runtime"], r["placement"], r["model"]), {})[r["metric"]] = r
    return by


def value(cell, metric) -> float:
    r = cell[metric]
    assert r["status"] == "ok", (metric, r["status"], r["reason"])
    return float(r["value"])


def test_planted_block_pushes_lcp_and_load_by_the_block(tmp_path):
    # In a Worker, the runtime's own work stays off the main thread: the planted block is the difference.
    by = run_bench(tmp_path / "res", "--configs", "chromium-pw-wasm-t1", "--runtimes", "synthetic", "--placements", "worker",
                   "--models", f"busy,busy-block{BLOCK_MS}", "--gui-loads", "7")
    block = by["synthetic", "worker", f"busy-block{BLOCK_MS}"]
    assert value(block, "gui_lcp_delta_ms") >= AT_LEAST, {m: block[m]["value"] for m in GUI}
    assert value(block, "gui_load_delta_ms") >= AT_LEAST, {m: block[m]["value"] for m in GUI}
    assert value(block, "gui_lcp_with_ms") >= BLOCK_MS
    quiet = by["synthetic", "worker", "busy"]   # the same runtime without the block
    assert value(quiet, "gui_load_delta_ms") < BLOCK_MS and value(quiet, "gui_lcp_delta_ms") < BLOCK_MS


def test_engine_without_lcp_says_na(tmp_path):
    by = run_bench(tmp_path / "res", "--configs", "webkit-sel-wasm-t1", "--runtimes", "synthetic", "--placements", "worker",
                   "--models", "busy", "--gui-loads", "1")
    cell = by["synthetic", "worker", "busy"]
    for way in ("without", "with", "delta"):
        r = cell[f"gui_lcp_{way}_ms"]
        assert r["status"] == "n/a" and r["value"] == "" and r["reason"] == "webkit: no 'largest-contentful-paint' entry type"
    assert value(cell, "gui_fcp_with_ms") > 0 and value(cell, "gui_load_without_ms") > 0
