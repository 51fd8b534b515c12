"""Run a bundle (or, as the peer baseline, an .onnx model on onnxruntime-web) in headless Chromium or Firefox.

Inputs travel as one binary file, written to a temporary directory the server mounts and fetched by
the page (each tensor 64-byte aligned, described by {name, dtype, shape, offset, bytes}); outputs come back through
page evaluation as base64 of their raw bytes. Latency is measured in the page with performance.now()
around each session.run(): `first` is the first run, `median`/`p90` are over the runs after it.

One BrowserHarness holds a server and a browser for many runs; run_bundle_in_browser() and
run_ort_web() make a throwaway one unless given a browser or harness to reuse.
"""
from __future__ import annotations

import contextlib
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

from nnjit.compiler.errors import BundleError

from .chromium import launch_chromium
from .firefox import launch_firefox
from .page_data import decode_outputs
from .page_data import write_inputs
from .server import StaticServer

# Names of the runtime's own error classes (web_runtime/errors.js): the user's input was at fault.
RUNTIME_ERROR_NAMES = frozenset({"NnjitError", "BundleError", "InputError", "BackendError"})


class PageError(RuntimeError):
    """An error thrown in the page, with its JavaScript class name (e.g. 'InputError') and message."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    @property
    def is_runtime_error(self) -> bool:
        """True for the runtime's named errors (bad bundle or input), False for bugs and browser failures."""
        return self.name in RUNTIME_ERROR_NAMES


def verify_bundle(bundle_dir: str | Path) -> dict:
    """The bundle's manifest after the checks the runtime makes (format, version, every file's sha256).

    Raises BundleError naming the file. Cheap next to a browser launch, so a bad bundle fails fast.
    """
    from nnjit.compiler.bundle import read_manifest, verify_file

    root = Path(bundle_dir)
    manifest = read_manifest(root)
    missing = [key for key in ("inputs", "outputs", "steps", "tensors", "memory", "weights", "kernels") if key not in manifest]
    if missing:
        raise BundleError(f"{root / 'manifest.json'}: missing {', '.join(missing)}")
    try:
        files = [(manifest["weights"]["file"], manifest["weights"]["sha256"])]
        for k in manifest["kernels"]:
            files.append((k["file"], k["sha256"]))
            if k.get("relaxed"):
                files.append((k["relaxed"]["file"], k["relaxed"]["sha256"]))
    except (KeyError, TypeError) as e:
        raise BundleError(f"{root / 'manifest.json'}: malformed weights or kernel entry (no {e})") from None
    for rel, expected in files:
        verify_file(root, rel, expected)
    return manifest


def latency_stats(times: list[float]) -> dict:
    """first run, then median and p90 over the warm runs (all runs when there is only one)."""
    warm = times[1:] or times
    return {
        "first": float(times[0]),
        "median": float(np.median(warm)),
        "p90": float(np.percentile(warm, 90)),
        "runs": [float(t) for t in times],
    }


BROWSERS = ("chromium", "firefox")


class BrowserHarness:
    """A static server and a headless browser, shared by any number of runs. Use as a context manager.

    `browser` (a Playwright Browser) and `server` (a StaticServer serving the default mounts) are
    reused when given and then left open; whatever the harness starts itself, it closes.
    `browser_name` ('chromium' or 'firefox') and `webgpu` (launch with WebGPU enabled) apply to the
    browser it launches; a given browser is used as it is.
    """

    def __init__(self, browser=None, server: StaticServer | None = None, timeout_s: float = 300.0,
                 *, browser_name: str = "chromium", webgpu: bool = False):
        if browser_name not in BROWSERS:
            raise ValueError(f"browser_name must be one of {', '.join(BROWSERS)}, got {browser_name!r}")
        self.browser, self.server, self.timeout_s = browser, server, timeout_s
        self.browser_name = browser.browser_type.name if browser is not None else browser_name
        self.webgpu = webgpu
        self._stack = contextlib.ExitStack()
        self._ids = itertools.count()
        self._tmp: Path | None = None
        self._context = None

    def __enter__(self) -> "BrowserHarness":
        try:
            if self.server is None:
                self.server = self._stack.enter_context(StaticServer())
            if self.browser is None:
                launch = launch_firefox if self.browser_name == "firefox" else launch_chromium
                self.browser = self._stack.enter_context(launch(webgpu=self.webgpu))
            self._tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="nnjit-run-")))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    @contextlib.contextmanager
    def mounted(self, directory: str | Path):
        """Serve `directory` under a fresh URL prefix for the duration of the block; yields its URL."""
        prefix = f"/m{next(self._ids)}/"
        url = self.server.mount(prefix, directory)
        try:
            yield url
        finally:
            self.server.unmount(prefix)

    def open_page(self, page: str = "run.html"):
        """A new page (own browser context) on one of bench/pages; the caller closes it."""
        p = self.browser.new_page()
        try:
            p.goto(self.server.url(f"/pages/{page}"))
        except BaseException:
            p.close()
            raise
        return p

    def _drive(self, page_name: str, config: dict, inputs: dict[str, np.ndarray], *, on_progress=None,
               shared_context: bool = False) -> dict:
        """Run one job on a fresh page. `shared_context`: open it in the harness's one long-lived
        browser context (its IndexedDB, i.e. the tuning cache, survives from page to page) instead
        of a new one. `on_progress(dict)` gets the page's latest tuning progress while it runs."""
        job = next(self._ids)
        inputs_file = self._tmp / f"inputs-{job}.bin"
        config = {**config, "inputs": write_inputs(inputs_file, inputs)}
        console: list[str] = []
        with self.mounted(self._tmp) as data_url:
            config["inputsUrl"] = data_url + inputs_file.name
            page = self._shared_context().new_page() if shared_context else self.browser.new_page()
            try:
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                page.goto(self.server.url(f"/pages/{page_name}"))
                # Module scripts run before 'load', so a missing entry point means the page failed to load.
                if not page.evaluate("() => Boolean(window.nnjitBench)"):
                    raise RuntimeError(f"{page_name} did not start: {'; '.join(console) or 'no console output'}")
                page.evaluate("config => window.nnjitBench.start(config)", config)
                if on_progress is not None:
                    deadline = time.monotonic() + self.timeout_s
                    while not page.evaluate("() => Boolean(window.nnjitBench.result)"):
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{page_name} gave no result within {self.timeout_s:.0f} s")
                        p = page.evaluate("() => self.nnjitProgress ?? null")
                        if p:
                            on_progress(p)
                        time.sleep(0.2)
                handle = page.wait_for_function("() => window.nnjitBench.result", polling=200, timeout=self.timeout_s * 1000)
                result = handle.json_value()
            finally:
                page.close()
                inputs_file.unlink(missing_ok=True)
        if not result["ok"]:
            raise PageError(result["error"]["name"], result["error"]["message"])
        return result["value"]

    def _shared_context(self):
        if self._context is None:
            self._context = self.browser.new_context()
        return self._context

    def _result(self, value: dict) -> dict:
        return {
            "outputs": decode_outputs(value["outputs"]),
            "latency_ms": latency_stats(value["times"]),
            "create_ms": float(value["createMs"]),
            "cross_origin_isolated": bool(value["crossOriginIsolated"]),
            "browser": self.browser_name,
            "browser_version": self.browser.version,
            "info": value["info"],
        }

    def run_bundle(self, bundle_dir: str | Path, inputs: dict[str, np.ndarray], runs: int = 10,
                   *, backend: str = "wasm", worker: bool = True, relaxed_simd: bool | None = None,
                   profile_runs: int = 0, tune_budget_ms: int = 0, on_progress=None,
                   shared_context: bool = False, threads: int = 1, warmup_ms: int = 0,
                   reuse_outputs: bool = False) -> dict:
        """Outputs (name → array), latency_ms {first, median, p90, runs}, backend (what ran: 'wasm' or
        'webgpu'), fallback_reason, relaxed_simd, worker, ran_in, ...; with profile_runs > 0 also
        `profile`: per-step median ms after the timed runs. `backend`: 'wasm', 'webgpu' or 'auto'.
        `tune_budget_ms` > 0 tunes on the device first (timed runs start once tuning is over) and
        adds `tuning` (the session's final tuning state) and `tune_ms`; `shared_context` keeps the
        tuning cache from one call to the next (see _drive). `reuse_outputs`: the timed runs write into
        one set of output arrays (run's options.outputs) instead of fresh ones."""
        if runs < 1:
            raise ValueError(f"runs must be at least 1, got {runs}")
        with self.mounted(bundle_dir) as bundle_url:
            value = self._drive(
                "run.html", {"bundleUrl": bundle_url, "runs": runs, "worker": worker, "backend": backend,
                             "relaxedSimd": relaxed_simd, "profileRuns": profile_runs, "tuneBudgetMs": tune_budget_ms,
                             "threads": threads, "warmupMs": warmup_ms, "reuseOutputs": reuse_outputs},
                inputs, on_progress=on_progress, shared_context=shared_context)
        out = self._result(value)
        out.update(backend=value["info"]["backend"], fallback_reason=value["info"]["fallbackReason"],
                   relaxed_simd=bool(value["info"]["relaxedSimd"]), worker=bool(value["info"]["worker"]),
                   ran_in=value["ranIn"], compute_ms=[float(t) for t in value["computeMs"]],
                   profile=value.get("profile"), tuning=value.get("tuning"), tune_ms=float(value.get("tuneMs") or 0.0))
        return out

    def run_bundles(self, jobs: dict[str, tuple[str | Path, dict[str, np.ndarray]]], *, backend: str = "wasm",
                    worker: bool = True) -> dict[str, dict]:
        """Many bundles in one page load, each created, run once on its inputs and released (the
        conformance page). jobs: name → (bundle_dir, inputs). Returns name → {ok: True, backend,
        outputs} or {ok: False, error: {name, message}}: one bundle's error never fails the others."""
        with contextlib.ExitStack() as stack:
            data_url = stack.enter_context(self.mounted(self._tmp))
            tests = []
            for name, (bundle_dir, inputs) in jobs.items():
                data = self._tmp / f"inputs-{next(self._ids)}.bin"
                stack.callback(data.unlink, missing_ok=True)
                tests.append({"name": name, "bundleUrl": stack.enter_context(self.mounted(bundle_dir)),
                              "inputs": write_inputs(data, inputs), "inputsUrl": data_url + data.name})
            value = self._drive("conformance.html", {"tests": tests, "backend": backend, "worker": worker}, {})
        return {r["name"]: {**r, "outputs": decode_outputs(r["outputs"])} if r["ok"] else r for r in value}

    def run_ort(self, onnx_path: str | Path, inputs: dict[str, np.ndarray], runs: int = 10,
                *, ep: str = "wasm", threads: int = 1, proxy: bool = False, warmup_ms: int = 0) -> dict:
        """The same on onnxruntime-web: `ep` 'wasm' (SIMD, `threads` threads, main thread unless `proxy`)
        or 'webgpu' (its WebGPU EP, on the same adapter as the runtime's webgpu backend)."""
        if ep not in ("wasm", "webgpu"):
            raise ValueError(f"ep must be 'wasm' or 'webgpu', got {ep!r}")
        if runs < 1:
            raise ValueError(f"runs must be at least 1, got {runs}")
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f"no such model: {onnx_path}")
        if not self.server.has_mount("/ort/"):
            raise RuntimeError("onnxruntime-web is not installed: run `npm ci` in the repository root")
        with self.mounted(onnx_path.parent) as model_dir:
            value = self._drive("ort.html", {"modelUrl": model_dir + onnx_path.name, "runs": runs,
                                             "ep": ep, "threads": threads, "proxy": proxy,
                                             "warmupMs": warmup_ms}, inputs)
        out = self._result(value)
        out.update(backend=value["info"]["backend"], relaxed_simd=None, worker=proxy,
                   ran_in="DedicatedWorkerGlobalScope" if proxy else "Window")
        return out


def _harness(browser, browser_name: str, webgpu: bool) -> contextlib.AbstractContextManager[BrowserHarness]:
    if isinstance(browser, BrowserHarness):
        return contextlib.nullcontext(browser)
    return BrowserHarness(browser=browser, browser_name=browser_name, webgpu=webgpu)


def run_bundle_in_browser(bundle_dir: str | Path, inputs: dict[str, np.ndarray], runs: int = 10,
                          browser=None, browser_name: str = "chromium", **options) -> dict:
    """Run a bundle in a headless browser. `browser`: a Playwright Browser or BrowserHarness to reuse
    (else a throwaway `browser_name`, launched with WebGPU unless the backend is 'wasm')."""
    with _harness(browser, browser_name, options.get("backend", "wasm") != "wasm") as h:
        return h.run_bundle(bundle_dir, inputs, runs, **options)


def run_ort_web(onnx_path: str | Path, inputs: dict[str, np.ndarray], runs: int = 10,
                browser=None, browser_name: str = "chromium", **options) -> dict:
    """Run an .onnx model on onnxruntime-web (WASM or WebGPU EP) in a headless browser: the peer baseline."""
    with _harness(browser, browser_name, options.get("ep", "wasm") == "webgpu") as h:
        return h.run_ort(onnx_path, inputs, runs, **options)
