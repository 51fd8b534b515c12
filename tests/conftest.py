"""Fixtures shared by every test folder."""
import pytest


@pytest.fixture(scope="session")
def harness():
    from nnjit.browsers.page_runner import BrowserHarness

    with BrowserHarness(timeout_s=60) as h:
        yield h
