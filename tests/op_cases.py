"""One-node (or few-node) ONNX models covering the op set on odd shapes, with seeded inputs.
Shared by the native (wasmtime) and the browser (Chromium) per-op tests."""
from __future__ import annotations

import zlib

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

F, I64, B = T.FLOAT, T.INT64, T.BOOL
_NP = {F: np.float32, I64: np.int64, B: np.bool_}


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "case", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
                          [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    return m


def const(name, shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return (name, np.abs(a) + 0.1 if positive else a)


CASES: dict[str, tuple] = {}


def case(name, m, feeds_spec, rtol=1e-4):
    CASES[name] = (m, feeds_spec, rtol)


def feeds_for(name):
    m, spec, _ = CASES[name]
    r = _rng(name)
    out = {}
    for n, (dtype, shape, kind) in spec.items():
        if dtype == I64:
            lo, hi = kind
            out[n] = r.integers(lo, hi, size=shape).astype(np.int64)
        elif dtype == B:
            out[n] = r.integers(0, 2, size=shape).astype(np.bool_)
        else:
            if kind == "positive":
                out[n] = np.abs(r.standard_normal(shape)).astype(np.float32) + 0.05
            else:
                out[n] = np.asarray(r.standard_normal(shape) * (kind or 1.0), np.float32)  # 0-d stays an array
    return out


def fx(*shape, kind=None):
    return (F, list(shape), kind)


def _unary_case(op, shape, scale=3.0, **attrs):
    case(f"{op}_{'x'.join(map(str, shape))}", model([helper.make_node(op, ["x"], ["y"], **attrs)],
         [("x", F, shape)], [("y", F, None)]), {"x": fx(*shape, kind=scale)})


# MatMul / Gemm
for M, K, N in [(7, 37, 13), (1, 130, 3), (130, 7, 37), (3, 1, 5)]:
    case(f"MatMul_const_{M}x{K}x{N}", model([helper.make_node("MatMul", ["a", "w"], ["y"])], [("a", F, [M, K])],
         [("y", F, None)], [const("w", (K, N), 1)]), {"a": fx(M, K)})
case("MatMul_batched_runtime", model([helper.make_node("MatMul", ["a", "b"], ["y"])],
     [("a", F, [2, 3, 7, 5]), ("b", F, [2, 3, 5, 9])], [("y", F, None)]), {"a": fx(2, 3, 7, 5), "b": fx(2, 3, 5, 9)})
case("MatMul_broadcast_b", model([helper.make_node("MatMul", ["a", "b"], ["y"])],
     [("a", F, [3, 7, 5]), ("b", F, [5, 9])], [("y", F, None)]), {"a": fx(3, 7, 5), "b": fx(5, 9)})
case("MatMul_broadcast_a", model([helper.make_node("MatMul", ["a", "b"], ["y"])],
     [("a", F, [7, 5]), ("b", F, [2, 5, 3])], [("y", F, None)]), {"a": fx(7, 5), "b": fx(2, 5, 3)})
case("MatMul_vec", model([helper.make_node("MatMul", ["a", "w"], ["y"])], [("a", F, [37])], [("y", F, None)],
     [const("w", (37, 7), 2)]), {"a": fx(37)})
case("MatMul_bias_residual_gelu", model([
    helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Add", ["m", "bias"], ["b1"]),
    helper.make_node("Add", ["r", "b1"], ["b2"]), helper.make_node("Div", ["b2", "sq2"], ["d"]),
    helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["e", "one"], ["e1"]),
    helper.make_node("Mul", ["b2", "e1"], ["g"]), helper.make_node("Mul", ["g", "half"], ["y"])],
    [("a", F, [1, 9, 37]), ("r", F, [1, 9, 13])], [("y", F, None)],
    [const("w", (37, 13), 3), const("bias", (13,), 4), ("sq2", np.float32(np.sqrt(2))), ("one", np.float32(1)),
     ("half", np.float32(0.5))]), {"a": fx(1, 9, 37), "r": fx(1, 9, 13)})
case("Gemm_transB_bias_relu", model([helper.make_node("Gemm", ["a", "w", "c"], ["g"], transB=1),
                                     helper.make_node("Relu", ["g"], ["y"])],
     [("a", F, [5, 37])], [("y", F, None)], [const("w", (13, 37), 5), const("c", (13,), 6)]), {"a": fx(5, 37)})
case("Gemm_transA_alpha_beta", model([helper.make_node("Gemm", ["a", "w", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)],
     [("a", F, [37, 7])], [("y", F, None)], [const("w", (37, 3), 7), const("c", (7, 3), 8)]), {"a": fx(37, 7)})
case("Gemm_runtime_c", model([helper.make_node("Gemm", ["a", "w", "c"], ["y"])],
     [("a", F, [3, 5]), ("c", F, [1, 4])], [("y", F, None)], [const("w", (5, 4), 9)]), {"a": fx(3, 5), "c": fx(1, 4)})

# Conv
def _conv(name, x_shape, w_shape, bias=True, post=None, **attrs):
    nodes = [helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["c" if post else "y"], **attrs)]
    if post == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    elif post == "clip6":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    elif post == "residual":
        nodes.append(helper.make_node("Add", ["c", "x"], ["y"]))
    inits = [const("w", w_shape, 11)] + ([const("b", (w_shape[0],), 12)] if bias else [])
    if post == "clip6":
        inits += [("lo", np.float32(0)), ("hi", np.float32(0.5))]
    case(name, model(nodes, [("x", F, x_shape)], [("y", F, None)], inits), {"x": fx(*x_shape)})


_conv("Conv_3x3_p1", [1, 3, 13, 13], [8, 3, 3, 3], pads=[1, 1, 1, 1])
_conv("Conv_3x3_s2_relu", [2, 5, 13, 11], [7, 5, 3, 3], strides=[2, 2], pads=[1, 1, 1, 1], post="relu")
_conv("Conv_dilated_asym", [1, 4, 15, 9], [3, 4, 3, 2], dilations=[2, 1], pads=[2, 0, 1, 1], bias=False)
_conv("Conv_groups2", [1, 6, 9, 9], [4, 3, 3, 3], group=2, pads=[1, 1, 1, 1])
_conv("Conv_1x1_batch2_clip", [2, 5, 7, 7], [3, 5, 1, 1], post="clip6")
_conv("Conv_1x1_residual", [1, 6, 5, 7], [6, 6, 1, 1], post="residual")
_conv("Conv_depthwise_s1", [1, 8, 13, 13], [8, 1, 3, 3], group=8, pads=[1, 1, 1, 1], post="relu")
_conv("Conv_depthwise_s2", [1, 7, 14, 15], [7, 1, 3, 3], group=7, strides=[2, 2], pads=[1, 1, 1, 1])
_conv("Conv_depthwise_5x5_residual", [1, 5, 9, 9], [5, 1, 5, 5], group=5, pads=[2, 2, 2, 2], post="residual")
_conv("Conv_same_upper", [1, 2, 7, 8], [3, 2, 3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
_conv("Conv_1d", [1, 3, 37], [5, 3, 3], pads=[1, 1])
case("Conv_bn_folded", model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                              helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["y"])],
     [("x", F, [1, 3, 9, 9])], [("y", F, None)],
     [const("w", (4, 3, 3, 3), 13), const("g", (4,), 14), const("be", (4,), 15), const("mu", (4,), 16),
      const("var", (4,), 17, positive=True)]), {"x": fx(1, 3, 9, 9)})

# Elementwise
for op in ["Add", "Sub", "Mul", "Div"]:
    case(f"{op}_broadcast_both", model([helper.make_node(op, ["a", "b"], ["y"])], [("a", F, [3, 1, 5]), ("b", F, [1, 4, 1])],
         [("y", F, None)]), {"a": fx(3, 1, 5), "b": fx(1, 4, 1, kind="positive")})
case("Add_scalar_const", model([helper.make_node("Add", ["a", "c"], ["y"])], [("a", F, [7, 37])], [("y", F, None)],
     [("c", np.float32(1.5))]), {"a": fx(7, 37)})
case("Mul_row", model([helper.make_node("Mul", ["a", "c"], ["y"])], [("a", F, [2, 130])], [("y", F, None)],
     [const("c", (130,), 18)]), {"a": fx(2, 130)})
case("Pow_square", model([helper.make_node("Pow", ["a", "e"], ["y"])], [("a", F, [3, 37])], [("y", F, None)],
     [("e", np.float32(2))]), {"a": fx(3, 37)})
case("Pow_general", model([helper.make_node("Pow", ["a", "e"], ["y"])], [("a", F, [3, 7]), ("e", F, [7])],
     [("y", F, None)]), {"a": fx(3, 7, kind="positive"), "e": fx(7)})
case("Pow_int_float", model([helper.make_node("Pow", ["a", "e"], ["y"])], [("a", I64, [3, 7])], [("y", I64, None)],
     [("e", np.float32([0, 1, 2, 3, -1, 0.3, 2.7]))]), {"a": (I64, [3, 7], (1, 10))})  # a negative base to 0.3 is NaN: UB to cast
for op, shape in [("Relu", [7, 37]), ("Sigmoid", [3, 130]), ("Tanh", [1, 7]), ("Erf", [37]), ("Exp", [13]),
                  ("Neg", [5]), ("Abs", [9])]:
    _unary_case(op, shape)
case("Sqrt_37", model([helper.make_node("Sqrt", ["x"], ["y"])], [("x", F, [37])], [("y", F, None)]),
     {"x": fx(37, kind="positive")})
case("Clip_attr_range", model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [("x", F, [3, 13])], [("y", F, None)],
     [("lo", np.float32(-0.5)), ("hi", np.float32(0.7))]), {"x": fx(3, 13)})
case("Gelu_op20", model([helper.make_node("Gelu", ["x"], ["y"])], [("x", F, [2, 37])], [("y", F, None)], opset=20),
     {"x": fx(2, 37, kind=3.0)})
case("Where_broadcast", model([helper.make_node("Where", ["c", "a", "b"], ["y"])],
     [("c", B, [3, 1]), ("a", F, [3, 7]), ("b", F, [7])], [("y", F, None)]),
     {"c": (B, [3, 1], None), "a": fx(3, 7), "b": fx(7)})
case("Less_Where", model([helper.make_node("Less", ["a", "b"], ["c"]), helper.make_node("Where", ["c", "a", "b"], ["y"])],
     [("a", F, [5, 6]), ("b", F, [5, 6])], [("y", F, None)]), {"a": fx(5, 6), "b": fx(5, 6)})
case("Cast_int64_float", model([helper.make_node("Cast", ["i"], ["y"], to=F)], [("i", I64, [3, 5])], [("y", F, None)]),
     {"i": (I64, [3, 5], (-50, 50))})

# Normalisation and reductions
case("Softmax_last", model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", F, [3, 37])], [("y", F, None)]),
     {"x": fx(3, 37, kind=10.0)})
case("Softmax_axis1", model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [("x", F, [2, 7, 5])], [("y", F, None)]),
     {"x": fx(2, 7, 5)})
case("LayerNorm", model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)],
     [("x", F, [2, 5, 37])], [("y", F, None)], [const("s", (37,), 21), const("b", (37,), 22)]), {"x": fx(2, 5, 37)})
case("LayerNorm_nobias", model([helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=-1)],
     [("x", F, [3, 130])], [("y", F, None)], [const("s", (130,), 23)]), {"x": fx(3, 130)})
case("BatchNorm_standalone", model([helper.make_node("BatchNormalization", ["x", "g", "be", "mu", "var"], ["y"])],
     [("x", F, [2, 3, 5, 5])], [("y", F, None)],
     [const("g", (3,), 24), const("be", (3,), 25), const("mu", (3,), 26), const("var", (3,), 27, positive=True)]),
     {"x": fx(2, 3, 5, 5)})
case("MaxPool_3x3_s2_p1", model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
     pads=[1, 1, 1, 1])], [("x", F, [1, 3, 13, 13])], [("y", F, None)]), {"x": fx(1, 3, 13, 13)})
case("MaxPool_indices", model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3], strides=[2, 2],
     pads=[1, 1, 1, 1])], [("x", F, [2, 3, 7, 9])], [("y", F, None), ("i", I64, None)]), {"x": fx(2, 3, 7, 9)})
case("MaxPool_ceil", model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
     [("x", F, [1, 2, 7, 9])], [("y", F, None)]), {"x": fx(1, 2, 7, 9)})
case("AveragePool_pad_exclude", model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
     pads=[1, 1, 1, 1])], [("x", F, [1, 2, 7, 7])], [("y", F, None)]), {"x": fx(1, 2, 7, 7)})
case("AveragePool_pad_include", model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
     pads=[1, 1, 1, 1], count_include_pad=1)], [("x", F, [1, 2, 9, 7])], [("y", F, None)]), {"x": fx(1, 2, 9, 7)})
case("GlobalAveragePool", model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], [("x", F, [2, 5, 7, 7])],
     [("y", F, None)]), {"x": fx(2, 5, 7, 7)})
case("ReduceMean_last_keep", model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1])], [("x", F, [3, 37])],
     [("y", F, None)], opset=17), {"x": fx(3, 37)})
case("ReduceMean_mid_axes", model([helper.make_node("ReduceMean", ["x", "ax"], ["y"], keepdims=0)], [("x", F, [2, 3, 5, 7])],
     [("y", F, None)], [("ax", np.array([1, 2], np.int64))], opset=18), {"x": fx(2, 3, 5, 7)})

# Data movement
case("Reshape_Transpose", model([helper.make_node("Reshape", ["x", "s"], ["r"]),
                                 helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1, 3])],
     [("x", F, [1, 7, 12])], [("y", F, None)], [("s", np.array([1, 7, 3, 4], np.int64))]), {"x": fx(1, 7, 12)})
case("Transpose_3d", model([helper.make_node("Transpose", ["x"], ["y"], perm=[2, 0, 1])], [("x", F, [3, 5, 7])],
     [("y", F, None)]), {"x": fx(3, 5, 7)})
case("Flatten_Gemm", model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])],
     [("x", F, [2, 3, 4, 5])], [("y", F, None)], [const("w", (60, 7), 31)]), {"x": fx(2, 3, 4, 5)})
case("Concat_axis1", model([helper.make_node("Concat", ["a", "b", "c"], ["y"], axis=1)],
     [("a", F, [2, 3, 5]), ("b", F, [2, 1, 5])], [("y", F, None)], [const("c", (2, 4, 5), 32)]),
     {"a": fx(2, 3, 5), "b": fx(2, 1, 5)})
case("Slice_steps", model([helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], [("x", F, [7, 37])],
     [("y", F, None)], [("st", np.array([1, 35], np.int64)), ("en", np.array([7, 2], np.int64)),
                        ("ax", np.array([0, 1], np.int64)), ("sp", np.array([2, -3], np.int64))]), {"x": fx(7, 37)})
case("Gather_runtime_idx", model([helper.make_node("Gather", ["d", "i"], ["y"], axis=0)], [("i", I64, [2, 5])],
     [("y", F, None)], [const("d", (30, 13), 33)]), {"i": (I64, [2, 5], (-30, 30))})
case("Gather_axis1_const", model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], [("x", F, [3, 7, 5])],
     [("y", F, None)], [("i", np.array([6, 0, -1], np.int64))]), {"x": fx(3, 7, 5)})
case("Squeeze_Unsqueeze", model([helper.make_node("Unsqueeze", ["x", "a0"], ["u"]), helper.make_node("Relu", ["u"], ["r"]),
                                 helper.make_node("Squeeze", ["r", "a0"], ["y"])],
     [("x", F, [3, 5])], [("y", F, None)], [("a0", np.array([1], np.int64))]), {"x": fx(3, 5)})
case("Expand", model([helper.make_node("Expand", ["x", "s"], ["y"])], [("x", F, [3, 1])], [("y", F, None)],
     [("s", np.array([2, 3, 6], np.int64))]), {"x": fx(3, 1)})
case("Shape_chain_folded", model([
    helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n0"], axis=0),
    helper.make_node("Unsqueeze", ["n0", "ax"], ["n0u"]), helper.make_node("Concat", ["n0u", "m1"], ["ns"], axis=0),
    helper.make_node("Reshape", ["x", "ns"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
    [("x", F, [3, 4, 5])], [("y", F, None)],
    [("zero", np.array(0, np.int64)), ("ax", np.array([0], np.int64)), ("m1", np.array([-1], np.int64))]),
    {"x": fx(3, 4, 5)})
case("Constant_add", model([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.arange(5, dtype=np.float32))),
                            helper.make_node("Add", ["x", "c"], ["y"])], [("x", F, [2, 5])], [("y", F, None)]),
     {"x": fx(2, 5)})
case("Identity_input", model([helper.make_node("Identity", ["x"], ["y"])], [("x", F, [7])], [("y", F, None)]), {"x": fx(7)})

# Variants found by the ONNX node conformance suite (make conformance)
case("Clip_runtime_bounds", model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
     [("x", F, [3, 13]), ("lo", F, []), ("hi", F, [])], [("y", F, None)]),
     {"x": fx(3, 13, kind=3.0), "lo": fx(), "hi": fx()})
case("Clip_runtime_max_only", model([helper.make_node("Clip", ["x", "", "hi"], ["y"])],
     [("x", F, [2, 9]), ("hi", F, [])], [("y", F, None)]), {"x": fx(2, 9), "hi": fx()})
case("Max_variadic_broadcast", model([helper.make_node("Max", ["a", "b", "c"], ["y"])],
     [("a", F, [3, 1, 5]), ("b", F, [4, 5]), ("c", F, [5])], [("y", F, None)]),
     {"a": fx(3, 1, 5), "b": fx(4, 5), "c": fx(5)})
case("Min_one_input", model([helper.make_node("Min", ["a"], ["y"])], [("a", F, [6, 7])], [("y", F, None)]),
     {"a": fx(6, 7)})
case("LayerNorm_mean_invstd", model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "m", "r"], axis=1)],
     [("x", F, [3, 5, 7]), ("s", F, [5, 7]), ("b", F, [7])], [("y", F, None), ("m", F, None), ("r", F, None)]),
     {"x": fx(3, 5, 7, kind=3.0), "s": fx(5, 7), "b": fx(7)})
case("BatchNorm_runtime_stats", model([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"])],
     [("x", F, [2, 5, 7, 3]), ("g", F, [5]), ("b", F, [5]), ("m", F, [5]), ("v", F, [5])], [("y", F, None)]),
     {"x": fx(2, 5, 7, 3), "g": fx(5), "b": fx(5), "m": fx(5), "v": fx(5, kind="positive")})
case("Conv_runtime_weights", model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 1, 2], strides=[2, 1])],
     [("x", F, [2, 3, 9, 7]), ("w", F, [5, 3, 3, 2]), ("b", F, [5])], [("y", F, None)]),
     {"x": fx(2, 3, 9, 7), "w": fx(5, 3, 3, 2), "b": fx(5)})
case("Conv_runtime_depthwise", model([helper.make_node("Conv", ["x", "w"], ["y"], group=4, pads=[1, 1, 1, 1])],
     [("x", F, [1, 4, 7, 5]), ("w", F, [4, 1, 3, 3])], [("y", F, None)]), {"x": fx(1, 4, 7, 5), "w": fx(4, 1, 3, 3)})
case("Gemm_runtime_alpha_beta", model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=-2.0, transB=1)],
     [("a", F, [7, 13]), ("b", F, [5, 13]), ("c", F, [1, 5])], [("y", F, None)]),
     {"a": fx(7, 13), "b": fx(5, 13), "c": fx(1, 5)})
case("MaxPool_3d", model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3, 3], strides=[1, 2, 2],
     pads=[0, 1, 1, 1, 1, 1], dilations=[2, 1, 1])], [("x", F, [1, 2, 7, 9, 5])], [("y", F, None)]),
     {"x": fx(1, 2, 7, 9, 5)})
case("AveragePool_3d_ceil", model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2, 2], strides=[2, 2, 2],
     pads=[1, 0, 1, 1, 0, 0], ceil_mode=1, count_include_pad=1)], [("x", F, [2, 1, 6, 7, 5])], [("y", F, None)]),
     {"x": fx(2, 1, 6, 7, 5)})
case("Gelu_tanh", model([helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")], [("x", F, [3, 37])],
     [("y", F, None)], opset=20), {"x": fx(3, 37, kind=4.0)})


# Decoder-LM ops (GPT-2, Gemma-3 exports) and conformance widening
for op, shape, attrs in [("Sin", [3, 37], {}), ("Cos", [130], {}), ("Floor", [7, 5], {}), ("Ceil", [37], {}),
                         ("Round", [2, 7], {}), ("Sign", [13], {}), ("Softplus", [3, 37], {}),
                         ("LeakyRelu", [7, 37], {"alpha": 0.05}), ("HardSigmoid", [37], {"alpha": 0.3, "beta": 0.4}),
                         ("HardSwish", [2, 37], {}), ("Elu", [5, 7], {"alpha": 0.7}), ("Selu", [130], {})]:
    _unary_case(op, shape, **attrs)
case("Sin_rotary_angles", model([helper.make_node("Mul", ["pos", "freq"], ["a"]), helper.make_node("Sin", ["a"], ["s"]),
                                 helper.make_node("Cos", ["a"], ["c"]), helper.make_node("Concat", ["s", "c"], ["y"], axis=-1)],
     [("pos", F, [37, 1])], [("y", F, None)], [("freq", (10000.0 ** -(np.arange(8) / 8)).astype(np.float32))]),
     {"pos": fx(37, 1, kind=500.0)})
case("PRelu_channel", model([helper.make_node("PRelu", ["x", "s"], ["y"])], [("x", F, [2, 5, 7])], [("y", F, None)],
     [const("s", (5, 1), 40)]), {"x": fx(2, 5, 7)})
case("Mod_int64_python", model([helper.make_node("Mod", ["a", "b"], ["y"])], [("a", I64, [3, 7]), ("b", I64, [7])],
     [("y", I64, None)]), {"a": (I64, [3, 7], (-100, 100)), "b": (I64, [7], (1, 9))})
case("Mod_float_fmod", model([helper.make_node("Mod", ["a", "b"], ["y"], fmod=1)], [("a", F, [5, 37]), ("b", F, [37])],
     [("y", F, None)]), {"a": fx(5, 37, kind=20.0), "b": fx(37, kind="positive")})
case("LessOrEqual_GreaterOrEqual_logic", model([
    helper.make_node("LessOrEqual", ["a", "b"], ["le"]), helper.make_node("GreaterOrEqual", ["a", "c"], ["ge"]),
    helper.make_node("And", ["le", "ge"], ["both"]), helper.make_node("Or", ["le", "m"], ["either"]),
    helper.make_node("Xor", ["both", "either"], ["x"]), helper.make_node("Not", ["x"], ["y"])],
    [("a", F, [3, 37]), ("b", F, [37]), ("c", F, [3, 1]), ("m", B, [3, 37])], [("y", B, None)]),
    {"a": fx(3, 37), "b": fx(37), "c": fx(3, 1), "m": (B, [3, 37], None)})
case("IsNaN_IsInf", model([
    helper.make_node("Sqrt", ["x"], ["r"]), helper.make_node("IsNaN", ["r"], ["n"]),
    helper.make_node("Div", ["x", "zero"], ["d"]), helper.make_node("IsInf", ["d"], ["i"], detect_negative=0),
    helper.make_node("Or", ["n", "i"], ["y"])],
    [("x", F, [7, 13])], [("y", B, None)], [("zero", np.float32(0))]), {"x": fx(7, 13)})
case("Trilu_upper_k1", model([helper.make_node("Trilu", ["x", "k"], ["y"])], [("x", F, [2, 5, 7])], [("y", F, None)],
     [("k", np.array(1, np.int64))]), {"x": fx(2, 5, 7)})
case("Trilu_lower_causal", model([helper.make_node("Trilu", ["x"], ["y"], upper=0)], [("x", I64, [37, 37])],
     [("y", I64, None)]), {"x": (I64, [37, 37], (-5, 5))})
case("CumSum_axis1", model([helper.make_node("CumSum", ["x", "ax"], ["y"])], [("x", F, [3, 37, 5])], [("y", F, None)],
     [("ax", np.array(1, np.int64))]), {"x": fx(3, 37, 5)})
case("CumSum_positions", model([helper.make_node("CumSum", ["m", "ax"], ["y"], exclusive=1, reverse=1)],
     [("m", I64, [2, 130])], [("y", I64, None)], [("ax", np.array(-1, np.int64))]), {"m": (I64, [2, 130], (0, 2))})
case("ArgMax_last_axis", model([helper.make_node("ArgMax", ["x"], ["y"], axis=-1, keepdims=0)], [("x", F, [7, 130])],
     [("y", I64, None)]), {"x": fx(7, 130)})
case("ArgMin_axis0_keep", model([helper.make_node("ArgMin", ["x"], ["y"], axis=0, select_last_index=1)],
     [("x", F, [37, 5])], [("y", I64, None)]), {"x": fx(37, 5)})
case("TopK_values_indices", model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)], [("x", F, [3, 37])],
     [("v", F, None), ("i", I64, None)], [("k", np.array([5], np.int64))]), {"x": fx(3, 37)})
case("TopK_smallest_axis0", model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=0, largest=0)],
     [("x", F, [13, 7])], [("v", F, None), ("i", I64, None)], [("k", np.array([3], np.int64))]), {"x": fx(13, 7)})
case("Split_num_outputs", model([helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
     [("x", F, [2, 7, 5])], [("a", F, None), ("b", F, None), ("c", F, None)], opset=18), {"x": fx(2, 7, 5)})
case("Split_sizes", model([helper.make_node("Split", ["x", "s"], ["a", "b"], axis=-1)], [("x", F, [3, 37])],
     [("a", F, None), ("b", F, None)], [("s", np.array([30, 7], np.int64))]), {"x": fx(3, 37)})
case("Tile", model([helper.make_node("Tile", ["x", "r"], ["y"])], [("x", F, [3, 1, 5])], [("y", F, None)],
     [("r", np.array([2, 7, 3], np.int64))]), {"x": fx(3, 1, 5)})
for mode in ["constant", "reflect", "edge", "wrap"]:
    inits = [("p", np.array([0, 2, 1, 0, 1, 3], np.int64))] + ([("v", np.float32(1.5))] if mode == "constant" else [])
    case(f"Pad_{mode}", model([helper.make_node("Pad", ["x", "p"] + (["v"] if mode == "constant" else []), ["y"],
                                                mode=mode)], [("x", F, [2, 5, 7])], [("y", F, None)], inits,
                              opset=19 if mode == "wrap" else 17), {"x": fx(2, 5, 7)})
case("Pad_negative_crop", model([helper.make_node("Pad", ["x", "p"], ["y"])], [("x", F, [5, 7])], [("y", F, None)],
     [("p", np.array([-1, 2, 1, -3], np.int64))]), {"x": fx(5, 7)})
case("DepthToSpace_CRD", model([helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")],
     [("x", F, [1, 12, 3, 5])], [("y", F, None)]), {"x": fx(1, 12, 3, 5)})
case("SpaceToDepth", model([helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=3)],
     [("x", F, [2, 2, 6, 9])], [("y", F, None)]), {"x": fx(2, 2, 6, 9)})
case("ScatterND_rows", model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"])], [("x", F, [7, 5]), ("u", F, [3, 5])],
     [("y", F, None)], [("i", np.array([[4], [-1], [0]], np.int64))]), {"x": fx(7, 5), "u": fx(3, 5)})
case("Range_ConstantOfShape_folded", model([
    helper.make_node("Range", ["s", "l", "d"], ["r"]), helper.make_node("Cast", ["r"], ["rf"], to=F),
    helper.make_node("ConstantOfShape", ["sh"], ["c"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
    helper.make_node("Add", ["rf", "c"], ["t"]), helper.make_node("Add", ["x", "t"], ["y"])],
    [("x", F, [3, 7])], [("y", F, None)],
    [("s", np.array(2, np.int64)), ("l", np.array(16, np.int64)), ("d", np.array(2, np.int64)),
     ("sh", np.array([7], np.int64))]), {"x": fx(3, 7)})
for op, shape, attrs in [("Softsign", [7, 13], {}), ("ThresholdedRelu", [37], {"alpha": 0.5}), ("Celu", [3, 37], {"alpha": 0.6}),
                         ("Shrink", [5, 7], {"lambd": 0.7, "bias": 0.2})]:
    _unary_case(op, shape, **attrs)
case("Mish_130", model([helper.make_node("Mish", ["x"], ["y"])], [("x", F, [130])], [("y", F, None)], opset=18),
     {"x": fx(130, kind=4.0)})
case("Log_37", model([helper.make_node("Log", ["x"], ["y"])], [("x", F, [3, 37])], [("y", F, None)]),
     {"x": fx(3, 37, kind="positive")})
case("Sum_Mean_broadcast", model([helper.make_node("Sum", ["a", "b", "c"], ["s"]), helper.make_node("Mean", ["s", "a"], ["y"])],
     [("a", F, [3, 1, 5]), ("b", F, [4, 5]), ("c", F, [5])], [("y", F, None)]), {"a": fx(3, 1, 5), "b": fx(4, 5), "c": fx(5)})
case("CastLike_int64", model([helper.make_node("CastLike", ["x", "like"], ["y"])], [("x", F, [3, 7])], [("y", I64, None)],
     [("like", np.zeros(1, np.int64))]), {"x": fx(3, 7, kind=100.0)})

def reference(name, feeds):
    import onnxruntime as ort
    m, _, _ = CASES[name]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def rel_err(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    denom = max(np.abs(ref).max(), 1e-30) if ref.size else 1.0
    return float(np.abs(out - ref).max() / denom) if ref.size else 0.0


def save(name, path):
    onnx.save(CASES[name][0], path)
