"""Browsers on another machine: a Selenium Grid (or any W3C WebDriver endpoint, e.g. a bare
chromedriver --port=N) for the matrix's Selenium configurations, and a Playwright server
(`playwright run-server`) for its Playwright ones. `nnjit bench --grid URL --pw-endpoint WS`.

Both get the launch recipe the local drivers use (drivers.py, chromium.py, firefox.py): Debian's
browser binary, the flags of /work/shared/notes/browsers.md, the config's args and prefs. Paths are
the remote machine's, so they are not looked up here: Debian's by default, or $NNJIT_REMOTE_CHROMIUM,
$NNJIT_REMOTE_FIREFOX, $NNJIT_REMOTE_MINIBROWSER. A Playwright server drops a client's executable
path, args and prefs unless it was started with `--unsafe`; without them it would try its own
downloaded browsers, which do not exist here, so the launch error says so.

The browser's processes are not children of the harness: OS-side memory is n/a for these handles
(bench/qoe_page.py), never sampled from whatever happens to run here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import urllib.parse

from .drivers import MINIBROWSER_PATHS, LaunchError, PlaywrightHandle, SeleniumHandle, chromium_options, webkit_options
from .matrix import BrowserConfig

REMOTE_DEFAULTS = {"chromium": ("NNJIT_REMOTE_CHROMIUM", "/usr/bin/chromium"),
                   "firefox": ("NNJIT_REMOTE_FIREFOX", "/usr/bin/firefox-esr"),
                   "minibrowser": ("NNJIT_REMOTE_MINIBROWSER", MINIBROWSER_PATHS[0])}


def remote_path(what: str) -> str:
    env_var, default = REMOTE_DEFAULTS[what]
    return os.environ.get(env_var) or default


def secure_origin(config, origin: str):
    """`config` with `origin` treated as a secure context when it is not loopback: threads, the memory
    APIs and crypto.subtle (bundle hash checks) need one, and plain http is secure only on loopback.
    WebKitGTK has no such switch: there, serve on loopback (or tunnel to it)."""
    host = urllib.parse.urlsplit(origin).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return config
    if config.engine == "chromium":
        return dataclasses.replace(config, args=(*config.args, f"--unsafely-treat-insecure-origin-as-secure={origin}"))
    if config.engine == "firefox":
        return dataclasses.replace(config, prefs={**config.prefs, "dom.securecontext.allowlist": host})
    return config


def _oneline(e: Exception, limit: int = 400) -> str:
    return " ".join(str(e).split())[:limit]


def playwright_launch_options(config: BrowserConfig, timeout_s: float) -> dict:
    """The launch options a Playwright server applies (camelCase: they travel as JSON in the
    x-playwright-launch-options header of the WebSocket handshake)."""
    from .chromium import CHROMIUM_FLAGS

    opts: dict = {"headless": True, "timeout": int(timeout_s * 1000)}
    if config.engine == "chromium":
        opts.update(executablePath=remote_path("chromium"), args=[*CHROMIUM_FLAGS, *config.args])
    elif config.engine == "firefox":
        # WebDriver BiDi with the stock binary, as firefox.py does locally.
        opts.update(channel="moz-firefox", executablePath=remote_path("firefox"), firefoxUserPrefs=dict(config.prefs or {}))
    else:
        raise LaunchError(f"no Playwright launcher for {config.engine}")
    return opts


class RemotePlaywrightHandle(PlaywrightHandle):
    def __init__(self, config: BrowserConfig, timeout_s: float, endpoint: str):
        self.remote = endpoint
        super().__init__(config, timeout_s)

    def _launch(self):
        from .playwright_driver import playwright

        opts = playwright_launch_options(self.config, self.timeout_s)
        pw = self._stack.enter_context(playwright())
        browser_type = pw.chromium if self.config.engine == "chromium" else pw.firefox
        try:
            browser = browser_type.connect(self.remote, timeout=self.timeout_s * 1000,
                                           headers={"x-playwright-launch-options": json.dumps(opts)})
        except Exception as e:  # Playwright's Error: refused, timed out, or the server's launch failed
            msg = _oneline(e)
            if "Executable doesn't exist" in msg:  # first: the launch reason is cut at 400 characters
                raise LaunchError(f"Playwright server {self.remote} ignored the executable path, args and prefs: start it "
                                  f"with `playwright run-server --unsafe` ({msg})") from None
            raise LaunchError(f"Playwright server {self.remote}: {msg}") from None
        self._stack.callback(browser.close)
        return browser


class RemoteSeleniumHandle(SeleniumHandle):
    def __init__(self, config: BrowserConfig, timeout_s: float, url: str):
        self.remote = url
        super().__init__(config, timeout_s)

    def _start(self):
        from selenium import webdriver
        from selenium.webdriver.remote.client_config import ClientConfig
        from selenium.webdriver.remote.remote_connection import RemoteConnection

        c = self.config
        client = ClientConfig(remote_server_addr=self.remote, timeout=self.timeout_s)
        if c.engine == "chromium":
            from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection

            # Chromium's connection knows chromedriver's CDP endpoint (goog/cdp/execute), which a Grid
            # forwards to its node: CPU throttling works remotely too.
            options = chromium_options(c, remote_path("chromium"), None)
            executor = ChromiumRemoteConnection(self.remote, vendor_prefix="goog", browser_name="chrome",
                                                ignore_proxy=True, client_config=client)
        elif c.engine == "webkit":
            # JSC options (c.env) cannot travel in a W3C session: the node's environment must hold them.
            options = webkit_options(c, remote_path("minibrowser"))
            executor = RemoteConnection(ignore_proxy=True, client_config=client)
        else:
            raise LaunchError(f"no Selenium launcher for {c.engine}")
        try:
            return webdriver.Remote(command_executor=executor, options=options)
        except Exception as e:  # refused, not a WebDriver endpoint, no node for these capabilities
            raise LaunchError(f"WebDriver endpoint {self.remote}: {type(e).__name__}: {_oneline(e)}") from None

    def set_cpu_throttle(self, rate: float) -> None:
        if self.config.engine != "chromium":
            super().set_cpu_throttle(rate)
        self.webdriver.execute("executeCdpCommand", {"cmd": "Emulation.setCPUThrottlingRate", "params": {"rate": rate}})
