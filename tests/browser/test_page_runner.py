"""browsers/page_runner.py: bundles and the onnxruntime-web baseline driven from Python."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from nnjit.bench.inputs import random_inputs
from nnjit.browsers.page_runner import PageError, run_bundle_in_browser, verify_bundle
from nnjit.browsers.server import REPO
from nnjit.compiler.errors import BundleError
from nnjit_test_bundles import W

pytestmark = pytest.mark.browser


def madd_inputs(bundle):
    return random_inputs(verify_bundle(bundle)["inputs"], seed=3)


def test_run_bundle_outputs_and_latency(harness, bundles):
    inputs = madd_inputs(bundles["madd"])
    r = run_bundle_in_browser(bundles["madd"], inputs, runs=4, browser=harness)
    np.testing.assert_allclose(r["outputs"]["z"], inputs["x"] * inputs["y"] + W, rtol=1e-6, atol=1e-6)
    assert r["outputs"]["z"].dtype == np.float32 and r["outputs"]["z"].shape == (2, 5)
    lat = r["latency_ms"]
    assert len(lat["runs"]) == 4 and lat["first"] == lat["runs"][0]
    assert lat["median"] == pytest.approx(float(np.median(lat["runs"][1:])))
    assert r["relaxed_simd"] is True and r["worker"] is True and r["ran_in"] == "DedicatedWorkerGlobalScope"
    assert r["cross_origin_isolated"] is True


def test_reuses_a_playwright_browser(harness, bundles):
    inputs = madd_inputs(bundles["madd"])
    r = run_bundle_in_browser(bundles["madd"], inputs, runs=1, browser=harness.browser)
    np.testing.assert_allclose(r["outputs"]["z"], inputs["x"] * inputs["y"] + W, rtol=1e-6, atol=1e-6)


def test_int32_array_feeds_an_int64_input(harness, bundles):
    r = harness.run_bundle(bundles["ids"], {"ids": np.array([5, -2, 9], dtype=np.int32)}, runs=1)
    np.testing.assert_array_equal(r["outputs"]["f"], [5, -2, 9])


def test_page_errors_carry_the_js_error_name(harness, bundles, tampered):
    with pytest.raises(PageError) as e:
        harness.run_bundle(bundles["madd"], {"x": np.zeros((2, 5), np.float32)}, runs=1)
    assert e.value.name == "InputError" and 'missing input "y"' in e.value.message and e.value.is_runtime_error
    with pytest.raises(PageError) as e:
        harness.run_bundle(tampered("weights.bin"), madd_inputs(bundles["madd"]), runs=1)
    assert e.value.name == "BundleError" and "weights.bin" in e.value.message


def test_verify_bundle_names_the_tampered_file(bundles, tampered, tmp_path):
    assert verify_bundle(bundles["madd"])["format"] == "nnjit-bundle"
    with pytest.raises(BundleError, match="kernels/k1.wasm: sha256 mismatch"):
        verify_bundle(tampered("kernels/k1.wasm"))
    b = shutil.copytree(bundles["ids"], tmp_path / "ids")
    (b / "manifest.json").write_text(json.dumps({**json.loads((b / "manifest.json").read_text()), "format": "other"}))
    with pytest.raises(BundleError, match="expected 'nnjit-bundle'"):
        verify_bundle(b)


@pytest.mark.skipif(not (REPO / "node_modules/onnxruntime-web/dist").is_dir(), reason="run `npm ci` first")
def test_ort_web_baseline_matches_onnxruntime(harness, madd_model):
    rng = np.random.default_rng(5)
    inputs = {n: rng.standard_normal((2, 5), dtype=np.float32) for n in ("x", "y")}
    r = harness.run_ort(madd_model, inputs, runs=3)
    ref = ort.InferenceSession(str(madd_model), providers=["CPUExecutionProvider"]).run(["z"], inputs)[0]
    np.testing.assert_allclose(r["outputs"]["z"], ref, rtol=1e-6, atol=1e-6)
    assert r["info"]["backend"] == "ort-wasm" and r["info"]["version"] == "1.30.0" and r["info"]["threads"] == 1
    assert len(r["latency_ms"]["runs"]) == 3
