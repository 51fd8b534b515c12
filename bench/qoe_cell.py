"""The child process of `nnjit bench`: one browser configuration, its cells in order, one launch.

    python -m nnjit.bench.qoe_cell SPEC.json

Prints JSON lines on stdout, each flushed: {"t": "launch", "version"}, {"t": "stage", "cell", "stage"},
{"t": "row", "cell", "metric", "value", "unit", "status", "reason"}, {"t": "done", "cell"}. The
parent (bench/qoe_run.py) appends rows to the CSV, enforces the per-cell timeout and, when this
process dies or hangs, writes the current cell's missing rows and starts a new child for the rest.
It exits 3 after a cell failed in a way that may have left the browser broken.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys

from . import qoe_metrics as M
from .qoe_plan import Cell


def _out(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _die_with_parent() -> None:
    """SIGTERM when the parent dies (even by kill -9); then the browser and driver go too. They are
    killed directly rather than through the driver's close(), which may be mid-call and never return."""
    def stop(*_):
        import psutil

        for p in psutil.Process().children(recursive=True):
            try:
                p.kill()
            except psutil.Error:
                pass
        os._exit(143)

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, stop)


def main(argv=None) -> int:
    _die_with_parent()
    from nnjit.browsers.drivers import LaunchError, launch_handle
    from nnjit.browsers.matrix import load_matrix
    from nnjit.browsers.remote import secure_origin
    from nnjit.browsers.server import StaticServer

    from .qoe_memory import Sampler, browser_root
    from .qoe_page import LoadError, Settings, measure_cell

    spec = json.loads(open((argv or sys.argv[1:])[0]).read())
    config = load_matrix(spec["matrix"]).get(spec["config"])
    cells = [Cell(*c) for c in spec["cells"]]
    settings = Settings(**spec["settings"])

    def finish(cell: Cell, emitted: set, status: str, reason: str) -> None:
        for metric, unit in M.CELL_METRICS.items():
            if metric not in emitted:
                _out({"t": "row", "cell": cell.key, "metric": metric, "value": None, "unit": unit, "status": status, "reason": reason})
        _out({"t": "row", "cell": cell.key, "metric": "cell_status", "value": None, "unit": "", "status": status, "reason": reason})
        _out({"t": "done", "cell": cell.key})

    remote = spec.get("remote") or {}
    # The page server first: a browser on another machine must be told that its origin is secure.
    server = StaticServer(host=remote.get("host") or "127.0.0.1").start()
    _out({"t": "stage", "cell": cells[0].key, "stage": "launching the browser"})
    try:
        handle = launch_handle(secure_origin(config, server.origin), timeout_s=spec["launch_timeout_s"],
                               grid=remote.get("grid"), pw_endpoint=remote.get("pw_endpoint"))
    except LaunchError as e:
        server.close()
        reason = f"{config.engine} via {config.driver} did not launch: {' '.join(str(e).split())[:400]}"
        for cell in cells:
            finish(cell, set(), "unavailable", reason)
        return 0
    # A remote browser's processes are not under this one: nothing is sampled (memory rows say n/a).
    sampler = Sampler(None, na_reason=f"remote browser ({handle.remote}): its processes are not on this machine") \
        if handle.remote else Sampler(browser_root())
    with handle, contextlib.closing(server), sampler:
        _out({"t": "launch", "version": handle.version})
        for cell in cells:
            emitted: set[str] = set()

            def emit(metric, value, cell=cell, emitted=emitted):
                unit = M.CELL_METRICS.get(metric, "MiB")
                emitted.add(metric)
                if isinstance(value, M.NA):
                    _out({"t": "row", "cell": cell.key, "metric": metric, "value": None, "unit": unit, "status": "n/a", "reason": value.reason})
                else:
                    _out({"t": "row", "cell": cell.key, "metric": metric, "value": value, "unit": unit, "status": "ok", "reason": ""})

            try:
                measure_cell(handle, server, cell, config, spec["models"].get(cell.model), settings, sampler, emit,
                             lambda text, cell=cell: _out({"t": "stage", "cell": cell.key, "stage": text}))
            except LoadError as e:
                # The browser is fine, the runtime could not start here: a missing feature (no WebGPU
                # adapter) makes the cell unavailable; anything else is the runtime's error. Either
                # way the next cell goes on in the same browser.
                reason = " ".join(str(e).split())[:500]
                finish(cell, emitted, "unavailable" if "is not available" in reason else "error", reason)
                continue
            except Exception as e:  # the browser crashed or its driver failed: this browser is done
                finish(cell, emitted, "error", f"{type(e).__name__}: {' '.join(str(e).split())[:500]}")
                return 3
            _out({"t": "row", "cell": cell.key, "metric": "cell_status", "value": None, "unit": "", "status": "ok", "reason": ""})
            _out({"t": "done", "cell": cell.key})
    return 0


if __name__ == "__main__":
    sys.exit(main())
