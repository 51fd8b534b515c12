"""A seeded sample of the ONNX node tests through the web runtime in Chromium, many per page load
(bench/conformance_browser.py; the whole suite is `make conformance-browser`)."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.bench.conformance import generate, load_index
from nnjit.bench.conformance_browser import prepare, run_batches
from nnjit.compiler.lower import supported_ops

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = generate()
    index = load_index()
    ops = set(supported_ops())
    names = sorted(n for n, v in index.items() if v["op"] in ops and v["kind"] == "node")
    pick = sorted(np.random.default_rng(2026).choice(names, 60, replace=False).tolist())
    # A graph whose output folds to a constant: WebGPU once read it from the arena instead of the weights.
    # And a Clip whose default bounds are infinite: the manifest once carried Python's -Infinity, not JSON.
    pick = sorted(set(pick) | {"test_shape", "test_size", "test_clip_default_inbounds"})
    work = tmp_path_factory.mktemp("confb")
    return work, prepare(pick, root, work)


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_sample_passes_in_the_page(harness, gpu_harness, prepared, backend):
    work, prep = prepared
    h = gpu_harness if backend == "webgpu" else harness
    res = run_batches(h, work, prep, backend)
    ran = {n: r for n, r in res.items() if r["status"] != "unsupported"}
    bad = {n: r for n, r in ran.items() if r["status"] != "pass"}
    assert len(ran) >= 40
    assert not [n for n, r in res.items() if r["status"] == "crash"]
    assert len(bad) <= 0.05 * len(ran), bad
    assert all(res[n]["status"] == "pass" for n in ("test_shape", "test_size", "test_clip_default_inbounds"))
