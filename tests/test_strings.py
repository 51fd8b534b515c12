"""String tensors (compiler/strings.py): compared and moved as interned ids, natively on wasm and on
WebGPU, against numpy on the strings themselves; ops that would read a string's text are refused by
name, and bad string feeds are InputErrors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.compiler.errors import BundleError, InputError, UnsupportedOpError
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

S = TensorProto.STRING
N = 37
WORDS = ["cat", "dog", "", "émigré", "cat ", "Cat", "dog"]


def words(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([WORDS[i] for i in rng.integers(0, len(WORDS), n)], dtype=object)


CONST = words(N, 3)


def model(path, *, op_after=None) -> None:
    """eq = a == b (b [1] broadcast); hit = a == CONST; picked = Gather(a, [5, 0, 36]);
    joined = Reshape(Concat(a, CONST)) [2, N]; chosen = Where(hit, CONST, a)."""
    nodes = [
        helper.make_node("Equal", ["a", "b"], ["eq"]),
        helper.make_node("Equal", ["a", "c"], ["hit"]),
        helper.make_node("Gather", ["a", "idx"], ["picked"]),
        helper.make_node("Concat", ["a", "c"], ["cat"], axis=0),
        helper.make_node("Reshape", ["cat", "shape"], ["joined"]),
        helper.make_node("Where", ["hit", "c", "a"], ["chosen"]),
    ]
    outs = [helper.make_tensor_value_info("eq", TensorProto.BOOL, [N]), helper.make_tensor_value_info("hit", TensorProto.BOOL, [N]),
            helper.make_tensor_value_info("picked", S, [3]), helper.make_tensor_value_info("joined", S, [2, N]),
            helper.make_tensor_value_info("chosen", S, [N])]
    if op_after:
        nodes.append(helper.make_node(op_after, ["a"], ["bad"], **({"to": TensorProto.FLOAT} if op_after == "Cast" else {})))
        outs.append(helper.make_tensor_value_info("bad", TensorProto.FLOAT, [N]))
    g = helper.make_graph(nodes, "strings", [helper.make_tensor_value_info("a", S, [N]), helper.make_tensor_value_info("b", S, [1])],
                          outs, [numpy_helper.from_array(CONST, "c"), numpy_helper.from_array(np.array([5, 0, 36], np.int64), "idx"),
                                 numpy_helper.from_array(np.array([2, N], np.int64), "shape")])
    from onnx import save
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def expected(a, b):
    hit = a == CONST
    return {"eq": a == b[0], "hit": hit, "picked": a[[5, 0, 36]], "joined": np.concatenate([a, CONST]).reshape(2, N),
            "chosen": np.where(hit, CONST, a)}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("strings")
    model(d / "m.onnx")
    compile_model(d / "m.onnx", d / "b", backends=("wasm", "webgpu"))
    return d / "b"


def check(out, a, b):
    for k, want in expected(a, b).items():
        got = out[k]
        assert got.shape == want.shape, k
        assert got.tolist() == want.tolist(), k


def test_manifest_marks_string_io_and_keeps_the_constants(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    enc = {io["name"]: io.get("encoding") for io in m["inputs"] + m["outputs"]}
    assert enc == {"a": "string", "b": "string", "eq": None, "hit": None, "picked": "string", "joined": "string", "chosen": "string"}
    assert set(m["strings"]) == set(CONST.tolist())


@pytest.mark.parametrize("seed", [0, 1])
def test_wasm_compares_and_moves_strings(bundle, seed):
    a, b = words(N, seed), np.array(["dog"], dtype=object)
    s = NativeSession(bundle)
    check(s.run({"a": a, "b": b}), a, b)
    # Another run starts its table anew: strings never seen before, bytes as well as str.
    a2 = np.array([f"w{i % 5}" for i in range(N)], dtype=object)
    a2[3] = "cat".encode()
    out = s.run({"a": a2, "b": np.array([b"w1"], dtype=object)})
    check(out, np.array([x.decode() if isinstance(x, bytes) else x for x in a2], dtype=object), np.array(["w1"], dtype=object))


def test_webgpu_compares_and_moves_strings(bundle, gpu_session):
    a, b = words(N, 7), np.array(["émigré"], dtype=object)
    check(gpu_session(bundle).run({"a": a, "b": b}), a, b)


def test_an_op_reading_the_text_is_refused_by_name(tmp_path):
    model(tmp_path / "m.onnx", op_after="Cast")
    with pytest.raises(UnsupportedOpError, match=r"\(Cast\): input 'a' is a string tensor; strings are compiled only for Equal"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm",))


def test_bad_string_feeds_are_input_errors(bundle):
    s = NativeSession(bundle)
    with pytest.raises(InputError, match=r"input 'a': expected strings \(str or UTF-8 bytes\), got int 0"):
        s.run({"a": np.arange(N), "b": np.array(["x"], dtype=object)})
    with pytest.raises(InputError, match=r"input 'b': .*not UTF-8"):
        s.run({"a": words(N, 0), "b": np.array([b"\xff\xfe"], dtype=object)})
    with pytest.raises(InputError, match=r"input 'a': expected shape \[37\], got \[36\]"):
        s.run({"a": words(36, 0), "b": np.array(["x"], dtype=object)})


def test_encoding_on_a_float_tensor_is_a_bundle_error(bundle, tmp_path):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    m = json.loads((bad / "manifest.json").read_text())
    m["outputs"][0]["encoding"] = "string"  # eq: a bool tensor
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"outputs\[0\]\.encoding: expected \"string\" on an int32 tensor of string ids"):
        NativeSession(bad)


def test_a_string_beside_a_number_is_refused(tmp_path):
    """Ids compared with numbers would be a silent wrong answer: an ill-typed Equal is named instead."""
    g = helper.make_graph([helper.make_node("Equal", ["a", "k"], ["z"])], "mixed", [helper.make_tensor_value_info("a", S, [3])],
                          [helper.make_tensor_value_info("z", TensorProto.BOOL, [3])],
                          [numpy_helper.from_array(np.array([0, 1, 2], np.int32), "k")])
    from onnx import save
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match=r"\(Equal\): input .k. is not a string tensor, but its other data inputs are"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=("wasm",))
