"""Fixtures for the browser tests: one server + headless Chromium for the whole session, and the
hand-made bundles of nnjit_test_bundles."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nnjit_test_bundles import make_bundles, madd_onnx


@pytest.fixture(autouse=True)
def _needs_chromium(request):
    if request.node.get_closest_marker("browser"):
        from nnjit.browsers.chromium import chromium_path

        try:
            chromium_path()
        except FileNotFoundError as e:
            pytest.skip(str(e))


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, Path]:
    return make_bundles(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="session")
def madd_model(tmp_path_factory) -> Path:
    return madd_onnx(tmp_path_factory.mktemp("models") / "madd.onnx")


@pytest.fixture
def tampered(bundles, tmp_path):
    """A fresh copy of the madd bundle to corrupt: tampered('weights.bin') flips one byte of that file."""
    def make(rel: str) -> Path:
        copy = shutil.copytree(bundles["madd"], tmp_path / "madd")
        data = bytearray((copy / rel).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / rel).write_bytes(bytes(data))
        return copy
    return make


@pytest.fixture(scope="session")
def gpu_harness():
    """A second Chromium, launched with WebGPU (SwiftShader); `harness` stays without it."""
    from nnjit.browsers.page_runner import BrowserHarness

    with BrowserHarness(timeout_s=60, webgpu=True) as h:
        yield h


@pytest.fixture(scope="session")
def firefox_harness():
    """Firefox ESR with WebGPU through Playwright's BiDi mode, or a skip saying why it cannot start."""
    from nnjit.browsers.firefox import firefox_path
    from nnjit.browsers.page_runner import BrowserHarness

    try:
        firefox_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    h = BrowserHarness(timeout_s=60, browser_name="firefox", webgpu=True)
    try:
        h.__enter__()
    except Exception as e:  # Playwright raises its own Error for a browser that fails to launch
        pytest.skip(f"Firefox did not launch through Playwright's BiDi mode: {' '.join(str(e).split())[:300]}")
    try:
        yield h
    finally:
        h.__exit__(None, None, None)
