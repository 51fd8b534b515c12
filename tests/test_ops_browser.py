"""Every op case through the whole path in headless Chromium, on the WASM backend and on WebGPU
(SwiftShader): compiled bundle → runtime → Worker."""
import pytest

from nnjit.compiler.pipeline import compile_model

from .op_cases import CASES, feeds_for, reference, rel_err, save

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("op-bundles")
    out = {}
    for name in CASES:
        save(name, root / f"{name}.onnx")
        compile_model(root / f"{name}.onnx", root / name, backends=("wasm", "webgpu"))
        out[name] = root / name
    return out


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_op_in_chromium(name, backend, compiled, request):
    harness = request.getfixturevalue("harness" if backend == "wasm" else "chromium_gpu")
    feeds = feeds_for(name)
    res = harness.run_bundle(compiled[name], feeds, runs=1, backend=backend)
    assert res["backend"] == backend, res["fallback_reason"]
    ref = reference(name, feeds)
    for k, r in ref.items():
        out = res["outputs"][k]
        assert out.shape == r.shape and out.dtype == r.dtype, (k, out.shape, out.dtype)
        assert rel_err(out, r) <= CASES[name][2], (k, rel_err(out, r))
