"""`nnjit run` and `nnjit serve` as processes: exit codes, stderr lines and the --json contract."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from nnjit.browsers.server import REPO

pytestmark = pytest.mark.browser

# cli/main.py belongs to the lead and may not know the subcommands yet: drive them through their
# own add_parser/main, exactly as main.py will.
DRIVER = """import argparse, sys
from nnjit.cli import run_cmd, serve_cmd
p = argparse.ArgumentParser(prog="nnjit")
sub = p.add_subparsers(required=True)
run_cmd.add_parser(sub)
serve_cmd.add_parser(sub)
args = p.parse_args()
sys.exit(args.func(args))
"""


def nnjit(*argv, timeout=120):
    return subprocess.run([sys.executable, "-c", DRIVER, *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_run_json_with_compare(bundles, madd_model):
    p = nnjit("run", bundles["madd"], "--compare", madd_model, "--runs", 3, "--seed", 7, "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert set(report) == {"backend", "fallback_reason", "browser", "threads", "runs", "relaxed_simd", "latency_ms",
                           "outputs", "max_abs_err", "max_rel_err"}
    assert report["fallback_reason"] is None
    assert (report["backend"], report["browser"], report["threads"], report["runs"]) == ("wasm", "chromium", 1, 3)
    assert set(report["latency_ms"]) == {"first", "median", "p90"} and report["relaxed_simd"] is True
    assert report["outputs"] == {"z": [2, 5]}
    assert report["max_abs_err"] < 1e-5 and report["max_rel_err"] < 1e-5


def test_run_webgpu_reports_the_backend_that_ran(bundles, madd_model):
    p = nnjit("run", bundles["madd"], "--backend", "webgpu", "--compare", madd_model, "--runs", 2, "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert (report["backend"], report["fallback_reason"], report["browser"]) == ("webgpu", None, "chromium")
    assert report["max_rel_err"] < 1e-5
    # A bundle without webgpu kernels: 'auto' runs it on wasm and says why.
    p = nnjit("run", bundles["ids"], "--backend", "auto")
    assert p.returncode == 0, p.stderr
    assert "wasm backend" in p.stdout and "note     runs on wasm: the bundle has no webgpu kernel for step 0 (Test n0)" in p.stdout


def test_run_tampered_bundle_exits_2_before_any_browser(tampered):
    p = nnjit("run", tampered("kernels/k0.wasm"), "--json")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("BundleError: ") and "kernels/k0.wasm: sha256 mismatch" in p.stderr


def test_run_bad_npz_input_exits_2(bundles, tmp_path):
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.zeros((2, 5), np.float32), y=np.zeros((5, 2), np.float32))
    p = nnjit("run", bundles["madd"], "--inputs", npz)
    assert p.returncode == 2 and p.stderr.strip() == "InputError: input 'y': expected shape [2, 5], got [5, 2]"


def test_serve_sends_isolation_headers_and_stops_on_ctrl_c(bundles):
    # faulthandler: a serve that outlives its Ctrl-C is sent SIGABRT and shows where each thread stood
    # (this test timed out once in a full parallel pass, cause unknown; it has not recurred alone).
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-c", DRIVER, "serve", str(bundles["madd"]),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        with urllib.request.urlopen(url + "manifest.json") as r:
            assert json.load(r)["format"] == "nnjit-bundle"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        with urllib.request.urlopen(url + "nnjit/index.js") as r:
            assert r.headers["Content-Type"] == "text/javascript"
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
            pytest.fail("nnjit serve still ran 10 s after Ctrl-C; its threads:\n" + proc.stderr.read()[-4000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _main_knows_run() -> bool:
    p = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "run", "--help"], capture_output=True, text=True,
                       timeout=60, cwd=REPO)
    return p.returncode == 0 and "--compare" in p.stdout


def test_nnjit_cli_main_run(bundles):
    if not _main_knows_run():
        pytest.skip("nnjit.cli.main does not dispatch `run` yet")
    p = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "run", str(bundles["madd"]), "--runs", "2", "--json"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["outputs"] == {"z": [2, 5]}
