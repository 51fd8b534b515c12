"""The browser matrix (browsers/matrix.toml): load, validate, resolve each configuration's launch spec,
and launch one as a driver-neutral handle (browsers/drivers.py).

A bad file raises MatrixError (a NnjitError: the CLI prints it on one line and exits 2) naming the
file, the config and the field, so a typo never silently drops or mislabels a configuration.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from nnjit.compiler.errors import NnjitError

MATRIX_PATH = Path(__file__).with_name("matrix.toml")
ENGINES = ("chromium", "firefox", "webkit")
DRIVERS = ("playwright", "selenium")
BACKENDS = ("wasm", "webgpu")
# The short driver tag in ids: Firefox's Playwright driver is its WebDriver BiDi mode.
DRIVER_TAGS = {("chromium", "playwright"): "pw", ("firefox", "playwright"): "bidi", ("chromium", "selenium"): "sel",
               ("webkit", "selenium"): "sel"}
CONFIG_FIELDS = {"id", "engine", "driver", "backend", "threads", "cpu_throttle", "tier", "args", "prefs", "env", "note"}
ENGINE_FIELDS = {"drivers", "cpu_throttle", "webgpu", "args", "prefs", "env", "webgpu_args", "webgpu_prefs",
                 "webgpu_env", "threads_args", "threads_prefs", "threads_env", "tiers"}
TIER_FIELDS = {"js_flags", "args", "prefs", "env"}
ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class MatrixError(NnjitError):
    """browsers/matrix.toml (or a --matrix file) is missing, not TOML, or has a bad configuration."""


@dataclasses.dataclass(frozen=True)
class BrowserConfig:
    """One resolved configuration: what to launch and with which args (Chromium), prefs (Firefox) and
    environment (WebKit's JSC options)."""
    id: str
    engine: str
    driver: str
    backend: str
    threads: int
    cpu_throttle: float | None      # CDP rate (1 = none) on Chromium; None where the engine has no CDP
    tier: str
    args: tuple[str, ...] = ()
    prefs: dict = dataclasses.field(default_factory=dict)
    env: dict = dataclasses.field(default_factory=dict)
    note: str = ""

    @property
    def group(self) -> tuple[str, str]:
        """(engine, driver): configs of one group share a browser binary and driver, so one probe launch."""
        return self.engine, self.driver

    def to_json(self) -> dict:
        return {"id": self.id, "engine": self.engine, "driver": self.driver, "backend": self.backend,
                "threads": self.threads, "cpu_throttle": self.cpu_throttle, "tier": self.tier,
                "args": list(self.args), "prefs": dict(self.prefs), "env": dict(self.env), "note": self.note}


def canonical_id(engine: str, driver: str, backend: str, threads: int, cpu_throttle, tier: str) -> str:
    """The id a configuration must have (see matrix.toml's header)."""
    parts = [engine, DRIVER_TAGS[engine, driver], backend]
    if backend == "wasm":
        parts.append(f"t{threads}")
    if cpu_throttle not in (None, 1):
        parts.append(f"cpu{cpu_throttle:g}")
    if tier != "default":
        parts.append(f"jit-{tier}")
    return "-".join(parts)


@dataclasses.dataclass(frozen=True)
class Matrix:
    path: Path
    engines: dict            # engine name → its [engines.*] table
    configs: tuple[BrowserConfig, ...]

    def get(self, config_id: str) -> BrowserConfig:
        for c in self.configs:
            if c.id == config_id:
                return c
        raise MatrixError(f"no configuration {config_id!r} in {self.path} (see `nnjit browsers list`)")

    def groups(self) -> dict[tuple[str, str], list[BrowserConfig]]:
        out: dict[tuple[str, str], list[BrowserConfig]] = {}
        for c in self.configs:
            out.setdefault(c.group, []).append(c)
        return out

    def probe_config(self, engine: str, driver: str) -> BrowserConfig:
        """A config that switches on everything the group's configs can ask for (WebGPU, threads), so one
        launch answers for all of them; tiers stay default (they change speed, not features)."""
        e = self.engines[engine]
        webgpu = e.get("webgpu", True)
        return _resolve(e, id=f"probe-{engine}-{DRIVER_TAGS[engine, driver]}", engine=engine, driver=driver,
                        backend="webgpu" if webgpu else "wasm", threads=2, cpu_throttle=1 if e["cpu_throttle"] else None,
                        tier="default", extra={}, threads_on=True)


def _resolve(e: dict, *, id, engine, driver, backend, threads, cpu_throttle, tier, extra: dict,
             threads_on: bool | None = None) -> BrowserConfig:
    threads_on = threads > 1 if threads_on is None else threads_on
    layers = [e, *([{k[7:]: v for k, v in e.items() if k.startswith("webgpu_")}] if backend == "webgpu" else []),
              *([{k[8:]: v for k, v in e.items() if k.startswith("threads_")}] if threads_on else []),
              e.get("tiers", {}).get(tier, {}), extra]
    args: list[str] = []
    prefs: dict = {}
    env: dict = {}
    js_flags: list[str] = []
    for layer in layers:
        args += layer.get("args", [])
        prefs.update(layer.get("prefs", {}))
        env.update({k: str(v) for k, v in layer.get("env", {}).items()})
        js_flags += layer.get("js_flags", [])
    if js_flags:
        args.append("--js-flags=" + " ".join(js_flags))
    return BrowserConfig(id=id, engine=engine, driver=driver, backend=backend, threads=threads, cpu_throttle=cpu_throttle,
                         tier=tier, args=tuple(args), prefs=prefs, env=env, note=extra.get("note", ""))


def _check_engine(path, name: str, e) -> None:
    where = f"{path}: [engines.{name}]"
    if name not in ENGINES:
        raise MatrixError(f"{where}: unknown engine (known: {', '.join(ENGINES)})")
    if not isinstance(e, dict):
        raise MatrixError(f"{where}: must be a table")
    unknown = set(e) - ENGINE_FIELDS
    if unknown:
        raise MatrixError(f"{where}: unknown field {', '.join(sorted(unknown))} (known: {', '.join(sorted(ENGINE_FIELDS))})")
    for field in ("drivers", "cpu_throttle"):
        if field not in e:
            raise MatrixError(f"{where}: missing {field}")
    bad = [d for d in e["drivers"] if (name, d) not in DRIVER_TAGS]
    if bad:
        raise MatrixError(f"{where}: no launcher for driver {', '.join(map(str, bad))} on {name}")
    for tier, t in e.get("tiers", {}).items():
        if not isinstance(t, dict) or set(t) - TIER_FIELDS:
            raise MatrixError(f"{where}: tier {tier!r} must be a table of {', '.join(sorted(TIER_FIELDS))}")


def _check_config(path, i: int, c, engines: dict) -> BrowserConfig:
    where = f"{path}: config #{i + 1}" + (f" ({c['id']!r})" if isinstance(c, dict) and "id" in c else "")
    if not isinstance(c, dict):
        raise MatrixError(f"{where}: must be an inline table")
    unknown = set(c) - CONFIG_FIELDS
    if unknown:
        raise MatrixError(f"{where}: unknown field {', '.join(sorted(unknown))} (known: {', '.join(sorted(CONFIG_FIELDS))})")
    for field in ("id", "engine", "driver", "backend"):
        if field not in c:
            raise MatrixError(f"{where}: missing {field}")

    def one_of(field, allowed):
        if c[field] not in allowed:
            raise MatrixError(f"{where}: {field} = {c[field]!r}, must be one of {', '.join(map(str, allowed))}")

    one_of("engine", [n for n in ENGINES if n in engines])
    one_of("backend", BACKENDS)
    e = engines[c["engine"]]
    one_of("driver", e["drivers"])
    if c["backend"] == "webgpu" and not e.get("webgpu", True):
        raise MatrixError(f"{where}: {c['engine']} has no WebGPU")
    threads = c.get("threads", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise MatrixError(f"{where}: threads = {threads!r}, must be an integer ≥ 1")
    if c["backend"] == "webgpu" and threads != 1:
        raise MatrixError(f"{where}: webgpu configs run with threads = 1")
    rate = c.get("cpu_throttle")
    if not e["cpu_throttle"] and rate is not None:
        raise MatrixError(f"{where}: cpu_throttle needs CDP, which {c['engine']} does not have")
    if e["cpu_throttle"]:
        rate = 1 if rate is None else rate
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 1:
            raise MatrixError(f"{where}: cpu_throttle = {rate!r}, must be a number ≥ 1")
    tier = c.get("tier", "default")
    if tier != "default":
        one_of("tier", list(e.get("tiers", {})))
    for field, kind in (("args", list), ("prefs", dict), ("env", dict), ("note", str), ("id", str)):
        if field in c and not isinstance(c[field], kind):
            raise MatrixError(f"{where}: {field} must be a {kind.__name__}")
    if not ID_RE.match(c["id"]):
        raise MatrixError(f"{where}: id must be lower-case words joined by '-'")
    expected = canonical_id(c["engine"], c["driver"], c["backend"], threads, rate, tier)
    if c["id"] != expected:
        raise MatrixError(f"{where}: id does not spell the configuration; it must be {expected!r}")
    return _resolve(e, id=c["id"], engine=c["engine"], driver=c["driver"], backend=c["backend"], threads=threads,
                    cpu_throttle=rate, tier=tier, extra={k: c[k] for k in ("args", "prefs", "env", "note") if k in c})


def load_matrix(path: str | Path | None = None) -> Matrix:
    """Read and validate the matrix (default: browsers/matrix.toml). Raises MatrixError."""
    path = Path(path) if path is not None else MATRIX_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MatrixError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MatrixError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path}: not valid TOML ({e})") from None
    unknown = set(data) - {"engines", "matrix"}
    if unknown:
        raise MatrixError(f"{path}: unknown top-level table {', '.join(sorted(unknown))} (known: engines, matrix)")
    engines = data.get("engines", {})
    for name, e in engines.items():
        _check_engine(path, name, e)
    configs = data.get("matrix", {}).get("configs")
    if not isinstance(configs, list) or not configs:
        raise MatrixError(f"{path}: [matrix] configs must be a non-empty array of inline tables")
    resolved = [_check_config(path, i, c, engines) for i, c in enumerate(configs)]
    seen: set[str] = set()
    for c in resolved:
        if c.id in seen:
            raise MatrixError(f"{path}: duplicate id {c.id!r}")
        seen.add(c.id)
    return Matrix(path=path, engines=engines, configs=tuple(resolved))


def launch(config: BrowserConfig, timeout_s: float = 60.0):
    """Start `config`'s browser; returns a BrowserHandle (open(url), evaluate(fn, arg), close(); a context
    manager). Raises LaunchError with the reason when the browser, its driver or its display is missing."""
    from .drivers import launch_handle

    return launch_handle(config, timeout_s=timeout_s)
