"""Constant folding: evaluate every node whose inputs are all constants (and Shape/Size of values
with static shapes) with onnx's reference evaluator, so shape arithmetic never reaches a kernel."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import ShapeError
from ..ir import Graph, Value, dtype_name

_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
# Folding these would only copy big weights into new big weights.
_MAX_FOLDED_ELEMS = 1 << 24


def _eval_node(g: Graph, node) -> list[np.ndarray]:
    inputs = [n for n in node.inputs if n]
    feeds = {n: g.const(n) for n in inputs}
    attrs = {k: (numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v) for k, v in node.attrs.items()}
    proto = helper.make_node(node.op, node.inputs, node.outputs, domain=node.domain, **attrs)
    graph = helper.make_graph(
        [proto], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(feeds[n].dtype), feeds[n].shape) for n in inputs],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.outputs if o])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
    return ReferenceEvaluator(model).run(None, feeds)


def _only_gemm_weight(g: Graph, node, consumers: dict) -> bool:
    """A Transpose of a constant read only as a MatMul/Gemm weight: lowering packs that weight into
    panels anyway, so folding it adds no bytes (a tied LM head reads the embedding transposed)."""
    users = consumers.get(node.outputs[0], [])
    return node.op == "Transpose" and bool(users) and all(
        u.op in ("MatMul", "Gemm") and u.inputs[1] == node.outputs[0] and u.inputs[0] != node.outputs[0] for u in users)


def fold_constants(g: Graph) -> int:
    """Returns the number of nodes folded."""
    folded = 0
    kept = []
    consumers = g.consumers()
    for node in g.nodes:
        outs = [o for o in node.outputs if o]
        result = None
        if node.op == "Constant":
            result = _eval_node(g, node)
        elif node.op in ("Shape", "Size") and g.values[node.inputs[0]].shape is not None:
            shape = np.array(g.values[node.inputs[0]].shape, dtype=np.int64)
            if node.op == "Size":
                result = [np.array(int(np.prod(shape)), dtype=np.int64)]
            else:
                start = int(node.attrs.get("start", 0))
                end = node.attrs.get("end")
                result = [shape[start:None if end is None else int(end)]]
        elif (node.op not in _NONDETERMINISTIC and all(g.is_const(i) for i in node.inputs if i)
              and any(i for i in node.inputs)):
            known = [g.values[o].shape for o in outs]
            big = all(s is not None and int(np.prod(s)) > _MAX_FOLDED_ELEMS for s in known)
            if big and not _only_gemm_weight(g, node, consumers):
                kept.append(node)
                continue
            try:
                if big:  # numpy's transpose is a view; the reference evaluator would copy gigabytes
                    perm = node.attrs.get("perm")
                    result = [np.transpose(g.const(node.inputs[0]), perm)]
                else:
                    result = _eval_node(g, node)
            except Exception as e:
                msg = " ".join(str(e).split())[:300]  # one line: the CLI prints `ShapeError: message`
                raise ShapeError(f"node {node.name} ({node.op}): constant evaluation failed: {msg}") from None
        if result is None:
            kept.append(node)
            continue
        for name, arr in zip(outs, result):
            arr = np.asarray(arr)
            if arr.dtype == np.float64 and (g.values[name].dtype in (None, "float32")):
                arr = arr.astype(np.float32)
            g.values[name] = Value(name, dtype_name(arr.dtype), tuple(arr.shape), arr)
        folded += 1
    g.nodes = kept
    return folded
