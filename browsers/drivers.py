"""Driver-neutral browser handles for the matrix: Playwright (Chromium; Firefox in BiDi mode) and
Selenium (Chromium through Debian's chromedriver; WebKitGTK through WebKitWebDriver + MiniBrowser).

Every handle does the same four things — open(url), evaluate(fn, arg), set_cpu_throttle(rate),
close() — so the probe and the bench runner never branch on the driver. Launch recipes follow
/work/shared/notes/browsers.md: Selenium gets the driver binary's path in its Service so Selenium
Manager never tries to download one, and WebKitGTK only runs with an X display (it hangs without
one), so a private Xvfb is started when DISPLAY is unset. Browsers on another machine (a Selenium
Grid, a Playwright server) are browsers/remote.py's subclasses of these handles.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

from .matrix import BrowserConfig

MINIBROWSER_PATHS = ("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser", "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
                     "/usr/libexec/webkit2gtk-4.1/MiniBrowser")


class LaunchError(RuntimeError):
    """The configuration's browser could not start here; the message says why (missing binary, driver
    error, no display, timeout)."""


class ScriptError(RuntimeError):
    """A script evaluated in the page threw or timed out; the message is the page's error."""


def _which(env_var: str, *candidates: str, what: str) -> str:
    for c in (os.environ.get(env_var), *candidates):
        path = shutil.which(c) if c and "/" not in c else c
        if path and os.access(path, os.X_OK):
            return path
    raise LaunchError(f"{what} not found (set {env_var} or {_INSTALL_HINT.get(what, 'install it')})")


_INSTALL_HINT = {"chromedriver": "install Debian's chromium-driver", "WebKitWebDriver": "install Debian's webkit2gtk-driver",
                 "MiniBrowser": "install Debian's libwebkit2gtk-4.1-0", "Xvfb": "install Debian's xvfb"}


# Wraps a page function so that its result, or its error, comes back as JSON through either driver.
# The race bounds a promise that never settles (a stuck requestAdapter); a busy main thread is
# bounded by the caller's process timeout instead.
_WRAP = """(fn, arg, ms) => Promise.race([
  Promise.resolve().then(() => fn(arg)),
  new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
]).then(value => ({ok: true, value}), e => ({ok: false, error: `${e && e.name || 'Error'}: ${e && e.message || e}`}))"""


class BrowserHandle:
    """A launched browser with at most one page. Use as a context manager or call close()."""

    driver: str
    # The endpoint of a remote browser (--grid / --pw-endpoint), None for one launched here: its
    # processes are then not under this one, so OS-side memory cannot be read.
    remote: str | None = None

    def __init__(self, config: BrowserConfig, timeout_s: float):
        self.config, self.timeout_s = config, timeout_s
        self.version = ""
        self._stack = contextlib.ExitStack()

    def open(self, url: str) -> None:
        raise NotImplementedError

    def evaluate(self, fn: str, arg=None, timeout_s: float | None = None):
        """Call the JS function source `fn` (may be async) with `arg` in the page; its JSON value."""
        ms = int((timeout_s or self.timeout_s) * 1000)
        result = self._eval_wrapped(fn, arg, ms)
        if not result.get("ok"):
            raise ScriptError(result.get("error", "unknown page error"))
        return result.get("value")

    def set_cpu_throttle(self, rate: float) -> None:
        raise LaunchError(f"{self.config.engine} through {self.driver} has no CDP: cannot throttle the CPU")

    def close(self) -> None:
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PlaywrightHandle(BrowserHandle):
    driver = "playwright"

    def __init__(self, config: BrowserConfig, timeout_s: float):
        super().__init__(config, timeout_s)
        try:
            browser = self._launch()
        except LaunchError:
            self.close()
            raise
        except FileNotFoundError as e:
            self.close()
            raise LaunchError(str(e)) from None
        except Exception as e:  # Playwright's own Error: a browser that fails to start
            self.close()
            raise LaunchError(" ".join(str(e).split())[:500]) from None
        self.browser, self.version, self.page, self._cdp = browser, browser.version, None, None

    def _launch(self):
        from .chromium import launch_chromium
        from .firefox import launch_firefox

        config, timeout_s = self.config, self.timeout_s
        if config.engine == "chromium":
            return self._stack.enter_context(launch_chromium(extra_args=config.args, timeout_s=timeout_s))
        if config.engine == "firefox":
            return self._stack.enter_context(launch_firefox(timeout_s=timeout_s, prefs=config.prefs))
        raise LaunchError(f"no Playwright launcher for {config.engine}")

    def open(self, url: str) -> None:
        if self.page is None:
            self.page = self.browser.new_page()
            self.page.set_default_timeout(self.timeout_s * 1000)
            if self.config.cpu_throttle not in (None, 1):
                self.set_cpu_throttle(self.config.cpu_throttle)
        self.page.goto(url, timeout=self.timeout_s * 1000)

    def _eval_wrapped(self, fn, arg, ms):
        return self.page.evaluate(f"([arg, ms]) => ({_WRAP})({fn}, arg, ms)", [arg, ms])

    def set_cpu_throttle(self, rate: float) -> None:
        if self.config.engine != "chromium":
            super().set_cpu_throttle(rate)
        if self._cdp is None:
            self._cdp = self.page.context.new_cdp_session(self.page)
        self._cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})


class SeleniumHandle(BrowserHandle):
    driver = "selenium"

    def __init__(self, config: BrowserConfig, timeout_s: float):
        super().__init__(config, timeout_s)
        try:
            self.webdriver = self._start()
        except LaunchError:
            self.close()
            raise
        except ImportError as e:
            self.close()
            raise LaunchError(f"selenium is not installed ({e}): run `make setup` (requirements.lock pins it)") from None
        except Exception as e:  # WebDriverException, a driver that never listens, ...
            self.close()
            raise LaunchError(f"{type(e).__name__}: {' '.join(str(e).split())[:500]}") from None
        self._stack.callback(self.webdriver.quit)
        self.webdriver.set_page_load_timeout(timeout_s)
        self.version = self.webdriver.capabilities.get("browserVersion", "")
        self._opened = False

    def _start(self):
        from selenium import webdriver

        c = self.config
        if c.engine == "chromium":
            from selenium.webdriver.chrome.service import Service

            from .chromium import chromium_path

            try:
                binary = chromium_path()
            except FileNotFoundError as e:
                raise LaunchError(str(e)) from None
            # chromedriver keeps the profile it is given: a fresh one per launch, removed at close.
            profile = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="nnjit-chromium-"))
            options = chromium_options(c, binary, profile)
            service = Service(executable_path=_which("NNJIT_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver",
                                                     what="chromedriver"), env={**os.environ, **c.env})
            return webdriver.Chrome(options=options, service=service)
        if c.engine == "webkit":
            from selenium.webdriver.webkitgtk.service import Service

            driver_path = _which("NNJIT_WEBKITWEBDRIVER", "/usr/bin/WebKitWebDriver", "WebKitWebDriver", what="WebKitWebDriver")
            options = webkit_options(c, _which("NNJIT_MINIBROWSER", *MINIBROWSER_PATHS, what="MiniBrowser"))
            display = os.environ.get("DISPLAY") or self._stack.enter_context(xvfb(self.timeout_s))
            # JSC reads its options (tiers, SharedArrayBuffer) from the environment of the web process,
            # which inherits it from MiniBrowser and WebKitWebDriver.
            service = Service(executable_path=driver_path, env={**os.environ, "DISPLAY": display, **c.env})
            return webdriver.WebKitGTK(options=options, service=service)
        raise LaunchError(f"no Selenium launcher for {c.engine}")

    def open(self, url: str) -> None:
        self.webdriver.get(url)
        if not self._opened and self.config.cpu_throttle not in (None, 1):
            self.set_cpu_throttle(self.config.cpu_throttle)
        self._opened = True

    def _eval_wrapped(self, fn, arg, ms):
        self.webdriver.set_script_timeout(ms / 1000 + 5)
        script = (f"const done = arguments[arguments.length - 1];"
                  f"({_WRAP})({fn}, JSON.parse(arguments[0]), arguments[1]).then(done);")
        return self.webdriver.execute_async_script(script, json.dumps(arg), ms)

    def set_cpu_throttle(self, rate: float) -> None:
        if self.config.engine != "chromium":
            super().set_cpu_throttle(rate)
        self.webdriver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": rate})


def chromium_options(c: BrowserConfig, binary: str | None, profile: str | None):
    """Selenium's Chrome options for config `c`: the binary, the flags of chromium.py and the config's
    own; `profile` None leaves the profile to chromedriver (a remote one makes its own temporary one)."""
    from selenium.webdriver.chrome.options import Options

    from .chromium import CHROMIUM_FLAGS

    options = Options()
    if binary:
        options.binary_location = binary
    for a in (*CHROMIUM_FLAGS, *c.args):
        options.add_argument(a)
    if profile:
        options.add_argument(f"--user-data-dir={profile}")
    return options


def webkit_options(c: BrowserConfig, binary: str):
    from selenium.webdriver.webkitgtk.options import Options

    options = Options()
    options.binary_location = binary
    options.add_argument("--automation")
    for a in c.args:
        options.add_argument(a)
    return options


@contextlib.contextmanager
def xvfb(timeout_s: float = 20.0):
    """A private Xvfb on a free display (Xvfb picks it: -displayfd); yields ':N', stops it on exit."""
    binary = _which("NNJIT_XVFB", "Xvfb", what="Xvfb")
    r, w = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        deadline, number = time.monotonic() + timeout_s, b""
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise LaunchError(f"Xvfb gave no display within {timeout_s:.0f} s")
            chunk = os.read(r, 16)
            if not chunk:
                raise LaunchError(f"Xvfb exited (status {proc.wait()}) before giving a display")
            number += chunk
        yield f":{number.decode().strip()}"
    finally:
        os.close(r)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch_handle(config: BrowserConfig, timeout_s: float = 60.0, grid: str | None = None,
                  pw_endpoint: str | None = None) -> BrowserHandle:
    """Launch `config`'s browser here, or on the remote endpoint given for its driver (browsers/remote.py)."""
    if config.driver == "playwright" and pw_endpoint:
        from .remote import RemotePlaywrightHandle

        return RemotePlaywrightHandle(config, timeout_s, pw_endpoint)
    if config.driver == "selenium" and grid:
        from .remote import RemoteSeleniumHandle

        return RemoteSeleniumHandle(config, timeout_s, grid)
    return (PlaywrightHandle if config.driver == "playwright" else SeleniumHandle)(config, timeout_s)
