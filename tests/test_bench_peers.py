"""The peer baselines of `nnjit bench` without a browser: the TF.js program (bench/tfjs_program.py)
restates the ONNX microbenchmark exactly (checked here by computing the program with numpy, in
TF.js's layouts), refuses other models with a reason; the plan and the report place tfjs-wasm and
native-wgpu; native-wgpu runs the bundle's WebGPU plan on this machine's adapter (lavapipe) and
reports n/a when there is none."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nnjit.bench import qoe_metrics as M
from nnjit.bench import tfjs_program as T


def _save(tmp_path, node, inputs: dict, output: tuple, inits: dict):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
                              [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _ort(path, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _emulate(prog, consts, feeds):
    """What the page computes, in numpy, with TF.js's semantics (NHWC, HWIO filters)."""
    get = lambda r: feeds[r["input"]] if "input" in r else consts[r["const"]]  # noqa: E731
    if prog["op"] == "matMul":
        a, b = get(prog["a"]), get(prog["b"])
        y = (a.T if prog["transposeA"] else a) @ (b.T if prog["transposeB"] else b)
    else:
        x, f = get(prog["x"]), get(prog["filter"])
        if prog["op"] == "depthwiseConv2d":  # [kh, kw, C, m] as a dense filter: output c·m + j reads channel c only
            kh, kw, c, m = f.shape
            dense = np.zeros((kh, kw, c, c * m), np.float32)
            for ci in range(c):
                dense[:, :, ci, ci * m:(ci + 1) * m] = f[:, :, ci, :]
            f = dense
        (t, b_), (l, r) = prog["pad"][1], prog["pad"][2]
        x = np.pad(x, [(0, 0), (t, b_), (l, r), (0, 0)])
        kh, kw, _, co = f.shape
        sh, sw = prog["strides"]
        ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
        y = np.zeros((x.shape[0], ho, wo, co), np.float32)
        for i in range(kh):
            for j in range(kw):
                y += np.einsum("nhwc,co->nhwo", x[:, i:i + sh * ho:sh, j:j + sw * wo:sw, :], f[i, j])
    return y + get(prog["bias"]) if "bias" in prog else y


def _check_against_ort(tmp_path, path, feeds):
    prog, consts = T.build(path, {k: v.ndim for k, v in feeds.items()})
    tf_feeds = {k: v.transpose(T.NCHW_TO_NHWC) if prog["nhwc"] else v for k, v in feeds.items()}
    got = T.to_onnx_layout({"y": _emulate(prog, consts, tf_feeds)}, prog)["y"]
    ref = _ort(path, feeds)
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-5
    return prog


def test_gemm_with_alpha_beta_transpose_is_restated_exactly(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(0)
    w, c = rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    path = _save(tmp_path, helper.make_node("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transB=1),
                 {"x": [4, 8]}, ("y", [4, 16]), {"w": w, "c": c})
    prog = _check_against_ort(tmp_path, path, {"x": rng.standard_normal((4, 8)).astype(np.float32)})
    assert prog["op"] == "matMul" and prog["transposeB"] and "bias" in prog


@pytest.mark.parametrize("group,pads,strides", [(1, [1, 1, 1, 1], [1, 1]), (1, [0, 1, 2, 0], [2, 2]), (6, [1, 1, 1, 1], [1, 1])])
def test_conv_and_depthwise_are_restated_exactly(tmp_path, group, pads, strides):
    from onnx import helper

    rng = np.random.default_rng(group)
    cout = 12
    w = rng.standard_normal((cout, 6 // group, 3, 3)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, pads=pads, strides=strides)
    path = _save(tmp_path, node, {"x": [1, 6, 9, 9]}, ("y", None), {"w": w, "b": b})
    prog = _check_against_ort(tmp_path, path, {"x": rng.standard_normal((1, 6, 9, 9)).astype(np.float32)})
    assert prog["op"] == ("conv2d" if group == 1 else "depthwiseConv2d") and prog["nhwc"]


def test_models_beyond_the_microbenchmarks_are_refused_with_a_reason(tmp_path):
    from nnjit.bench import zoo

    with pytest.raises(T.TfjsUnsupported, match=r"single-op gemm/conv microbenchmarks .* this model has 5 nodes \(Gemm, Relu\)"):
        T.build(zoo.cached("mlp"), {"input": 2})
    prog, consts = T.build(zoo.cached("matmul-128x768"), {"A": 2})
    assert prog == {"op": "matMul", "a": {"input": "A"}, "b": {"const": 0}, "transposeA": False, "transposeB": False,
                    "output": "Y", "nhwc": False}
    assert consts[0].shape == (768, 768)


def test_plan_places_tfjs_on_wasm_configs_and_native_wgpu_nowhere():
    from nnjit.bench.qoe_plan import DEFAULT_RUNTIMES, make_cells
    from nnjit.browsers.matrix import load_matrix

    m = load_matrix(None)
    configs = [m.get("chromium-pw-wasm-t1"), m.get("chromium-pw-webgpu")]
    cells = make_cells(configs, ["tfjs-wasm", "native-wgpu", "nnjit-webgpu"], ["matmul-512"], ["worker"])
    assert [(c.config, c.runtime) for c in cells] == [("chromium-pw-wasm-t1", "tfjs-wasm"), ("chromium-pw-webgpu", "nnjit-webgpu")]
    assert "tfjs-wasm" in DEFAULT_RUNTIMES and "synthetic" not in DEFAULT_RUNTIMES


def _rows(rows):
    import pandas as pd

    cols = ["config", "runtime", "placement", "model", "metric", "value", "engine", "backend", "threads", "browser_version",
            "status", "reason"]
    df = pd.DataFrame([dict(zip(cols, r)) for r in rows])
    df["value"] = pd.to_numeric(df["value"])
    return df


def test_report_divides_webgpu_by_native_wgpu_on_the_same_kind_of_adapter():
    from nnjit.bench.report import LATENCY_TITLE, tables

    lava = "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)"
    df = _rows([
        ("native", "onnxruntime-t1", "native", "m", "warm_median_ms", 2.0, "native", "cpu", "", "", "ok", ""),
        ("native", "native-wgpu", "native", "m", "warm_median_ms", 40.0, "native", "webgpu", "", lava, "ok", ""),
        ("native", "native-wgpu", "native", "m", "adapter_software", 1.0, "native", "webgpu", "", lava, "ok", ""),
        ("c-wasm", "tfjs-wasm", "worker", "m", "warm_median_ms", 6.0, "chromium", "wasm", "1", "156", "ok", ""),
        ("c-gpu", "nnjit-webgpu", "worker", "m", "warm_median_ms", 100.0, "chromium", "webgpu", "1", "156", "ok", ""),
        ("c-gpu", "nnjit-webgpu", "worker", "m", "adapter_software", 1.0, "chromium", "webgpu", "1", "156", "ok", ""),
        ("h-gpu", "nnjit-webgpu", "worker", "m", "warm_median_ms", 1.0, "chromium", "webgpu", "1", "156", "ok", ""),
        ("h-gpu", "nnjit-webgpu", "worker", "m", "adapter_software", 0.0, "chromium", "webgpu", "1", "156", "ok", ""),
    ])
    lat = dict(tables(df))[LATENCY_TITLE].set_index(["config", "runtime"])
    assert lat.loc[("c-wasm", "tfjs-wasm"), "ratio_vs_native"] == 3.0
    assert lat.loc[("c-gpu", "nnjit-webgpu"), "ratio_vs_native"] == 2.5
    assert lat.loc[("c-gpu", "nnjit-webgpu"), "native_baseline"] == f"native-wgpu on {lava}"
    assert np.isnan(lat.loc[("h-gpu", "nnjit-webgpu"), "ratio_vs_native"])  # a hardware GPU vs lavapipe: no ratio


def test_adapter_kind_follows_the_runtime_rule():
    assert M.adapter_software({"vendor": "google", "architecture": "swiftshader"}, "webgpu", "nnjit") == 1.0
    assert M.adapter_software({"vendor": "nvidia", "description": "H100", "fallbackAdapter": False}, "webgpu", "nnjit") == 0.0
    assert isinstance(M.adapter_software(None, "webgpu", "ort"), M.NA)
    assert M.adapter_software(None, "wasm", "tfjs").reason == "tfjs on wasm: no WebGPU adapter"


@pytest.fixture(scope="module")
def matmul_work(tmp_path_factory):
    from nnjit.bench.qoe_plan import prepare_model

    info = prepare_model("matmul-128x768", tmp_path_factory.mktemp("nw"), {"wasm", "webgpu"}, log=lambda s: None)
    spec = tmp_path_factory.mktemp("spec") / "spec.json"
    spec.write_text(json.dumps({"bundle": info["bundle"], "inputs": info["inputs"], "refs": info["refs"], "runs": 5}))
    return spec


def _native_wgpu(spec, env=None):
    p = subprocess.run([sys.executable, "-m", "nnjit.bench.native_wgpu", str(spec)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **(env or {})})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_native_wgpu_runs_the_bundle_on_this_adapter(matmul_work):
    res = _native_wgpu(matmul_work)
    assert "na" not in res, res
    assert res["adapter"] and res["device_class"] in ("cpu", "gpu") and len(res["times"]) == 5
    assert all(t > 0 for t in res["times"]) and res["cold_total_ms"] > 0
    assert res["outputs_err"]["max_rel_err"] <= 1e-4


def test_native_wgpu_without_an_adapter_is_na(matmul_work):
    # Vulkan only, with no ICD to load: wgpu finds no adapter (as on a machine without any driver).
    res = _native_wgpu(matmul_work, {"WGPU_BACKEND_TYPE": "Vulkan", "VK_ICD_FILENAMES": "/nonexistent.json",
                                     "VK_DRIVER_FILES": "/nonexistent.json"})
    assert res["na"].startswith("no WebGPU adapter: "), res


def test_bench_native_wgpu_rows_and_report(tmp_path):
    """`--runtimes native-wgpu` alone: no browser, the native rows (onnxruntime 1 and 2 threads,
    native-wgpu with its adapter), and the report's native table shows the adapter."""
    from nnjit.bench.results import read_rows

    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "nnjit.cli.main", "bench", "--configs", "chromium-pw-wasm-t1", "--models", "matmul-128x768",
           "--runtimes", "native-wgpu", "--runs", "5", "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = read_rows(out / "results.csv")
    assert {r["runtime"] for r in rows} == {"onnxruntime-t1", "onnxruntime-t2", "native-wgpu"}
    wg = {r["metric"]: r for r in rows if r["runtime"] == "native-wgpu"}
    assert wg["cell_status"]["status"] == "ok", wg["cell_status"]
    assert float(wg["warm_median_ms"]["value"]) > 0 and float(wg["warm_p90_ms"]["value"]) >= float(wg["warm_median_ms"]["value"])
    assert float(wg["max_rel_err"]["value"]) <= 1e-4
    adapter = wg["warm_median_ms"]["browser_version"]
    assert adapter and wg["warm_median_ms"]["backend"] == "webgpu" and wg["warm_median_ms"]["driver"].startswith("wgpu-py ")
    md = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "report", str(out), "--markdown"], capture_output=True, text=True,
                        timeout=120)
    assert md.returncode == 0, md.stderr[-2000:]
    assert "native-wgpu" in md.stdout and adapter in md.stdout
