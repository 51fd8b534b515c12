"""Every op case through the whole compiler path onto the WebGPU backend, executed natively by
wgpu-py (lavapipe here) with the browser backend's buffer layout, against onnxruntime."""
import numpy as np
import pytest

from nnjit.compiler.pipeline import compile_model

from .op_cases import CASES, feeds_for, reference, rel_err, save

wgpu = pytest.importorskip("wgpu")


@pytest.fixture(scope="module")
def gpu():
    from nnjit.compiler.wgpu_native import device
    try:
        return device()
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_webgpu(name, gpu, tmp_path):
    from nnjit.compiler.gpu_runtime import GPUSession
    save(name, tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm", "webgpu"))
    feeds = feeds_for(name)
    out = GPUSession(tmp_path / "b").run(feeds)
    for k, r in reference(name, feeds).items():
        assert out[k].shape == r.shape and out[k].dtype == r.dtype, (k, out[k].shape, out[k].dtype)
        assert rel_err(out[k], r) <= CASES[name][2], (k, rel_err(out[k], r))
        if r.dtype.kind == "f":
            assert np.array_equal(np.isnan(out[k]), np.isnan(r)), k
