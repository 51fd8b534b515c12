"""Launching Debian's Chromium through Playwright (Playwright's own browser downloads fail here).

Flags follow /work/shared/notes/browsers.md: as root Chromium needs --no-sandbox, and without the
background-networking flags it keeps trying to reach the network. Playwright gives every launch a
fresh temporary --user-data-dir (and deletes it on close); it refuses one passed in `args`.
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


def chromium_path() -> str:
    """$NNJIT_CHROMIUM, else Debian's /usr/bin/chromium, else whatever `chromium` is on PATH."""
    for candidate in (os.environ.get("NNJIT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("Chromium not found: install Debian's chromium package or set NNJIT_CHROMIUM")


@contextlib.contextmanager
def launch_chromium(extra_args: Sequence[str] = (), timeout_s: float = 60.0) -> Iterator["playwright.sync_api.Browser"]:  # noqa: F821
    """A headless Chromium `Browser`; it and its whole process tree are gone when the block exits."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_FLAGS, *extra_args],
            timeout=timeout_s * 1000,
        )
        try:
            yield browser
        finally:
            browser.close()
