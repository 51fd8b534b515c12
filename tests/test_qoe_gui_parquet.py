"""Issue 5's remaining pieces without a browser: the GUI load impact metrics on planted page marks
(bench/qoe_gui.py), the Parquet copy of results.csv (bench/results.py) and `nnjit report` reading it,
and the form checks of --grid / --pw-endpoint / --host."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from nnjit.bench import qoe_metrics as M
from nnjit.bench.qoe_gui import GUI_METRICS, gui_metrics
from nnjit.bench.results import ResultsFile, load_frame, write_parquet

ALL = ["paint", "largest-contentful-paint"]


def mark(fcp, lcp, load, types=ALL, error=None):
    return {"fcp": fcp, "lcp": lcp, "load": load, "types": types, "navigationTiming": True, "error": error}


def test_gui_metrics_medians_and_delta():
    without = [mark(100, 120, 90), mark(110, 130, 95), mark(300, 310, 280)]
    with_ = [mark(150, 400, 380), mark(160, 420, 390), mark(170, 430, 400)]
    out = gui_metrics(without, with_, "chromium")
    assert set(out) == set(GUI_METRICS)
    assert out["gui_fcp_without_ms"] == 110 and out["gui_fcp_with_ms"] == 160 and out["gui_fcp_delta_ms"] == 50
    assert out["gui_lcp_delta_ms"] == 420 - 130 and out["gui_load_delta_ms"] == 390 - 95


def test_gui_metrics_na_for_missing_api_and_failed_runtime():
    webkit = [mark(80, None, 70, types=["paint"])] * 2
    out = gui_metrics(webkit, webkit, "webkit")
    for way in ("without", "with", "delta"):
        assert out[f"gui_lcp_{way}_ms"] == M.NA("webkit: no 'largest-contentful-paint' entry type")
    assert out["gui_fcp_delta_ms"] == 0 and out["gui_load_with_ms"] == 70
    failed = gui_metrics([mark(1, 2, 3)], [mark(1, 2, 3, error="TypeError: boom")], "chromium")
    assert failed["gui_load_without_ms"] == 3
    assert failed["gui_load_with_ms"] == failed["gui_load_delta_ms"] == M.NA(
        "the runtime failed while the reference page loaded: TypeError: boom")


def _write_results(path):
    f = ResultsFile(path)
    common = {"engine": "chromium", "driver": "playwright", "backend": "wasm", "threads": 1, "cpu_throttle": 2.0, "tier": "default"}
    key = {"config": "chromium-pw-wasm-t1", "runtime": "nnjit-wasm", "placement": "worker", "model": "mlp"}
    f.append({**key, **common, "metric": "warm_median_ms", "value": 1.25, "unit": "ms", "status": "ok", "reason": ""})
    f.append({**key, **common, "metric": "gui_lcp_with_ms", "value": None, "unit": "ms", "status": "n/a",
              "reason": "webkit: no 'largest-contentful-paint' entry type, with, commas"})
    f.append({**key, **common, "metric": "cell_status", "value": None, "unit": "", "status": "ok", "reason": ""})
    f.append({"config": "native", "runtime": "onnxruntime-t1", "placement": "native", "model": "mlp", "engine": "native",
              "backend": "cpu", "metric": "warm_median_ms", "value": 0.5, "unit": "ms", "status": "ok", "reason": ""})
    f.close()


def test_parquet_round_trips_the_csv_rows(tmp_path):
    csv = tmp_path / "results.csv"
    _write_results(csv)
    assert write_parquet(csv) == f"wrote {tmp_path / 'results.parquet'}"
    pq = pd.read_parquet(tmp_path / "results.parquet")
    # The same rows: the typed CSV equals the Parquet copy, column for column and dtype for dtype ...
    pd.testing.assert_frame_equal(pq, load_frame(csv))
    # ... and the text of every CSV cell comes back from it.
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert list(pq.columns) == list(raw.columns) and len(pq) == len(raw) == 4
    for col in ("config", "metric", "status", "reason", "unit", "engine", "browser_version", "host", "os"):
        assert list(pq[col]) == list(raw[col]), col
    assert pq["value"].isna().tolist() == (raw["value"] == "").tolist()
    assert list(pq["value"].dropna()) == [float(v) for v in raw["value"] if v]
    assert str(pq["threads"].dtype) == "Int64" and pq["threads"].isna().tolist() == [False] * 3 + [True]
    assert str(pq["value"].dtype) == "float64" and str(pq["time"].dtype).startswith("datetime64")
    assert [t.isoformat() for t in pq["time"]] == list(raw["time"])


def test_report_reads_parquet_without_csv(tmp_path):
    csv = tmp_path / "results.csv"
    _write_results(csv)
    write_parquet(csv)
    from_csv = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "report", str(tmp_path), "--markdown"],
                              capture_output=True, text=True)
    csv.unlink()
    from_pq = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "report", str(tmp_path), "--markdown"],
                             capture_output=True, text=True)
    assert from_pq.returncode == 0, from_pq.stderr
    assert from_pq.stdout == from_csv.stdout and "GUI load impact" in from_pq.stdout
    empty = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "report", str(tmp_path / "none")], capture_output=True, text=True)
    assert empty.returncode == 2 and "results.parquet" in empty.stderr


@pytest.mark.parametrize("flags, expected", [
    (["--grid", "127.0.0.1:4444"], "--grid '127.0.0.1:4444': expected http://HOST:PORT/"),
    (["--pw-endpoint", "http://127.0.0.1:3000/"], "--pw-endpoint 'http://127.0.0.1:3000/': expected ws://HOST:PORT/"),
    (["--host", "http://10.0.0.5"], "--host 'http://10.0.0.5': expected an address"),
    (["--gui-loads", "-1"], "--gui-loads must be 0 or more"),
])
def test_remote_flags_bad_form_is_a_usage_error(tmp_path, flags, expected):
    p = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "bench", "--configs", "chromium-sel-wasm-t1", "--models", "busy",
                        "--runtimes", "synthetic", "--out", str(tmp_path), *flags], capture_output=True, text=True)
    assert p.returncode == 2 and expected in p.stderr, p.stderr
