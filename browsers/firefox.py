"""Launching Debian's Firefox ESR through Playwright's WebDriver BiDi mode.

Playwright's classic Firefox driver needs its own patched build (which cannot be downloaded here);
the BiDi mode (channel "moz-firefox") drives the stock binary. It works with playwright 1.58–1.64.1
(1.65 fails at new_page: keep the pin). Playwright writes a fresh temporary profile per launch, with
its preferences that keep Firefox off the network, and deletes it on close. WebGPU needs two prefs;
Firefox then finds lavapipe through Vulkan (a fallback adapter), where every submit and mapAsync
waits in ~100 ms steps: never compare its WebGPU latency with Chromium's
(/work/shared/notes/browsers.md).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping

WEBGPU_PREFS = {"dom.webgpu.enabled": True, "gfx.webgpu.ignore-blocklist": True}


def firefox_path() -> str:
    """$NNJIT_FIREFOX, else Debian's firefox-esr, else `firefox-esr` or `firefox` on PATH."""
    for candidate in (os.environ.get("NNJIT_FIREFOX"), "/usr/bin/firefox-esr", shutil.which("firefox-esr"), shutil.which("firefox")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("Firefox not found: install Debian's firefox-esr package or set NNJIT_FIREFOX")


@contextlib.contextmanager
def launch_firefox(webgpu: bool = False, timeout_s: float = 60.0, *,
                   prefs: Mapping[str, object] | None = None) -> Iterator["playwright.sync_api.Browser"]:  # noqa: F821
    """A headless Firefox `Browser` (WebGPU enabled with `webgpu`); gone with its profile when the block exits.
    `prefs` (e.g. a browser matrix config's JIT tier) go on top of the WebGPU ones."""
    from .playwright_driver import playwright

    with playwright() as pw:
        browser = pw.firefox.launch(
            channel="moz-firefox",
            executable_path=firefox_path(),
            headless=True,
            firefox_user_prefs={**(WEBGPU_PREFS if webgpu else {}), **(prefs or {})},
            timeout=timeout_s * 1000,
        )
        try:
            yield browser
        finally:
            browser.close()
