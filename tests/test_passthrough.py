"""Sequence and optional graph inputs passed through Identity (compiler/passthrough.py), beside a tensor
path, natively on wasm and WebGPU; fed values checked against the declared type; any other consumer
of a sequence refused by name."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from nnjit.compiler.errors import BundleError, InputError, UnsupportedOpError
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

SEQ = helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.FLOAT, None))
OPT = helper.make_optional_type_proto(helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.INT64, [3])))


def model(path, extra=None) -> None:
    nodes = [helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Identity", ["s"], ["s1"]),
             helper.make_node("Identity", ["s1"], ["s2"]), helper.make_node("Identity", ["o"], ["o2"])]
    outs = [helper.make_tensor_value_info("b", T.FLOAT, [7]), helper.make_value_info("s2", SEQ), helper.make_value_info("o2", OPT)]
    if extra:
        nodes.append(helper.make_node(extra, ["s"], ["n"]))
        outs.append(helper.make_tensor_value_info("n", T.INT64, []))
    g = helper.make_graph(nodes, "pt", [helper.make_tensor_value_info("a", T.FLOAT, [7]), helper.make_value_info("s", SEQ),
                                        helper.make_value_info("o", OPT)], outs)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("passthrough")
    model(d / "m.onnx")
    compile_model(d / "m.onnx", d / "b", backends=("wasm", "webgpu"))
    return d / "b"


A = np.linspace(-3, 3, 7, dtype=np.float32)
S = [np.arange(5, dtype=np.float32), np.ones((2, 3), np.float32), np.zeros((0,), np.float32)]
O = [np.array([1, 2, 3], np.int64)]


def check(out, opt):
    np.testing.assert_array_equal(out["b"], np.maximum(A, 0))
    assert len(out["s2"]) == 3 and all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(out["s2"], S))
    if opt is None:
        assert out["o2"] is None
    else:
        assert len(out["o2"]) == 1 and np.array_equal(out["o2"][0], opt[0])


def test_manifest_lists_the_passthrough_values(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    assert [i["name"] for i in m["inputs"]] == ["a"] and [o["name"] for o in m["outputs"]] == ["b"]
    assert m["passthrough"] == [
        {"output": "s2", "input": "s", "type": {"kind": "sequence", "elem": {"kind": "tensor", "dtype": "float32", "shape": None}}},
        {"output": "o2", "input": "o", "type": {"kind": "optional", "elem": {"kind": "sequence",
                                                                             "elem": {"kind": "tensor", "dtype": "int64", "shape": [3]}}}}]


def test_wasm_passes_sequences_and_optionals_through(bundle):
    s = NativeSession(bundle)
    check(s.run({"a": A, "s": S, "o": O}), O)
    check(s.run({"a": A, "s": S, "o": None}), None)
    check(s.run({"a": A, "s": S}), None)  # an optional input may be left out


def test_webgpu_passes_them_through(bundle, gpu_session):
    check(gpu_session(bundle).run({"a": A, "s": S, "o": O}), O)


@pytest.mark.parametrize("feeds, msg", [
    ({"a": A, "s": np.ones(3, np.float32)}, r"input 's': expected a sequence \(a list\) of tensor\(float32\), got ndarray"),
    ({"a": A, "s": [S[0], np.ones(2, np.int32)]}, r"input 's'\[1\]: expected dtype float32, got int32"),
    ({"a": A, "s": S, "o": [np.ones(4, np.int64)]}, r"input 'o'\[0\]: expected shape \[3\], got \[4\]"),
    ({"a": A}, r"missing input 's' \(sequence\(tensor\(float32\)\)\)"),
])
def test_bad_feeds_are_input_errors(bundle, feeds, msg):
    with pytest.raises(InputError, match=msg):
        NativeSession(bundle).run(feeds)


def test_other_consumers_of_a_sequence_are_refused_by_name(tmp_path):
    model(tmp_path / "m.onnx", extra="SequenceLength")
    with pytest.raises(UnsupportedOpError, match=r"\(SequenceLength\): input 's' is a sequence\(tensor\(float32\)\); "
                                                  r"sequences and optionals are compiled only as graph inputs passed through Identity"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm",))


def test_a_bad_passthrough_type_is_a_bundle_error(bundle, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    m = json.loads((bad / "manifest.json").read_text())
    m["passthrough"][0]["type"]["elem"] = {"kind": "map"}
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"passthrough\[0\]\.type\.elem: expected a type object with kind tensor, sequence or optional"):
        NativeSession(bad)
