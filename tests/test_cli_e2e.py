"""The README's path on a real model: nnjit models build → nnjit compile → nnjit run --compare --json,
and the named errors of `nnjit run` on that bundle."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CLI = [sys.executable, "-m", "nnjit.cli.main"]


def nnjit(*args, timeout=300):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    r = nnjit("models", "build", "digits-cnn", "-o", root / "digits.onnx")
    assert r.returncode == 0, r.stderr
    r = nnjit("compile", root / "digits.onnx", "-o", root / "bundle", "--shape", "input=5x1x8x8")
    assert r.returncode == 0, r.stderr
    assert "arena" in r.stdout and "BN folded" in r.stdout
    return root


def test_run_compare_json(built):
    r = nnjit("run", built / "bundle", "--compare", built / "digits.onnx", "--runs", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"backend", "browser", "threads", "runs", "latency_ms", "outputs", "max_abs_err", "max_rel_err"} <= set(out)
    assert out["outputs"] == {"logits": [5, 10]} and out["backend"] == "wasm" and out["runs"] == 3
    assert set(out["latency_ms"]) == {"first", "median", "p90"}
    assert out["max_rel_err"] <= 1e-4


def test_run_wrong_input_shape_and_dtype(built, tmp_path):
    np.savez(tmp_path / "shape.npz", input=np.zeros((4, 1, 8, 8), np.float32))
    r = nnjit("run", built / "bundle", "--inputs", tmp_path / "shape.npz")
    assert r.returncode == 2 and r.stderr.startswith("InputError: ") and "input" in r.stderr and "[5, 1, 8, 8]" in r.stderr
    np.savez(tmp_path / "dtype.npz", input=np.zeros((5, 1, 8, 8), np.complex64))
    r = nnjit("run", built / "bundle", "--inputs", tmp_path / "dtype.npz")
    assert r.returncode == 2 and r.stderr.startswith("InputError: ") and "float32" in r.stderr


@pytest.mark.parametrize("target", ["weights.bin", "kernel"])
def test_run_altered_bundle(built, tmp_path, target):
    copy = shutil.copytree(built / "bundle", tmp_path / "b")
    rel = "weights.bin" if target == "weights.bin" else json.loads((copy / "manifest.json").read_text())["kernels"][0]["file"]
    data = bytearray((copy / rel).read_bytes())
    data[len(data) // 3] ^= 0x40
    (copy / rel).write_bytes(bytes(data))
    r = nnjit("run", copy)
    assert r.returncode == 2 and r.stderr.startswith("BundleError: ") and "sha256 mismatch" in r.stderr
    assert rel.split("/")[-1] in r.stderr and len(r.stderr.strip().splitlines()) == 1
