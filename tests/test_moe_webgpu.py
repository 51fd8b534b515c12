"""MoE bundles on WebGPU through wgpu-py (lavapipe here): the fused moe step's WGSL kernel in a whole
bundle, moe-digits and transformers' Mixtral block, against onnxruntime (docs/moe.md)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nnjit.bench import zoo, zoo_moe
from nnjit.compiler.pipeline import compile_model

from tests.test_moe import _ort


def _gpu_session(bundle):
    pytest.importorskip("wgpu")
    from nnjit.compiler.gpu_runtime import GPUSession
    try:
        return GPUSession(bundle)
    except RuntimeError as e:  # no Vulkan adapter on this machine
        pytest.skip(str(e))


def test_moe_digits_on_webgpu(tmp_path):
    compile_model(zoo.cached("moe-digits"), tmp_path / "b", {"input": [7, 64]}, backends=("wasm", "webgpu"))
    s = _gpu_session(tmp_path / "b")
    x = zoo_moe.digits_flat()[2][:7]
    got, want = s.run({"input": x})["logits"], _ort(zoo.cached("moe-digits"), x)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_mixtral_block_on_webgpu(tmp_path):
    pytest.importorskip("transformers")
    block = zoo_moe.mixtral_block(37, 19, 5, 2, seed=3)
    zoo._torch_export(block, (torch.zeros(1, 7, 37),), tmp_path / "m.onnx", ["input"], ["y"])
    compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm", "webgpu"))
    x = np.random.default_rng(4).standard_normal((1, 7, 37)).astype(np.float32)
    got, want = _gpu_session(tmp_path / "b").run({"input": x})["y"], _ort(tmp_path / "m.onnx", x)
    assert np.abs(got - want).max() <= 2e-5 * max(1.0, np.abs(want).max())
