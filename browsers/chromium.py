"""Launching Debian's Chromium through Playwright (Playwright's own browser downloads fail here).

Flags follow /work/shared/notes/browsers.md: as root Chromium needs --no-sandbox, and without the
background-networking flags it keeps trying to reach the network. Playwright gives every launch a
fresh temporary --user-data-dir (and deletes it on close); it refuses one passed in `args`.

WebGPU needs --enable-unsafe-webgpu on Linux; Chromium then offers SwiftShader (a CPU fallback
adapter). --use-angle=vulkan makes requestAdapter hang here, so it is not used. The developer
features flag stops the 100 µs quantization of timestamp queries, which per-step profiles need.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)
WEBGPU_FLAGS = ("--enable-unsafe-webgpu", "--enable-webgpu-developer-features")


def chromium_path() -> str:
    """$NNJIT_CHROMIUM, else Debian's /usr/bin/chromium, else whatever `chromium` is on PATH."""
    for candidate in (os.environ.get("NNJIT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("Chromium not found: install Debian's chromium package or set NNJIT_CHROMIUM")


@contextlib.contextmanager
def launch_chromium(extra_args: Sequence[str] = (), timeout_s: float = 60.0,
                    webgpu: bool = False) -> Iterator["playwright.sync_api.Browser"]:  # noqa: F821
    """A headless Chromium `Browser` (WebGPU enabled with `webgpu`); it and its whole process tree are
    gone when the block exits."""
    from .playwright_driver import playwright

    with playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_FLAGS, *(WEBGPU_FLAGS if webgpu else ()), *extra_args],
            timeout=timeout_s * 1000,
        )
        try:
            yield browser
        finally:
            browser.close()
