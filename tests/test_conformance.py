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


@pytest.mark.parametrize("name", ["test_acos", "test_hardmax_example", "test_lrn_default", "test_gather_elements_0"])
def test_unsupported_op_fails_at_compile_time(suite, name):
    root, index = suite
    assert index[name]["op"] not in supported_ops()
    r = conformance.run_test(root / name)
    for b in ("wasm", "webgpu"):
        assert r[b]["status"] == "unsupported", r
        assert r[b]["reason"].startswith("UnsupportedOpError: unsupported op"), r


@pytest.mark.parametrize("name", ["test_equal_string", "test_equal_string_broadcast", "test_identity_sequence",
                                  "test_identity_opt"])
def test_strings_and_passthrough_values_pass(suite, name):
    root, _ = suite
    r = conformance.run_test(root / name, webgpu_if_wasm_passed=False)
    assert r["wasm"]["status"] == r["webgpu"]["status"] == "pass", r


def test_a_sequence_op_is_a_named_error(suite):
    root, _ = suite
    r = conformance.run_test(root / "test_sequence_insert_at_back")
    assert r["wasm"]["status"] == "unsupported", r
    assert r["wasm"]["reason"].startswith("UnsupportedOpError: node 0 (SequenceInsert): input 'sequence' is a "
                                          "sequence(tensor(int64)); sequences and optionals are compiled only"), r


def test_dtype_wgsl_lacks_runs_on_wasm_and_is_named_on_webgpu(tmp_path):
    """float64 arithmetic (no onnx node test has it) compiles for wasm only; the webgpu side says which step."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    a, b = np.array([1.5, -2.25, 3.0], np.float64), np.array([0.25, 4.0, -1e300], np.float64)
    io = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [3]) for n in ("a", "b", "y")]
    model = helper.make_model(helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g", io[:2], io[2:]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    data = tmp_path / "test_data_set_0"
    data.mkdir()
    for name, arr in (("input_0", a), ("input_1", b), ("output_0", a + b)):
        (data / f"{name}.pb").write_bytes(numpy_helper.from_array(arr).SerializeToString())
    r = conformance.run_test(tmp_path, webgpu_if_wasm_passed=False)
    assert r["wasm"]["status"] == "pass", r
    assert r["webgpu"]["status"] == "unsupported" and "no webgpu kernel" in r["webgpu"]["reason"], r
    assert "float64" in r["webgpu"]["reason"], r


@pytest.mark.parametrize("name", ["test_add_uint64", "test_max_float64", "test_min_float16", "test_maxpool_2d_uint8",
                                  "test_maxpool_with_argmax_2d_precomputed_strides", "test_pow_types_int64_float32",
                                  "test_cast_DOUBLE_to_FLOAT16", "test_cast_FLOAT_to_FLOAT8E4M3FNUZ",
                                  "test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2", "test_cast_INT4_to_FLOAT",
                                  "test_cast_FLOAT_to_UINT2", "test_cast_e8m0_FLOAT_to_FLOAT8E8M0"])
def test_wide_and_cast_only_dtypes_pass_on_both_backends(suite, name):
    """64-bit integers, float16/float64 ordering, MaxPool Indices, and the Cast-only dtypes (float8, packed
    4/2-bit) on wasm and webgpu alike."""
    root, _ = suite
    r = conformance.run_test(root / name, webgpu_if_wasm_passed=False)
    assert r["wasm"]["status"] == "pass" and r["webgpu"]["status"] == "pass", r


@pytest.mark.parametrize("name", ["test_celu_bfloat16", "test_celu_float16", "test_range_bfloat16_type_positive_delta",
                                  "test_training_dropout", "test_training_dropout_default_mask"])
def test_widened_half_and_training_dropout_pass_on_both_backends(suite, name):
    """16-bit floats computed in float32 (passes/widen_half.py) and training Dropout's compile-time mask."""
    root, _ = suite
    r = conformance.run_test(root / name, webgpu_if_wasm_passed=False)
    assert r["wasm"]["status"] == "pass" and r["webgpu"]["status"] == "pass", r


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
