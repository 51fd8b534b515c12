"""One Playwright driver per thread, shared by every browser launched in it.

Playwright's sync API cannot start a second driver while one runs in the same thread ("using
Playwright Sync API inside the asyncio loop"), so two browsers open at once (a Chromium with WebGPU
next to one without, a Firefox) must come from the same driver. It starts with the first user and
stops when the last one leaves.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_local = threading.local()


@contextlib.contextmanager
def playwright() -> Iterator["playwright.sync_api.Playwright"]:  # noqa: F821
    from playwright.sync_api import sync_playwright

    if getattr(_local, "users", 0) == 0:
        _local.manager = sync_playwright()
        _local.pw = _local.manager.__enter__()
    _local.users = getattr(_local, "users", 0) + 1
    try:
        yield _local.pw
    finally:
        _local.users -= 1
        if _local.users == 0:
            manager, _local.manager, _local.pw = _local.manager, None, None
            manager.__exit__(None, None, None)
