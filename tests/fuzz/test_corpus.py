"""Replay the inputs that found bugs (tests/fuzz/corpus/): each must compile/load or fail with a named error."""
import json

import pytest

from ._harness import CORPUS
from .test_fuzz_bundle import run_case
from .test_fuzz_importer import compile_bytes

ONNX = sorted((CORPUS / "onnx").glob("*.onnx"))
BUNDLE = json.loads((CORPUS / "bundle" / "cases.json").read_text())


@pytest.mark.parametrize("path", ONNX, ids=[p.stem for p in ONNX])
def test_onnx_corpus(path):
    compile_bytes(path.read_bytes())


@pytest.mark.parametrize("case", BUNDLE, ids=[c["why"][:40] for c in BUNDLE])
def test_bundle_corpus(case):
    e = run_case(case["base"], case["muts"], case["fmuts"])
    assert e is not None, f"expected a BundleError: {case['why']}"
