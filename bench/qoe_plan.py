"""What `nnjit bench` runs: cells (config × runtime × placement × model), the runtimes, the synthetic
models of the fidelity tests, the --quick set, and each model's prepared files (bundle, ONNX file,
seeded inputs, onnxruntime reference outputs, real data where the model has some) that the browser
children read.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from nnjit.compiler.errors import NnjitError

from . import qoe_dataset

RUNTIMES = ("nnjit-wasm", "nnjit-webgpu", "ort-wasm", "ort-webgpu", "tfjs-wasm", "synthetic")
DEFAULT_RUNTIMES = RUNTIMES[:5]
# Baselines outside the browser, measured once per model (config `native`), not browser cells.
NATIVE_RUNTIMES = ("native-wgpu",)
PLACEMENTS = ("worker", "main")
# --quick: one config per engine (plus Chromium's second driver), one small zoo model, nnjit vs ORT-web.
QUICK_CONFIGS = ("chromium-pw-wasm-t1", "chromium-sel-wasm-t1", "firefox-bidi-wasm-t1", "webkit-sel-wasm-t1")
QUICK_MODELS = ("matmul-128x768",)
QUICK_RUNTIMES = ("nnjit-wasm", "ort-wasm")
# The synthetic "models": a busy loop of `work` × 1e6 iterations per run, with planted effects.
SYNTHETIC_RE = re.compile(r"^busy(?:-x(?P<scale>\d+(?:\.\d+)?))?(?:-block(?P<block>\d+))?(?:-alloc(?P<alloc>\d+))?(?P<hang>-hang)?$")


class PlanError(NnjitError):
    """A bad --models / --runtimes / --configs value."""


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    config: str
    runtime: str
    placement: str
    model: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.config, self.runtime, self.placement, self.model)


def synthetic_options(model: str) -> dict | None:
    """busy[-xSCALE][-blockMS][-allocMIB][-hang] → page options, or None for a zoo model."""
    m = SYNTHETIC_RE.match(model)
    if not m:
        return None
    return {"work": 1, "scale": float(m["scale"] or 1), "blockMs": int(m["block"] or 0), "allocMB": int(m["alloc"] or 0),
            "hang": bool(m["hang"])}


def runtime_backend(runtime: str) -> str | None:
    return None if runtime == "synthetic" else runtime.split("-", 1)[1]


def make_cells(configs, runtimes: list[str], models: list[str], placements=PLACEMENTS) -> list[Cell]:
    """Every runtime whose backend is the config's backend (synthetic: any), × placement × model;
    synthetic models only with the synthetic runtime and zoo models only with the others."""
    bad = [r for r in runtimes if r not in RUNTIMES + NATIVE_RUNTIMES]
    if bad:
        raise PlanError(f"unknown runtime {', '.join(bad)} (known: {', '.join(RUNTIMES + NATIVE_RUNTIMES)})")
    cells = []
    for c in configs:
        for r in runtimes:
            if r in NATIVE_RUNTIMES:
                continue
            if r != "synthetic" and runtime_backend(r) != c.backend:
                continue
            for m in models:
                if (synthetic_options(m) is not None) != (r == "synthetic"):
                    continue
                for p in placements:
                    cells.append(Cell(c.id, r, p, m))
    return cells


def prepare_model(name: str, work: Path, backends: set[str], log=print) -> dict:
    """Compile `name` (a zoo model) into work/name/bundle, write seeded inputs and onnxruntime's
    outputs for them; returns the paths the child needs. Reused when already there (--resume)."""
    from nnjit.bench import zoo
    from nnjit.bench.compare import bind_shapes, native_outputs
    from nnjit.bench.inputs import random_inputs
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.pipeline import compile_model

    root = work / name
    bundle = root / "bundle"
    done = root / "prepared.json"
    if done.is_file():
        info = json.loads(done.read_text())
        if set(backends) <= set(info["backends"]) and ("dataset" in info or name not in qoe_dataset.KINDS):
            return info
    onnx_path = zoo.cached(name)
    log(f"compiling {name} ({', '.join(sorted(backends))})")
    compile_model(onnx_path, bundle, bind_shapes(zoo.spec(name)), backends=tuple(sorted(backends)))
    feeds = random_inputs(read_manifest(bundle)["inputs"], seed=0)
    np.savez(root / "inputs.npz", **feeds)
    np.savez(root / "refs.npz", **native_outputs(onnx_path, feeds))
    info = {"model": name, "onnx": str(onnx_path), "bundle": str(bundle), "inputs": str(root / "inputs.npz"),
            "refs": str(root / "refs.npz"), "backends": sorted(backends),
            "weights_bytes": (bundle / "weights.bin").stat().st_size, "onnx_bytes": onnx_path.stat().st_size,
            **qoe_dataset.prepare(name, root, read_manifest(bundle), onnx_path)}
    done.write_text(json.dumps(info))
    return info
