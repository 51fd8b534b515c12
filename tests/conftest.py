"""Fixtures shared by every test folder."""
import pytest


@pytest.fixture(scope="session")
def harness():
    from nnjit.browsers.page_runner import BrowserHarness

    with BrowserHarness(timeout_s=60) as h:
        yield h


@pytest.fixture(scope="session")
def chromium_gpu():
    """Chromium with --enable-unsafe-webgpu (the SwiftShader adapter on a machine without a GPU)."""
    from nnjit.browsers.page_runner import BrowserHarness

    with BrowserHarness(webgpu=True, timeout_s=600) as h:
        yield h


@pytest.fixture(scope="session")
def zoo_bundle(tmp_path_factory):
    """zoo_bundle(name, shapes) → a bundle (WASM and WebGPU kernels) of that zoo model, compiled once
    per session for each distinct binding of its dynamic dims."""
    from nnjit.bench import zoo
    from nnjit.compiler.pipeline import compile_model

    root = tmp_path_factory.mktemp("zoo-bundles")
    built = {}

    def get(name, shapes=None):
        key = (name, repr(sorted((shapes or {}).items())))
        if key not in built:
            built[key] = root / f"{name}-{len(built)}"
            compile_model(zoo.cached(name), built[key], shapes, backends=("wasm", "webgpu"))
        return built[key]
    return get
