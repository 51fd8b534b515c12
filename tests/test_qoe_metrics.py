"""The QoE metric definitions (bench/qoe_metrics.py) and the results file (bench/results.py) on planted
data, without a browser."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.bench import qoe_metrics as M
from nnjit.bench.qoe_plan import synthetic_options
from nnjit.bench.results import ResultsFile, compact_for_resume, read_rows

FEATURES = {"entryTypes": ["event", "longtask", "long-animation-frame"]}


def test_smoothness_counts_windows_and_late_frames():
    idle = list(np.arange(0, 2000, 1000 / 60))
    # 3 s of inference at 60 fps, except second 1 where every other frame is missed (30 fps).
    frames = [10001 + k * 1000 / 60 for k in range(180) if not (60 <= k < 120 and k % 2)]
    out = M.smoothness(idle, {"t0": 10000.0, "t1": 13050.0, "frames": frames})
    assert abs(out["idle_fps"] - 60) < 0.01
    assert out["fps_min"] == 30 and out["fps_median"] == 60
    assert abs(out["late_frame_share"] - 30 / 150) < 0.02


def test_smoothness_without_frames_is_na():
    out = M.smoothness([1.0], {"t0": 0, "t1": 3000, "frames": []})
    assert all(isinstance(v, M.NA) for v in out.values())


def test_responsiveness_event_timing_and_missing_apis():
    loop = {"runs": 30, "interactions": [{"type": "pointerdown", "delay": 5.0, "paint": 20.0},
                                         {"type": "keydown", "delay": 120.0, "paint": 140.0}],
            "events": [{"name": "keydown", "startTime": 100.0, "processingStart": 225.0, "duration": 152.0, "interactionId": 7},
                       {"name": "keyup", "startTime": 230.0, "processingStart": 231.0, "duration": 16.0, "interactionId": 7}],
            "longtasks": [{"startTime": 100, "duration": 130}], "loafs": []}
    out = M.responsiveness(loop, FEATURES, "chromium", 2)
    assert out["interactions"] == 2 and out["input_delay_p50_ms"] == 62.5
    # One interaction has an entry (delay 125), the other none: faster than the threshold, counted as 16.
    assert out["et_input_delay_p95_ms"] == np.percentile([125.0, 16.0], 95)
    assert out["long_tasks"] == 1 and out["long_task_ms"] == 130 and out["loaf_count"] == 0
    webkit = M.responsiveness(loop, {"entryTypes": ["paint"]}, "webkit", 2)
    assert webkit["long_tasks"] == M.NA("webkit: no 'longtask' entry type")
    assert isinstance(webkit["et_latency_p95_ms"], M.NA) and webkit["input_delay_p95_ms"] > 0


def test_memory_delta_by_type_and_na():
    mib = M.MIB
    out = M.memory({"total": 300 * mib, "renderer": 100 * mib}, {"total": 420 * mib, "renderer": 215 * mib},
                   60 * mib, {"jsHeapUsed": None, "uasmBytes": None, "uasmReason": "no API"}, "firefox")
    assert out["pss_peak_delta_mb"] == 120 and out["pss_peak_delta_renderer_mb"] == 115 and out["memory_ratio"] == 2
    assert out["js_heap_used_mb"] == M.NA("firefox: no performance.memory")


def test_synthetic_model_names():
    assert synthetic_options("busy-x2") == {"work": 1, "scale": 2.0, "blockMs": 0, "allocMB": 0, "hang": False}
    assert synthetic_options("busy-block100-alloc50")["allocMB"] == 50
    assert synthetic_options("mobilenetv2") is None


def test_resume_drops_unfinished_cells_and_a_cut_line(tmp_path):
    path = tmp_path / "results.csv"
    f = ResultsFile(path)
    cell = {"config": "c", "runtime": "r", "placement": "worker"}
    f.append({**cell, "model": "a", "metric": "warm_median_ms", "value": 1.5, "status": "ok"})
    f.append({**cell, "model": "a", "metric": "cell_status", "status": "ok"})
    f.append({**cell, "model": "b", "metric": "warm_median_ms", "value": 2.5, "status": "ok"})
    f.close()
    with open(path, "a") as fh:
        fh.write("c,r,worker,b,warm_p90")   # a row cut short by kill -9
    done = compact_for_resume(path)
    assert done == {("c", "r", "worker", "a")}
    assert [(r["model"], r["metric"]) for r in read_rows(path)] == [("a", "warm_median_ms"), ("a", "cell_status")]


def test_task_metric_top1_and_labels_and_cosine():
    ref = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    got = ref.copy()
    got[3] = [0.9, 0.0, 0.1]  # one disagreement with onnxruntime
    out = M.task(got, {"out": ref, "labels": np.array([1, 0, 1, 2])}, "classifier")
    assert out["top1_agreement"] == 0.75 and out["top1_accuracy"] == 0.5
    assert isinstance(out["cosine_mean"], M.NA)
    assert isinstance(M.task(got, {"out": ref}, "classifier")["top1_accuracy"], M.NA)
    emb = M.task(np.array([[1.0, 0.0], [1.0, 1.0]]), {"out": np.array([[1.0, 0.0], [1.0, 0.0]])}, "embedding")
    assert emb["cosine_mean"] == pytest.approx((1 + 2 ** -0.5) / 2) and emb["cosine_min"] == pytest.approx(2 ** -0.5)
    assert isinstance(emb["top1_agreement"], M.NA)
    na = M.task(None, None, None, "synthetic runtime: no model")
    assert all(isinstance(v, M.NA) and v.reason == "synthetic runtime: no model" for v in na.values())


def test_realtime_shows_the_latest_finished_result_at_each_deadline():
    # 30 fps → deadlines at 33.3, 66.7, 100, 133.3 ms; hold 2: frames 0,1 show sample 0, frames 2,3 sample 1.
    ref_top1 = np.array([4, 7])
    stream = {"fps": 30, "frames": 4, "hold": 2, "runs": [
        {"frame": 0, "end": 50.0, "top1": 4},    # late for frame 0 (nothing shown yet: wrong), shown for frame 1: right
        {"frame": 2, "end": 90.0, "top1": 7},    # in time for frame 2: right; still shown for frame 3: right
    ]}
    out = M.realtime(stream, ref_top1)
    assert out["realtime_accuracy"] == 0.75 and out["processed_share"] == 0.5
    # A wrong answer shown on time counts as wrong; a right one finishing after every deadline never shows.
    stream["runs"] = [{"frame": 0, "end": 10.0, "top1": 3}, {"frame": 1, "end": 500.0, "top1": 4}]
    assert M.realtime(stream, ref_top1)["realtime_accuracy"] == 0.0
    assert isinstance(M.realtime(None, None, "no real data")["realtime_accuracy"], M.NA)
