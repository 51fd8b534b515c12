"""Driver glue for one QoE cell: open bench/pages/qoe.html on a launched matrix browser, run the
phases (idle, cold load, warm runs, inference loop with real input events, page memory), and emit
each metric as soon as it is known (bench/qoe_metrics.py computes them).

Input events go through the driver's own input pipeline (Playwright page.mouse / page.keyboard,
Selenium ActionChains), never synthetic DOM events, so they queue behind a busy main thread as a
user's would.
"""
from __future__ import annotations

import base64
import dataclasses
import time
from pathlib import Path

import numpy as np

from . import qoe_metrics as M
from .qoe_gui import measure_gui
from .qoe_plan import Cell, runtime_backend, synthetic_options
from .tfjs_program import to_onnx_layout


@dataclasses.dataclass(frozen=True)
class Settings:
    """docs/metrics.md's defaults; tests shrink the windows."""
    idle_s: float = 2.0
    warmup: int = 3
    warmup_ms: int = 1000
    runs: int = 20
    interactions: int = 20
    gap_ms: int = 250
    loop_min_s: float = 5.0
    loop_min_runs: int = 20
    tune_ms: int = 0
    page_timeout_s: float = 300.0
    block_lead_ms: int = 30
    gui_loads: int = 5
    # The real-time stream (docs/metrics.md §5): 60 frames at 30 fps, each sample held 2 frames.
    stream_fps: int = 30
    stream_frames: int = 60
    stream_hold: int = 2


class LoadError(RuntimeError):
    """The runtime could not load the model in this browser (a missing feature: no WebGPU adapter;
    or the runtime failed): the cell's remaining metrics get this reason, and the browser goes on."""


def dispatch(handle, kind: str) -> None:
    if handle.driver == "playwright":
        if kind == "click":
            handle.page.mouse.down()
            handle.page.mouse.up()
        else:
            handle.page.keyboard.press("a")
        return
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    chain = ActionChains(handle.webdriver)
    if kind == "click":
        chain.move_to_element(handle.webdriver.find_element(By.ID, "target")).click()
    else:
        chain.send_keys("a")
    chain.perform()


def _loop(handle, s: Settings, block_ms: int) -> dict:
    start = handle.evaluate("() => nnjitQoe.loopStart()", timeout_s=s.page_timeout_s)
    if handle.driver == "playwright":
        # Parked on the target once: a click is then a press and a release, with no move before it
        # that would itself wait behind a busy main thread.
        handle.page.mouse.move(start["x"], start["y"])
    t0 = time.monotonic()
    for i in range(s.interactions):
        time.sleep(max(0.0, t0 + i * s.gap_ms / 1000 - time.monotonic()))
        if block_ms:
            handle.evaluate("o => nnjitQoe.plantBlock(o)", {"leadMs": s.block_lead_ms, "blockMs": block_ms})
        dispatch(handle, "click" if i % 2 == 0 else "key")
    time.sleep(max(0.0, t0 + s.loop_min_s - time.monotonic()))
    deadline = time.monotonic() + s.page_timeout_s
    while time.monotonic() < deadline:
        state = handle.evaluate("() => nnjitQoe.loopRuns()")
        if state["error"] or state["runs"] >= s.loop_min_runs:
            break
        time.sleep(0.1)
    loop = handle.evaluate("() => nnjitQoe.loopStop()", timeout_s=s.page_timeout_s)
    if loop["error"]:
        raise RuntimeError(f"a run failed during the inference loop: {loop['error']}")
    return loop


def _page_config(cell: Cell, config, model: dict | None, server, mount) -> dict:
    placement_worker = cell.placement == "worker"
    syn = synthetic_options(cell.model)
    if syn is not None:
        return {"runtime": "synthetic", "worker": placement_worker, **syn}
    from nnjit.browsers.page_data import write_inputs

    if cell.runtime == "tfjs-wasm":
        from .tfjs_program import prepare_model

        t = prepare_model(model)  # the parent prepared it (or wrote the cell n/a): this reads it back
        root = mount(t["dir"])
        return {"runtime": "tfjs", "worker": placement_worker, "threads": config.threads, "inputsUrl": root + "inputs.bin",
                "inputs": t["inputs"], "programUrl": root + "program.json", "constsUrl": root + "consts.bin",
                "nhwc": t["program"]["nhwc"], "weightsBytes": t["weights_bytes"]}
    inputs = dict(np.load(model["inputs"]))
    data_dir = Path(model["bundle"]).parent / "page-inputs"
    data_dir.mkdir(exist_ok=True)
    specs = write_inputs(data_dir / "inputs.bin", inputs)
    cfg = {"inputsUrl": mount(data_dir) + "inputs.bin", "inputs": specs, "backend": runtime_backend(cell.runtime),
           "worker": placement_worker, "threads": config.threads}
    if cell.runtime.startswith("nnjit"):
        return {**cfg, "runtime": "nnjit", "bundleUrl": mount(model["bundle"])}
    onnx = Path(model["onnx"])
    return {**cfg, "runtime": "ort", "modelUrl": mount(onnx.parent) + onnx.name}


def _decode(outputs: dict | None) -> dict | None:
    if not outputs:
        return None
    return {n: np.frombuffer(bytearray(base64.b64decode(o["b64"])), dtype=np.dtype(o["dtype"])).reshape(o["dims"])
            for n, o in outputs.items()}


def _real_data(handle, kind: str, model: dict | None, s: Settings, mount) -> dict:
    """§5's task metric on the model's real data and its real-time accuracy on a frame stream."""
    why = {"synthetic": "synthetic runtime: no model", "tfjs": "tfjs-wasm runs the single-op microbenchmarks only"}.get(kind)
    if not why and "dataset" not in model:
        why = f"{model['model']}: no real data (a synthetic microbenchmark)"
    if why:
        return {**M.task(None, None, None, why), **M.realtime(None, None, why)}
    from nnjit.browsers.page_data import write_inputs

    n, output = model["dataset_n"], model["dataset_output"]
    data_dir = Path(model["bundle"]).parent / "page-inputs"
    data_dir.mkdir(exist_ok=True)
    specs = write_inputs(data_dir / "dataset.bin", dict(np.load(model["dataset"])))
    got = handle.evaluate("o => nnjitQoe.dataset(o)", {"url": mount(data_dir) + "dataset.bin", "specs": specs, "n": n,
                                                       "output": output}, timeout_s=s.page_timeout_s)
    refs = dict(np.load(model["dataset_refs"]))
    out = M.task(_decode({output: got})[output], refs, model["dataset_kind"])
    if model["dataset_kind"] != "classifier":
        return {**out, **M.realtime(None, None, "an embedding model: the stream is scored by top-1")}
    stream = handle.evaluate("o => nnjitQoe.stream(o)", {"fps": s.stream_fps, "frames": s.stream_frames,
                                                          "hold": s.stream_hold, "output": output}, timeout_s=s.page_timeout_s)
    return {**out, **M.realtime(stream, refs["out"].reshape(n, -1).argmax(1))}


def measure_cell(handle, server, cell: Cell, config, model: dict | None, s: Settings, sampler, emit, stage) -> None:
    """Measure `cell`; emit(metric, value | NA, unit) for each metric as it is known; stage(text) says
    what runs now (a hang is reported as the stage it hung in). Raises LoadError when the runtime
    cannot load here, anything else when the browser failed."""
    mounts: list[str] = []

    def mount(directory) -> str:
        prefix = f"/cell{len(mounts)}-{time.monotonic_ns()}/"
        mounts.append(prefix)
        return server.mount(prefix, directory)

    try:
        stage("opening the bench page")
        handle.open(server.url("/pages/qoe.html"))
        for _ in range(50):  # module scripts run after parsing; a page that failed never defines it
            if handle.evaluate("() => Boolean(window.nnjitQoe)"):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("qoe.html did not start (its module script failed to load)")
        features = handle.evaluate("() => nnjitQoe.features()")
        stage("idle window")
        sampler.mark()
        idle = handle.evaluate("ms => nnjitQoe.idle(ms)", int(s.idle_s * 1000), timeout_s=s.page_timeout_s)
        sampler.wait_for(3)  # at least 3 samples of the page without a model (more with a longer idle window)
        pss_idle = sampler.median_of_last(5)
        sampler.mark()
        stage("cold start")
        cfg = _page_config(cell, config, model, server, mount)
        if cell.runtime.startswith("nnjit"):
            cfg["tuneMs"] = s.tune_ms
        try:
            load = handle.evaluate("cfg => nnjitQoe.load(cfg)", cfg, timeout_s=s.page_timeout_s)
        except Exception as e:
            if type(e).__name__ == "ScriptError":
                raise LoadError(f"{cell.runtime} did not load: {e}") from None
            raise
        kind = load["info"]["runtime"]
        stage("warm runs")
        warm = handle.evaluate("o => nnjitQoe.warm(o)", {"warmup": s.warmup, "warmupMs": s.warmup_ms, "runs": s.runs}, timeout_s=s.page_timeout_s)
        for k, v in M.latency(load["cold"], warm["times"], kind).items():
            emit(k, v)
        threads = load["info"].get("threads")
        emit("threads_run", float(threads) if threads is not None else M.NA(f"{kind}: not a threaded runtime"))
        emit("adapter_software", M.adapter_software(load["info"].get("gpu"), load["info"].get("backend"), kind))
        refs = dict(np.load(model["refs"])) if model else None
        for k, v in M.accuracy(to_onnx_layout(_decode(warm["outputs"]), cfg), refs).items():
            emit(k, v)
        stage("real data")
        for k, v in _real_data(handle, kind, model, s, mount).items():
            emit(k, v)
        stage("inference loop with input events")
        syn = synthetic_options(cell.model) or {}
        loop = _loop(handle, s, syn.get("blockMs", 0))
        for k, v in M.responsiveness(loop, features, config.engine, s.interactions).items():
            emit(k, v)
        for k, v in M.smoothness(idle["frames"], loop).items():
            emit(k, v)
        stage("memory")
        page_mem = handle.evaluate("() => nnjitQoe.memory()", timeout_s=30)
        weights = None
        if model:
            weights = model["weights_bytes"] if cell.runtime.startswith("nnjit") else cfg.get("weightsBytes", model["onnx_bytes"])
        for k, v in M.memory(pss_idle, sampler.peak(), weights, page_mem, config.engine, os_na=sampler.na_reason).items():
            emit(k, v)
        for k, v in M.runtime_memory(load["info"], kind).items():
            emit(k, v)
        stage("releasing")
        handle.evaluate("() => nnjitQoe.release()", timeout_s=30)
        for k, v in measure_gui(handle, server, cfg, s.gui_loads, config.engine, s.page_timeout_s, stage).items():
            emit(k, v)
    finally:
        for prefix in mounts:
            server.unmount(prefix)
