"""`nnjit bench` / `nnjit report` end to end on headless Chromium (issue 5's acceptance): every metric
present or n/a with a reason; fidelity on a synthetic busy-loop "model" whose work is exact (2× work
reads 2×, a planted 100 ms block shows as a long task and as input delay, a planted 100 MiB
allocation shows in PSS); a browser killed mid-run and a hung cell leave the other rows and the run
completes; --resume after kill -9 of the harness loses nothing done.

Windows are shortened (FAST) so the file stays under ~90 s; the definitions are those of the
defaults (docs/metrics.md).
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from nnjit.bench.qoe_metrics import CELL_METRICS
from nnjit.browsers.server import REPO

# serial: timings and memory here must not share the two cores with other tests (`make test` runs
# these after the parallel part).
pytestmark = [pytest.mark.browser, pytest.mark.serial]
CONFIG = "chromium-pw-wasm-t1"
# One GUI load each way (plus the warm-up): the GUI rows are there; their fidelity is test_bench_gui.py's.
FAST = ["--idle", "1", "--window", "1.2", "--interactions", "4", "--gap-ms", "250", "--runs", "12", "--gui-loads", "1"]


def bench_cmd(out, *argv):
    return [sys.executable, "-m", "nnjit.cli.main", "bench", "--configs", CONFIG, "--out", str(out), *FAST, *map(str, argv)]


def run(cmd, timeout=240):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def rows(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def cells(rs):
    """(runtime, placement, model) → {metric: row}."""
    out: dict = {}
    for r in rs:
        out.setdefault((r["runtime"], r["placement"], r["model"]), {})[r["metric"]] = r
    return out


def value(cell, metric) -> float:
    r = cell[metric]
    assert r["status"] == "ok", (metric, r["status"], r["reason"])
    return float(r["value"])


def test_quick_path_writes_every_metric_and_report_renders(tmp_path):
    out = tmp_path / "res"
    p = run(bench_cmd(out, "--models", "digits-cnn", "--runtimes", "nnjit-wasm,ort-wasm", "--warmup", "0"))
    assert p.returncode == 0, p.stderr[-3000:]
    rs = rows(out)
    by = cells(rs)
    browser = {k: v for k, v in by.items() if k[1] != "native"}
    assert set(browser) == {(r, pl, "digits-cnn") for r in ("nnjit-wasm", "ort-wasm") for pl in ("worker", "main")}
    for key, cell in browser.items():
        assert cell["cell_status"]["status"] == "ok", (key, cell["cell_status"])
        for metric in CELL_METRICS:
            r = cell[metric]
            assert (r["status"] == "ok" and r["value"] != "") or (r["status"] == "n/a" and r["reason"]), (key, metric, r)
        assert r["browser_version"] and r["nnjit_version"] and r["cpu"] and r["engine"] == "chromium"
        assert value(cell, "warm_median_ms") > 0 and value(cell, "max_rel_err") < 1e-3
        assert value(cell, "fps_median") > 0 and value(cell, "pss_idle_mb") > 50
        for m in ("fcp", "lcp", "load"):  # GUI load impact: the reference page loaded without and with the runtime
            assert value(cell, f"gui_{m}_without_ms") > 0 and value(cell, f"gui_{m}_with_ms") > 0, key
            value(cell, f"gui_{m}_delta_ms")
    for key, cell in browser.items():  # real data: the held-out digits, then a 30 fps stream of them
        assert value(cell, "top1_agreement") == 1.0 and value(cell, "top1_accuracy") >= 0.97, key
        assert value(cell, "processed_share") > 0.3 and value(cell, "realtime_accuracy") > 0.3, key
        assert cell["cosine_mean"]["status"] == "n/a"
    nn = browser["nnjit-wasm", "worker", "digits-cnn"]
    assert value(nn, "cold_fetch_ms") > 0 and value(nn, "cold_compile_ms") > 0
    assert value(nn, "wasm_memory_mb") >= value(nn, "weight_mb") and nn["gpu_buffer_mb"]["status"] == "n/a"
    assert browser["ort-wasm", "worker", "digits-cnn"]["wasm_memory_mb"]["status"] == "n/a"
    assert browser["ort-wasm", "worker", "digits-cnn"]["cold_fetch_ms"]["status"] == "n/a"
    native = {k for k in by if k[1] == "native"}
    assert native == {("onnxruntime-t1", "native", "digits-cnn"), ("onnxruntime-t2", "native", "digits-cnn")}
    report = tmp_path / "report.html"
    p = run([sys.executable, "-m", "nnjit.cli.main", "report", str(out), "-o", str(report)])
    assert p.returncode == 0, p.stderr
    text = report.read_text()
    assert "<table>" in text and "Latency" in text and "ort-wasm" in text
    md = run([sys.executable, "-m", "nnjit.cli.main", "report", str(out), "--markdown"])
    assert md.returncode == 0 and "| config |" in md.stdout and "Accuracy" in md.stdout
    assert "| browser cells | ok 4 |" in md.stdout and "| configurations | 1 in the results, 1 with a cell that ran (not n/a) |" in md.stdout
    short = run([sys.executable, "-m", "nnjit.cli.main", "report", str(out), "--markdown", "--summary"]).stdout
    assert "## Run" in short and "## Headline" in short and "## Latency" not in short and len(short) < len(md.stdout)


@pytest.fixture(scope="module")
def fidelity(tmp_path_factory):
    out = tmp_path_factory.mktemp("fidelity")
    p = run(bench_cmd(out, "--runtimes", "synthetic", "--placements", "worker", "--runs", "30",
                      "--models", "busy,busy-x2,busy-block100,busy-alloc100"))
    assert p.returncode == 0, p.stderr[-3000:]
    return {k[2]: v for k, v in cells(rows(out)).items()}


def _ratio(by) -> float:
    return value(by["busy-x2"], "warm_median_ms") / value(by["busy"], "warm_median_ms")


def test_fidelity_double_work_reads_two(fidelity, tmp_path):
    ratio = _ratio(fidelity)
    if not 1.85 <= ratio <= 2.15:
        # The two cells run seconds apart on a 2-core machine shared with other work: a burst of load
        # in one of them moves its median. One fresh pair decides (the first is reported).
        out = tmp_path / "again"
        p = run(bench_cmd(out, "--runtimes", "synthetic", "--placements", "worker", "--models", "busy,busy-x2", "--runs", "30"))
        assert p.returncode == 0, p.stderr[-3000:]
        again = _ratio({k[2]: v for k, v in cells(rows(out)).items()})
        assert 1.85 <= again <= 2.15, (ratio, again)


def test_fidelity_planted_block_is_a_long_task_and_input_delay(fidelity):
    c = fidelity["busy-block100"]
    assert value(c, "long_tasks") >= 1 and value(c, "long_task_ms") >= 100
    assert value(c, "input_delay_p50_ms") >= 100
    assert value(c, "et_input_delay_p50_ms") >= 100
    quiet = fidelity["busy"]  # the same work without the block: no long task from inference in a Worker
    assert value(quiet, "input_delay_p95_ms") < 100


def test_fidelity_planted_allocation_shows_in_pss(fidelity):
    delta = value(fidelity["busy-alloc100"], "pss_peak_delta_mb")
    assert 80 <= delta <= 120, delta
    assert fidelity["busy-alloc100"]["memory_ratio"]["status"] == "n/a"   # no weights: never a made-up ratio


def _browser_root(pid):
    from nnjit.bench.qoe_memory import browser_root

    return browser_root(pid)


def _complete(out) -> int:
    try:
        return sum(r["metric"] == "cell_status" for r in rows(out))
    except (FileNotFoundError, KeyError):
        return 0


def test_killed_browser_and_hung_cell_keep_the_other_rows(tmp_path):
    out = tmp_path / "res"
    # No GUI loads: --timeout covers the whole cell, and 8 s is sized for the QoE phases alone.
    proc = subprocess.Popen(bench_cmd(out, "--runtimes", "synthetic", "--placements", "worker", "--timeout", "8",
                                      "--warmup", "0", "--gui-loads", "0", "--models", "busy,busy-x2,busy-hang,busy-block100"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while _complete(out) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # into the second cell
        root = _browser_root(proc.pid)
        if root is not None:
            killed.append(root.name())
            root.kill()

    t = threading.Thread(target=killer)
    t.start()
    stdout, stderr = proc.communicate(timeout=150)
    t.join()
    assert proc.returncode == 0, stderr[-3000:]
    assert killed, "no browser process was found to kill"
    by = {k[2]: v for k, v in cells(rows(out)).items()}
    assert by["busy"]["cell_status"]["status"] == "ok" and value(by["busy"], "warm_median_ms") > 0
    # The killed cell: an error when the harness sees the dead browser first, a timeout when the cell's
    # 8 s limit comes first (once in a fresh-clone run); either way a row with its reason, and the run goes on.
    killed_cell = by["busy-x2"]["cell_status"]
    assert killed_cell["status"] in ("error", "timeout") and killed_cell["reason"], killed_cell
    hang = by["busy-hang"]["cell_status"]
    assert hang["status"] == "timeout" and hang["reason"] == "timed out after 8 s while cold start", hang
    assert by["busy-block100"]["cell_status"]["status"] == "ok"
    for cell in by.values():  # failed cells still have every metric's row, each with the reason
        assert set(CELL_METRICS) <= set(cell)
        assert all(r["reason"] for r in cell.values() if r["status"] != "ok")


def test_resume_after_kill_9_loses_nothing(tmp_path):
    out = tmp_path / "res"
    args = ["--runtimes", "synthetic", "--placements", "worker", "--warmup", "0", "--models", "busy,busy-x2,busy-block100"]
    proc = subprocess.Popen(bench_cmd(out, *args),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 90
    while _complete(out) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(children, timeout=15)   # the child follows its parent (PR_SET_PDEATHSIG) and closes its browser
    before = rows(out)
    done_before = {(r["runtime"], r["placement"], r["model"]) for r in before if r["metric"] == "cell_status"}
    assert 1 <= len(done_before) < 3
    p = run(bench_cmd(out, *args, "--resume"))
    assert p.returncode == 0, p.stderr[-3000:]
    after = rows(out)
    status = [(r["runtime"], r["placement"], r["model"]) for r in after if r["metric"] == "cell_status"]
    assert len(status) == len(set(status)) == 3
    key = lambda r: (r["runtime"], r["placement"], r["model"], r["metric"])  # noqa: E731
    kept = {key(r): r for r in after}
    for r in before:
        if (r["runtime"], r["placement"], r["model"]) in done_before:
            assert kept[key(r)] == r   # the very same row: not measured again
    assert len(after) == len({key(r) for r in after})   # no leftovers of the cell cut by the kill
    for c in children:
        assert not c.is_running() or c.status() == psutil.STATUS_ZOMBIE


def test_webkit_two_threads_run_and_agree(tmp_path):
    """WebKitGTK with shared memory: a 2-thread nnjit session loads, splits its gemms and matches
    onnxruntime (the helper threads once served a kernel slot before they had loaded it)."""
    out = tmp_path / "wk"
    cmd = [sys.executable, "-m", "nnjit.cli.main", "bench", "--configs", "webkit-sel-wasm-t2", "--out", str(out),
           "--models", "mlp", "--runtimes", "nnjit-wasm", "--placements", "worker", "--no-native", *FAST]
    r = run(cmd)
    assert r.returncode == 0, r.stderr[-2000:]
    cell = cells(rows(out))["nnjit-wasm", "worker", "mlp"]
    assert value(cell, "threads_run") == 2
    assert value(cell, "max_rel_err") <= 1e-4
    assert value(cell, "warm_median_ms") > 0
