"""The JS loader rejects the fuzz corpus's mutated manifests with a BundleError, like the Python loader."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from nnjit.browsers.page_runner import PageError
from nnjit.compiler.pipeline import compile_model

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CASES = [c for c in json.loads((ROOT / "fuzz" / "corpus" / "bundle" / "cases.json").read_text())
         if not c["fmuts"] and c["muts"][0]["op"] != "raw" and c["base"] == "Conv_3x3_p1"]


@pytest.fixture(scope="module")
def conv_bundle(tmp_path_factory):
    import sys
    sys.path.insert(0, str(ROOT.parent))
    from tests.op_cases import CASES as OPS
    d = tmp_path_factory.mktemp("fuzzjs")
    onnx.save(OPS["Conv_3x3_p1"][0], d / "m.onnx")
    compile_model(d / "m.onnx", d / "b", backends=("wasm",))
    return d / "b"


@pytest.mark.parametrize("case", CASES, ids=[c["why"][:40] for c in CASES])
def test_js_loader_rejects_mutated_manifest(harness, conv_bundle, tmp_path, case):
    from tests.fuzz.test_fuzz_bundle import apply_mutation
    d = shutil.copytree(conv_bundle, tmp_path / "b")
    m = json.loads((d / "manifest.json").read_text())
    for mut in case["muts"]:
        try:
            m = apply_mutation(m, mut)
        except (KeyError, IndexError):
            pytest.skip("mutation does not apply to the wasm-only bundle")
    (d / "manifest.json").write_text(json.dumps(m))
    feeds = {"x": np.zeros((1, 3, 13, 13), np.float32)}
    with pytest.raises(PageError) as e:
        harness.run_bundle(d, feeds, runs=1)
    assert e.value.name == "BundleError", (case["why"], e.value)
