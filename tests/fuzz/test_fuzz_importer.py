"""Fuzz the ONNX importer + compiler: mutated/truncated protobufs of small valid models and
structurally bad graphs. Every case must compile or raise a NnjitError subclass (one-line message)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nnjit.compiler.pipeline import compile_model

from ..op_cases import CASES
from ._harness import FUZZ, expect_named

SEEDS = ["Relu_7x37", "Conv_3x3_p1", "MatMul_const_7x37x13", "Reshape_Transpose", "Gather_runtime_idx",
         "Shape_chain_folded", "Softmax_last", "Add_broadcast_both", "Concat_axis1", "Slice_steps"]
SEED_BYTES = {n: CASES[n][0].SerializeToString() for n in SEEDS}


def compile_bytes(data: bytes, backends=("wasm",)):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.onnx"
        p.write_bytes(data)
        return expect_named("importer", lambda: compile_model(p, Path(d) / "b", backends=backends))


@st.composite
def mutated_protobuf(draw):
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "random", "flip+truncate"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    data = bytearray(SEED_BYTES[draw(st.sampled_from(SEEDS))])
    if "flip" in kind:
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    if "truncate" in kind:
        data = data[: draw(st.integers(0, len(data) - 1))]
    if kind == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@FUZZ
@given(mutated_protobuf(), st.booleans())
def test_mutated_protobufs_fail_named(data, webgpu):
    compile_bytes(data, ("wasm", "webgpu") if webgpu else ("wasm",))


# ---- structurally bad graphs built with onnx.helper ----

DTYPES = [T.FLOAT, T.INT64, T.INT32, T.BOOL, T.DOUBLE, T.FLOAT16, T.UINT8, T.STRING, T.INT8]
DIMS = st.one_of(st.sampled_from([0, 1, 2, 3, 7]), st.sampled_from([2**31, 2**40, 2**62]), st.just("N"),
                 st.just(-1), st.integers(0, 9))
SHAPES = st.one_of(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.lists(st.integers(1, 6), min_size=1, max_size=3),
                   st.none(), st.lists(DIMS, max_size=4))
OK_DTYPES = st.one_of(st.just(T.FLOAT), st.just(T.FLOAT), st.sampled_from(DTYPES))
OPS = ["Relu", "Add", "MatMul", "Conv", "Reshape", "Gather", "Softmax", "Concat", "Transpose", "Cast",
       "Identity", "Expand", "ConstantOfShape", "Slice", "Gemm", "MaxPool", "Unsqueeze", "Where", "FooBar"]
ATTR_VALUES = st.one_of(st.integers(-3, 5), st.sampled_from([2**40, -2**40]), st.floats(allow_nan=True, width=32),
                        st.text(max_size=4), st.lists(st.integers(-3, 5), max_size=4),
                        st.lists(st.floats(-2, 2, width=32), min_size=1, max_size=3))
ATTR_NAMES = st.sampled_from(["axis", "axes", "perm", "kernel_shape", "pads", "strides", "to", "alpha",
                              "transB", "group", "value", "bogus_attr", "dilations", "keepdims"])


def _safe_tensor(dtype, shape):
    """An initializer of `dtype` and a small shape (huge/unknown dims become 1)."""
    dims = [d if isinstance(d, int) and 0 <= d <= 8 else 1 for d in (shape or [])]
    np_t = {T.FLOAT: np.float32, T.INT64: np.int64, T.INT32: np.int32, T.BOOL: np.bool_, T.DOUBLE: np.float64,
            T.FLOAT16: np.float16, T.UINT8: np.uint8, T.INT8: np.int8}.get(dtype)
    if np_t is None:
        return None
    return np.ones(dims, np_t)


@st.composite
def bad_graph(draw):
    n_inputs = draw(st.integers(0, 3))
    values = []
    inputs = []
    for i in range(n_inputs):
        inputs.append(helper.make_tensor_value_info(f"in{i}", draw(OK_DTYPES), draw(SHAPES)))
        values.append(f"in{i}")
    inits = []
    for i in range(draw(st.integers(0, 2))):
        arr = _safe_tensor(draw(OK_DTYPES), draw(SHAPES))
        if arr is not None:
            inits.append(numpy_helper.from_array(arr, f"w{i}"))
            values.append(f"w{i}")
    nodes = []
    for k in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPS))
        hostile = draw(st.integers(0, 3)) == 0
        pool = values + (["dangling", "missing_init", ""] if hostile or not values else [])
        ins = draw(st.lists(st.sampled_from(pool), min_size=0 if hostile else 1, max_size=3))
        out = draw(st.sampled_from([f"v{k}", "dup", "in0"])) if hostile else f"v{k}"
        attrs = {}
        for _ in range(draw(st.integers(0, 2)) if hostile else draw(st.sampled_from([0, 0, 0, 1]))):
            attrs[draw(ATTR_NAMES)] = draw(ATTR_VALUES)
        try:
            nodes.append(helper.make_node(op, ins, [out], name=f"n{k}", **attrs))
        except Exception:
            nodes.append(helper.make_node(op, ins, [out], name=f"n{k}"))
        values.append(out)
    if draw(st.integers(0, 5)) == 0 and len(nodes) > 1:  # a cycle: the first node reads the last node's output
        nodes[0].input.append(nodes[-1].output[0])
    if draw(st.integers(0, 5)) == 0:
        nodes = draw(st.permutations(nodes))
    outs = draw(st.lists(st.sampled_from(values[-2:] + ["nowhere"] if draw(st.integers(0, 5)) == 0 else values[-1:]),
                         min_size=1, max_size=2))
    outputs = [helper.make_tensor_value_info(o, draw(OK_DTYPES), draw(st.one_of(st.none(), st.none(), SHAPES)))
               for o in outs]
    graph = helper.make_graph(nodes, "fuzz", inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", draw(st.sampled_from([13, 17, 20])))])
    m.ir_version = draw(st.sampled_from([9, 9, 9, 9, 9, 8, 3, 0, 99]))
    if draw(st.integers(0, 5)) == 0 and inits:  # declare an initializer as an input too (older IR style)
        m.graph.input.append(helper.make_tensor_value_info(inits[0].name, inits[0].data_type, list(inits[0].dims)))
    return m.SerializeToString()


@FUZZ
@given(bad_graph())
def test_bad_graphs_fail_named(data):
    compile_bytes(data)


def test_cli_exits_2_with_one_named_line(tmp_path):
    """A few cases through the real CLI: exit 2 and exactly one `Name: message` stderr line."""
    cases = {
        "random.onnx": b"\x08\x07\x12\x00garbage" * 5,
        "cut.onnx": SEED_BYTES["Conv_3x3_p1"][:300],
        "dangling.onnx": helper.make_model(helper.make_graph(
            [helper.make_node("Relu", ["nope"], ["y"])], "g", [], [helper.make_tensor_value_info("y", T.FLOAT, [3])]),
            opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
        "string.onnx": helper.make_model(helper.make_graph(  # reading a string's text: refused by name
            [helper.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], "g", [helper.make_tensor_value_info("x", T.STRING, [3])],
            [helper.make_tensor_value_info("y", T.FLOAT, [3])]), opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        r = subprocess.run([sys.executable, "-m", "nnjit.cli.main", "compile", str(tmp_path / name), "-o",
                            str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, (name, r.returncode, r.stderr[-2000:])
        assert len(lines) == 1 and lines[0].split(":")[0].endswith("Error"), (name, r.stderr)


# ---- one structural defect in an otherwise valid model (reaches shape inference, folding, lowering) ----

ALL_SEEDS = sorted(CASES)


@st.composite
def structurally_mutated(draw):
    m = onnx.ModelProto()
    m.CopyFrom(CASES[draw(st.sampled_from(ALL_SEEDS))][0])
    g = m.graph
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["dim", "dtype", "drop_init", "attr_unknown", "attr_type", "attr_value",
                                     "dup_output", "dangling", "cycle", "init_dtype", "opset"]))
        nodes = list(g.node)
        if kind == "dim" and g.input:
            vi = g.input[draw(st.integers(0, len(g.input) - 1))]
            dims = vi.type.tensor_type.shape.dim
            if dims:
                d = dims[draw(st.integers(0, len(dims) - 1))]
                v = draw(st.sampled_from([0, 0, 2**31, 2**40, 2**62, -1, "N", 1, 5]))
                d.Clear()
                if isinstance(v, str):
                    d.dim_param = v
                else:
                    d.dim_value = v
        elif kind == "dtype" and g.input:
            g.input[draw(st.integers(0, len(g.input) - 1))].type.tensor_type.elem_type = draw(st.sampled_from(DTYPES))
        elif kind == "drop_init" and g.initializer:
            del g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        elif kind == "init_dtype" and g.initializer:
            t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
            t.data_type = draw(st.sampled_from(DTYPES))
        elif kind in ("attr_unknown", "attr_type", "attr_value") and nodes:
            n = nodes[draw(st.integers(0, len(nodes) - 1))]
            if kind == "attr_unknown" or not n.attribute:
                n.attribute.append(helper.make_attribute(draw(ATTR_NAMES), draw(ATTR_VALUES.filter(
                    lambda v: not (isinstance(v, list) and not v)))))
            else:
                a = n.attribute[draw(st.integers(0, len(n.attribute) - 1))]
                name = a.name
                if kind == "attr_type":
                    v = draw(ATTR_VALUES.filter(lambda v: not (isinstance(v, list) and not v)))
                    n.attribute.remove(a)
                    n.attribute.append(helper.make_attribute(name, v))
                elif a.type == onnx.AttributeProto.INT:
                    a.i = draw(st.sampled_from([-5, -1, 0, 1, 2, 9, 2**40]))
                elif a.type == onnx.AttributeProto.INTS and a.ints:
                    a.ints[draw(st.integers(0, len(a.ints) - 1))] = draw(st.sampled_from([-5, -1, 0, 2, 9, 2**40]))
                elif a.type == onnx.AttributeProto.FLOAT:
                    a.f = draw(st.floats(width=32, allow_nan=True))
        elif kind == "dup_output" and len(nodes) >= 1:
            n = nodes[-1]
            n.output.append(n.output[0])
        elif kind == "dangling" and nodes and nodes[0].input:
            nodes[0].input[0] = "nowhere"
        elif kind == "cycle" and nodes:
            nodes[0].input.append(nodes[-1].output[0])
        elif kind == "opset":
            m.opset_import[0].version = draw(st.sampled_from([1, 6, 11, 13, 21, 22, 99]))
    return m.SerializeToString()


@FUZZ
@given(structurally_mutated())
def test_structurally_mutated_models_fail_named(data):
    compile_bytes(data)
