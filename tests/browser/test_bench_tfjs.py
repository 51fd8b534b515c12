"""The tfjs-wasm peer of `nnjit bench` in headless Chromium: on a gemm microbenchmark its outputs match
onnxruntime and its warm latency is a number, in a Worker and on the main thread, with the thread
count it really runs (TF.js 4.22 stays at 1 when asked for 2); a model beyond the microbenchmarks is
n/a with the reason; Conv and depthwise Conv (NCHW models, NHWC in TF.js) match onnxruntime through
the same page."""
from __future__ import annotations

import csv
import subprocess
import sys
import time

import numpy as np
import pytest

from nnjit.bench.qoe_metrics import CELL_METRICS
from nnjit.browsers.server import REPO

pytestmark = pytest.mark.browser
FAST = ["--idle", "1", "--window", "1.2", "--interactions", "4", "--gap-ms", "250", "--runs", "12", "--warmup", "0",
        "--gui-loads", "0"]


def test_tfjs_wasm_matches_onnxruntime_with_a_warm_latency(tmp_path):
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "nnjit.cli.main", "bench", "--configs", "chromium-pw-wasm-t2", "--out", str(out),
           "--models", "matmul-128x768,mlp", "--runtimes", "tfjs-wasm", "--no-native", *FAST]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by: dict = {}
    for r in rows:
        by.setdefault((r["placement"], r["model"]), {})[r["metric"]] = r
    for placement in ("worker", "main"):
        cell = by[placement, "matmul-128x768"]
        assert cell["cell_status"]["status"] == "ok", cell["cell_status"]
        for metric in CELL_METRICS:
            r = cell[metric]
            assert (r["status"] == "ok" and r["value"] != "") or (r["status"] == "n/a" and r["reason"]), (placement, metric, r)
        assert float(cell["max_rel_err"]["value"]) <= 1e-4
        assert float(cell["warm_median_ms"]["value"]) > 0 and float(cell["cold_total_ms"]["value"]) > 0
        assert float(cell["threads_run"]["value"]) == 1   # a t2 configuration: TF.js was asked for 2
        assert cell["cold_fetch_ms"]["reason"].startswith("tfjs-wasm: no phase split")
        mlp = by[placement, "mlp"]
        assert mlp["cell_status"]["status"] == "n/a" and "single-op gemm/conv microbenchmarks" in mlp["cell_status"]["reason"]
        assert all(r["status"] == "n/a" and r["reason"] for r in mlp.values())


def _conv_model(root, group: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(group)
    w = rng.standard_normal((16, 8 // group, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, pads=[0, 1, 2, 1], strides=[2, 1])
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 15, 13])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    path = root / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("group", [1, 8])
def test_tfjs_conv_and_depthwise_match_onnxruntime(tmp_path, group):
    import onnxruntime as ort

    from nnjit.bench.qoe_page import _decode, _page_config
    from nnjit.bench.qoe_plan import Cell
    from nnjit.bench.tfjs_program import prepare_model, to_onnx_layout
    from nnjit.browsers.drivers import launch_handle
    from nnjit.browsers.matrix import load_matrix
    from nnjit.browsers.server import StaticServer

    onnx_path = _conv_model(tmp_path, group)
    x = np.random.default_rng(0).standard_normal((1, 8, 15, 13)).astype(np.float32)
    ref = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.savez(tmp_path / "inputs.npz", x=x)
    info = {"onnx": str(onnx_path), "inputs": str(tmp_path / "inputs.npz"), "bundle": str(tmp_path / "bundle")}
    prepare_model(info)
    config = load_matrix(None).get("chromium-pw-wasm-t1")
    with launch_handle(config, timeout_s=60) as h, StaticServer() as server:
        h.open(server.url("/pages/qoe.html"))
        deadline = time.monotonic() + 10
        while not h.evaluate("() => Boolean(window.nnjitQoe)") and time.monotonic() < deadline:
            time.sleep(0.1)
        cfg = _page_config(Cell(config.id, "tfjs-wasm", "main", "conv"), config, info, server,
                           lambda d: server.mount(f"/m{time.monotonic_ns()}/", d))
        h.evaluate("cfg => nnjitQoe.load(cfg)", cfg, timeout_s=60)
        warm = h.evaluate("o => nnjitQoe.warm(o)", {"warmup": 1, "warmupMs": 0, "runs": 2}, timeout_s=60)
    got = to_onnx_layout(_decode(warm["outputs"]), cfg)["y"]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() / np.abs(ref).max() <= 1e-5
