"""The browser matrix (browsers/matrix.toml), `nnjit browsers list|probe`, and the driver-neutral handles."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nnjit.browsers.chromium import WEBGPU_FLAGS
from nnjit.browsers.firefox import WEBGPU_PREFS
from nnjit.browsers.matrix import MatrixError, canonical_id, launch, load_matrix
from nnjit.browsers.server import REPO

pytestmark = pytest.mark.browser
LIST_KEYS = {"id", "engine", "driver", "backend", "threads", "cpu_throttle", "tier", "args", "prefs", "env", "note"}


def nnjit(*argv, timeout=240):
    return subprocess.run([sys.executable, "-m", "nnjit.cli.main", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_matrix_has_50_valid_unique_configs():
    m = load_matrix()
    ids = [c.id for c in m.configs]
    assert len(ids) >= 50 and len(set(ids)) == len(ids)
    for c in m.configs:
        assert c.id == canonical_id(c.engine, c.driver, c.backend, c.threads, c.cpu_throttle, c.tier)
        assert (c.cpu_throttle is None) == (c.engine != "chromium")
        assert not (c.engine == "webkit" and c.backend == "webgpu")
    # Every engine × driver of issue 5, both backends where the engine has WebGPU, every tier used.
    assert {c.group for c in m.configs} == {("chromium", "playwright"), ("chromium", "selenium"),
                                            ("firefox", "playwright"), ("webkit", "selenium")}
    assert {(c.engine, c.backend) for c in m.configs} >= {("chromium", "webgpu"), ("firefox", "webgpu"), ("webkit", "wasm")}
    for engine, e in m.engines.items():
        assert set(e.get("tiers", {})) == {c.tier for c in m.configs if c.engine == engine}


def test_configs_carry_their_launch_flags():
    m = load_matrix()
    assert "--js-flags=--liftoff --no-wasm-tier-up" in m.get("chromium-pw-wasm-t1-jit-liftoff").args
    assert "--js-flags=--no-liftoff" in m.get("chromium-sel-wasm-t2-jit-turbofan").args
    # The matrix's WebGPU switches are the same as the launchers' (chromium.py, firefox.py).
    assert set(WEBGPU_FLAGS) <= set(m.get("chromium-sel-webgpu").args)
    assert not set(WEBGPU_FLAGS) & set(m.get("chromium-sel-wasm-t1").args)
    assert m.get("firefox-bidi-webgpu").prefs == WEBGPU_PREFS
    assert m.get("firefox-bidi-wasm-t1-jit-baseline").prefs == {"javascript.options.wasm_optimizingjit": False}
    assert m.get("webkit-sel-wasm-t2").env == {"JSC_useSharedArrayBuffer": "true"}
    assert m.get("webkit-sel-wasm-t1-jit-baseline").env == {"JSC_useOMGJIT": "false"}


GOOD = 'configs = [{id = "chromium-pw-wasm-t1", engine = "chromium", driver = "playwright", backend = "wasm"}]'


@pytest.mark.parametrize("text, message", [
    ("[matrix\n", "not valid TOML"),
    ("[matrix]\nconfigs = []", "non-empty array"),
    ("[matrix]\n" + GOOD.replace('backend = "wasm"', 'backend = "wasm", thread = 2'), "unknown field thread"),
    ("[matrix]\n" + GOOD.replace('"wasm"}', '"webgl"}'), "backend = 'webgl'"),
    ("[matrix]\n" + GOOD.replace('t1"', 't2"'), "must be 'chromium-pw-wasm-t1'"),
    ("[matrix]\n" + GOOD.replace("}]", "}, " + GOOD[11:-1] + "]"), "duplicate id 'chromium-pw-wasm-t1'"),
    ("[engines.chromium]\ndrivers = ['playwright']\ncpu_throttle = true\n[engines.chromium.tiers]\nfast = {js_flags = 1, x = 2}\n"
     "[matrix]\n" + GOOD, "tier 'fast' must be a table"),
])
def test_malformed_matrix_is_a_named_error(tmp_path, text, message):
    base = "" if text.startswith("[engines") else "[engines.chromium]\ndrivers = ['playwright']\ncpu_throttle = true\n"
    path = tmp_path / "m.toml"
    path.write_text(base + text)
    with pytest.raises(MatrixError) as e:
        load_matrix(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_missing_matrix_exits_2_with_one_line():
    p = nnjit("browsers", "list", "--matrix", "/nonexistent/m.toml")
    assert p.returncode == 2
    assert p.stderr.strip() == "MatrixError: /nonexistent/m.toml: no such file"


def test_list_json_keys():
    p = nnjit("browsers", "list", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == len(load_matrix().configs) >= 50
    assert all(set(r) == LIST_KEYS for r in rows)
    assert {r["engine"] for r in rows} == {"chromium", "firefox", "webkit"}


def test_selenium_handle_evaluates_and_throttles():
    """launch() on a Selenium Chromium config: open, evaluate (value and error), CDP throttling."""
    from nnjit.browsers.drivers import ScriptError
    from nnjit.browsers.server import StaticServer

    config = load_matrix().get("chromium-sel-wasm-t1-cpu2")
    with StaticServer() as server, launch(config, timeout_s=60) as h:
        h.open(server.url("/pages/run.html"))
        assert h.version
        assert h.evaluate("async x => x + 1", 41) == 42
        assert h.evaluate("() => self.crossOriginIsolated") is True
        with pytest.raises(ScriptError, match="TypeError"):
            h.evaluate("() => null.x")
        with pytest.raises(ScriptError, match="no answer within"):
            h.evaluate("() => new Promise(() => {})", timeout_s=1)


# One configuration per engine (Selenium's Chromium is covered by the handle test above): the probe
# launches only the groups these need, which keeps this file under a minute.
PROBED = ("chromium-pw-wasm-t2-cpu4", "chromium-pw-webgpu", "firefox-bidi-wasm-t2", "firefox-bidi-webgpu",
          "webkit-sel-wasm-t2", "webkit-sel-wasm-t1-jit-baseline")


@pytest.fixture(scope="module")
def probe_report():
    p = nnjit("browsers", "probe", "--json", "--timeout", 100, "--ids", *PROBED, timeout=420)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_probe_runs_all_three_engines(probe_report):
    groups = {(g["engine"], g["driver"]): g for g in probe_report["groups"]}
    assert set(groups) == {("chromium", "playwright"), ("firefox", "playwright"), ("webkit", "selenium")}
    for g in groups.values():
        assert g["launched"], g["reason"]
        assert g["features"], g["reason"]
    f = groups["chromium", "playwright"]["features"]
    assert f["wasm"]["simd"] is True and f["wasm"]["simd_runs"] is True and f["threads"]["available"] is True
    assert f["threads"]["cross_origin_isolated"] is True
    assert f["webgpu"]["available"] is True and f["webgpu"]["adapter"]["is_fallback_adapter"] is True
    assert f["memory"]["performance_memory"]["usedJSHeapSize"] > 0
    assert f["observers"]["longtask"] and f["observers"]["event_timing"]
    assert f["cpu_throttle"]["available"] and f["cpu_throttle"]["slowdown"] > 1
    ff = groups["firefox", "playwright"]["features"]
    assert ff["wasm"]["simd_runs"] and ff["threads"]["available"] and ff["webgpu"]["available"]
    assert ff["memory"]["performance_memory"] is None and not ff["cpu_throttle"]["available"]
    wk = groups["webkit", "selenium"]
    assert "AppleWebKit/605" in wk["user_agent"] and wk["features"]["wasm"]["simd_runs"] is True
    assert wk["features"]["threads"]["available"] is True   # with JSC_useSharedArrayBuffer=true
    assert wk["features"]["webgpu"]["available"] is False and wk["features"]["webgpu"]["reason"]


def test_probe_marks_each_asked_config(probe_report):
    rows = {r["id"]: r for r in probe_report["configs"]}
    assert set(rows) == set(PROBED)
    assert all(r["available"] for r in rows.values()), rows
    assert "not exercised" in rows["webkit-sel-wasm-t1-jit-baseline"]["reason"]   # a caveat, not a failure


def test_a_hung_launch_is_a_timeout_with_a_reason():
    from nnjit.browsers.probe import availability, run_group

    m = load_matrix()
    g = run_group(m, "firefox", "playwright", timeout_s=1.5)   # Firefox takes several seconds to start
    assert not g["launched"] and g["reason"].startswith("timed out after 1.5 s while"), g
    ok, reason = availability(m.get("firefox-bidi-wasm-t1"), g)
    assert not ok and "did not launch: timed out" in reason
