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
