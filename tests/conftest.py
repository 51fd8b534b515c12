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
def gpu_session():
    """compiler.gpu_runtime.GPUSession where wgpu-py finds an adapter (lavapipe here), else a skip."""
    pytest.importorskip("wgpu")
    from nnjit.compiler.gpu_runtime import GPUSession
    from nnjit.compiler.wgpu_native import device
    try:
        device()
    except RuntimeError as e:
        pytest.skip(str(e))
    return GPUSession


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


# The longest files first (measured, 2 cores): `make test`'s `--dist loadfile` hands whole files to the
# workers in collection order, and a long file dealt last kept one worker busy alone for a minute.
LONGEST_FIRST = (
    "tests/browser/test_generate.py", "tests/test_decoders.py", "tests/test_models_webgpu.py", "tests/test_ops_browser.py",
    "tests/test_lora_merge.py", "tests/test_ops_native.py", "tests/test_models.py", "tests/browser/test_bench_remote.py",
    "tests/browser/test_webgpu.py", "tests/test_lora_switch.py", "tests/fuzz/test_fuzz_bundle.py", "tests/test_js_units.py",
    "tests/browser/test_lora_switch_browser.py", "tests/browser/test_tuning.py", "tests/browser/test_matrix.py",
    "tests/test_conformance.py", "tests/browser/test_cli.py", "tests/browser/test_fuzz_manifests.py",
)


def pytest_collection_modifyitems(items):
    rank = {f: i for i, f in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
