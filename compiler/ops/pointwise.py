"""Float pointwise ops beyond the epilogue activations: more op codes of the unary kernel (rounding, sign,
trig, log, parametrised activations) and of the binary kernel (PRelu, Mod); Sum/Mean as Add chains and
CastLike as a Cast."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import INT_DTYPES, NP_DTYPES, Node
from .common import Lowering, lowers
from .elementwise import _strides

# op → (unary op code, {kernel param: (ONNX attribute, default)})
UNARY_ATTRS = {
    "Sin": ("sin", {}), "Cos": ("cos", {}), "Floor": ("floor", {}), "Ceil": ("ceil", {}), "Round": ("round", {}),
    "Sign": ("sign", {}), "Softplus": ("softplus", {}),
    "LeakyRelu": ("leakyrelu", {"alpha": ("alpha", 0.01)}),
    "HardSigmoid": ("hardsigmoid", {"alpha": ("alpha", 0.2), "beta": ("beta", 0.5)}),
    "HardSwish": ("hardswish", {"alpha": (None, 1 / 6), "beta": (None, 0.5)}),
    "Elu": ("elu", {"alpha": ("alpha", 1.0)}),
    "Selu": ("selu", {"alpha": ("alpha", 1.67326319217681884765625), "gamma": ("gamma", 1.05070102214813232421875)}),
    "Log": ("log", {}), "Softsign": ("softsign", {}), "Mish": ("mish", {}),
    "ThresholdedRelu": ("thresholdedrelu", {"alpha": ("alpha", 1.0)}), "Celu": ("celu", {"alpha": ("alpha", 1.0)}),
    "Swish": ("swish", {"alpha": ("alpha", 1.0)}), "Shrink": ("shrink", {"alpha": ("lambd", 0.5), "beta": ("bias", 0.0)}),
}


@lowers(*UNARY_ATTRS)
def lower_unary_attr(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)  # float16/bfloat16 arrive widened (passes/widen_half.py)
    op, attrs = UNARY_ATTRS[node.op]
    params = {"op": op, "n": int(np.prod(L.shape(out))), "act_min": 0.0, "act_max": 0.0}
    for key, (attr, default) in attrs.items():
        # the f32 value of the attribute, as onnxruntime computes with it
        params[key] = float(np.float32(node.attrs.get(attr, default) if attr else default))
    if params["n"]:
        L.emit(node, "unary", params, [x, out], [out])


@lowers("PRelu")
def lower_prelu(L: Lowering, node: Node) -> None:
    """x < 0 ? slope·x : x, the slope broadcast to x (binary op prelu)."""
    x, slope = node.inputs
    out = node.outputs[0]
    L.need_float(node, x, slope)
    shape, (sa, sb) = _strides(L, out, x, slope)
    L.emit(node, "binary", {"op": "prelu", "shape": shape, "a_strides": sa, "b_strides": sb}, [x, slope, out], [out])



@lowers("Mod")
def lower_mod(L: Lowering, node: Node) -> None:
    """fmod=1: C fmod, the result takes the dividend's sign; fmod=0: Python's %, the divisor's sign.
    Floats are exact (the binary kernel computes in f64); integers: x % 0 = 0 (numpy)."""
    a, b = node.inputs
    fmod = int(node.attrs.get("fmod", 0))
    dt = L.dtype(a)
    if dt != L.dtype(b):
        raise UnsupportedOpError(f"node {node.name} (Mod): inputs are {dt}/{L.dtype(b)}; expected one dtype")
    if dt not in INT_DTYPES + ("float32", "float16", "float64"):
        raise UnsupportedOpError(f"node {node.name} (Mod): {dt} inputs are not supported")
    out = node.outputs[0]
    shape, (sa, sb) = _strides(L, out, a, b)
    params = {"op": "fmod" if fmod else "mod", "shape": shape, "a_strides": sa, "b_strides": sb}
    if dt != "float32":
        params["dtype"] = dt
    L.emit(node, "binary", params, [a, b, out], [out])



@lowers("Sum", "Mean")
def lower_sum_mean(L: Lowering, node: Node) -> None:
    """A chain of broadcasting Adds (one input: a copy); Mean then divides by the count, as numpy does."""
    from .elementwise import _variadic, lower_binary
    ins, out = [i for i in node.inputs if i], node.outputs[0]
    if node.op == "Sum" or len(ins) == 1:
        add = Node("Add", node.name, ins, [out], {})
        return lower_binary(L, add) if len(ins) == 2 else _variadic(L, add)
    total = L.temp(f"{node.name}_sum", L.dtype(out), L.shape(out))
    lower_sum_mean(L, Node("Sum", node.name, ins, [total], {}))
    count = L.const(f"{node.name}_count", np.array(len(ins), NP_DTYPES[L.dtype(out)]))
    lower_binary(L, Node("Div", node.name, [total, count], [out], {}))


@lowers("CastLike")
def lower_cast_like(L: Lowering, node: Node) -> None:
    """Cast to the second input's dtype (its values are not read)."""
    from .elementwise import lower_cast
    attrs = {k: v for k, v in node.attrs.items() if k in ("saturate", "round_mode")}
    lower_cast(L, Node("Cast", node.name, [node.inputs[0]], [node.outputs[0]], attrs))
