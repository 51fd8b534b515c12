"""A fast, fixed slice of the ONNX node conformance suite (the full run: `make conformance`).

A seeded sample of onnx's node tests whose op the compiler claims and whose tensors use only the
dtypes it supports runs on wasm and webgpu; unsupported ops must fail at compile time with
UnsupportedOpError, unsupported dtypes with a named NnjitError (never a crash)."""
import random

import onnx
import pytest

from nnjit.bench import conformance
from nnjit.compiler.ir import DTYPE_SIZES
from nnjit.compiler.lower import supported_ops

SAMPLE = 100  # about 60 of them compile (the others are op variants the compiler rejects by name)
SEED = 20261126
DTYPES = {onnx.helper.np_dtype_to_tensor_dtype(__import__("numpy").dtype(d)) for d in DTYPE_SIZES}


def _plain_dtypes(test_dir) -> bool:
    m = onnx.load(str(test_dir / "model.onnx"))
    return all(v.type.HasField("tensor_type") and v.type.tensor_type.elem_type in DTYPES
               for v in list(m.graph.input) + list(m.graph.output))


@pytest.fixture(scope="module")
def suite():
    root = conformance.generate()
    return root, conformance.load_index()


def test_sample_passes_on_wasm_and_webgpu(suite):
    """Of a seeded sample of tests of claimed ops, the ones that compile (the rest must end in a named
    NnjitError: an op variant the compiler does not handle) pass on both backends, ≥ 95% each."""
    root, index = suite
    claimed = set(supported_ops())
    names = sorted(n for n, m in index.items() if m["kind"] == "node" and m["op"] in claimed and _plain_dtypes(root / n))
    sample = sorted(random.Random(SEED).sample(names, SAMPLE))
    res = conformance.run_suite(sample, jobs=2, timeout_s=60, webgpu_if_wasm_passed=False)
    ran = [n for n in sample if res[n]["wasm"]["status"] != "unsupported"]
    assert len(ran) >= 50, f"only {len(ran)} of the sample compiled"
    for b in ("wasm", "webgpu"):
        crashes = {n: r[b] for n, r in res.items() if r[b]["status"] in ("crash", "timeout")}
        assert not crashes, f"{b}: crashes {crashes}"
        # A dtype WGSL lacks compiles for wasm only, by design: webgpu reports it unsupported, by name.
        wasm_only = [n for n in ran if b == "webgpu" and res[n][b]["status"] == "unsupported"]
        assert all("no webgpu kernel" in res[n][b]["reason"] for n in wasm_only), {n: res[n][b] for n in wasm_only}
        ran_b = [n for n in ran if n not in wasm_only]
        bad = {n: res[n][b] for n in ran_b if res[n][b]["status"] != "pass"}
        assert len(ran_b) - len(bad) >= 0.95 * len(ran_b), f"{b}: {len(ran_b) - len(bad)}/{len(ran_b)} passed; failing: {bad}"


@pytest.mark.parametrize("name", ["test_cos", "test_hardmax_example", "test_lrn_default", "test_gather_elements_0"])
def test_unsupported_op_fails_at_compile_time(suite, name):
    root, index = suite
    assert index[name]["op"] not in supported_ops()
    r = conformance.run_test(root / name)
    for b in ("wasm", "webgpu"):
        assert r[b]["status"] == "unsupported", r
        assert r[b]["reason"].startswith("UnsupportedOpError: unsupported op"), r


@pytest.mark.parametrize("name", ["test_cast_FLOAT_to_BFLOAT16", "test_equal_string"])
def test_unsupported_dtype_is_a_named_error(suite, name):
    root, _ = suite
    r = conformance.run_test(root / name)
    assert r["wasm"]["status"] == "unsupported", r
    assert r["wasm"]["reason"].split(":")[0].endswith("Error"), r


@pytest.mark.parametrize("name", ["test_add_uint64", "test_max_float64", "test_maxpool_2d_uint8"])
def test_dtype_wgsl_lacks_runs_on_wasm_and_is_named_on_webgpu(suite, name):
    """Arithmetic on 64-bit integers and floats, float16, and casts of 8/16-bit integers compile for
    wasm only; the webgpu side says which step."""
    root, _ = suite
    r = conformance.run_test(root / name, webgpu_if_wasm_passed=False)
    assert r["wasm"]["status"] == "pass", r
    assert r["webgpu"]["status"] == "unsupported" and "no webgpu kernel" in r["webgpu"]["reason"], r


@pytest.mark.parametrize("name", ["test_slice_neg_steps", "test_reduce_sum_keepdims_random"])
def test_shape_deciding_inputs_are_bound_at_compile_time(suite, name):
    """The runner freezes exactly the inputs the compiler names (UnsupportedOpError.needs_constant)."""
    root, _ = suite
    r = conformance.run_test(root / name, webgpu_if_wasm_passed=False)
    assert r["wasm"]["status"] == "pass" and r["webgpu"]["status"] == "pass", r
    assert r["bound"] and "data" not in r["bound"], r


def test_compare_matches_onnx_tolerances():
    import numpy as np
    e = np.array([1.0, np.nan, 1e-8], np.float32)
    assert conformance.compare(e, e.copy()) is None
    assert conformance.compare(e, np.array([1.0005, np.nan, 0], np.float32)) is None
    assert "values off" in conformance.compare(e, np.array([1.01, np.nan, 0], np.float32))
    assert "NaN" in conformance.compare(e, np.array([1.0, 0, 0], np.float32))
    assert "dtype" in conformance.compare(e, e.astype(np.float64))
