"""The runtime's JavaScript unit tests (tests/js/*.test.mjs) under node's test runner."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from nnjit.compiler.codegen import wasm

ROOT = Path(__file__).resolve().parent.parent


def test_js_units(tmp_path):
    assert shutil.which("node"), "node is missing: `make setup` installs it"
    kernel = tmp_path / "relu37.wasm"
    kernel.write_bytes(wasm.build("unary", {"op": "relu", "n": 37, "act_min": 0.0, "act_max": 0.0})[0])
    r = subprocess.run(["node", "--test", *sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NNJIT_TEST_KERNEL": str(kernel)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout and "# skipped 0" in r.stdout, r.stdout[-2000:]
