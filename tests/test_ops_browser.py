"""Every op case through the whole path in headless Chromium, on the WASM backend and on WebGPU
(SwiftShader): compiled bundle → runtime → Worker. All cases of a backend run in one page load
(BrowserHarness.run_bundles; each case still its own session); each case is judged by its own test."""
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


@pytest.fixture(scope="module")
def batch(compiled, request):
    """backend → name → the page's result, run once per backend on first use."""
    done: dict[str, dict] = {}

    def get(backend: str) -> dict:
        if backend not in done:
            harness = request.getfixturevalue("harness" if backend == "wasm" else "chromium_gpu")
            done[backend] = harness.run_bundles({n: (compiled[n], feeds_for(n)) for n in sorted(CASES)}, backend=backend)
        return done[backend]

    return get


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_op_in_chromium(name, backend, batch):
    res = batch(backend)[name]
    assert res["ok"], res["error"]
    assert res["backend"] == backend
    ref = reference(name, feeds_for(name))
    for k, r in ref.items():
        out = res["outputs"][k]
        assert out.shape == r.shape and out.dtype == r.dtype, (k, out.shape, out.dtype)
        assert rel_err(out, r) <= CASES[name][2], (k, rel_err(out, r))
