"""The TF.js peer baseline's input: a zoo microbenchmark (one MatMul, Gemm or Conv node) read from its
ONNX file and restated as one TF.js call (tf.matMul, tf.conv2d, tf.depthwiseConv2d) with the same
weights, so TF.js computes what onnxruntime computes on the same inputs.

Layout work happens here, once, never in the page's timed runs: Conv weights OIHW → HWIO (HWCm for
depthwise), the input NCHW → NHWC when the inputs are written, and the NHWC output back to NCHW
before it is compared. Gemm's alpha and beta are folded into its constant operands.

Anything else (more than one node, another op, grouped Conv, 1-D MatMul operands) is TfjsUnsupported,
whose message is the n/a reason of the cell.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnjit.compiler.errors import NnjitError

OPS = ("MatMul", "Gemm", "Conv")
NCHW_TO_NHWC, NHWC_TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


class TfjsUnsupported(NnjitError):
    """The model is not one of the gemm/conv microbenchmarks TF.js is compared on."""


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Graph:
    def __init__(self, model):
        from onnx import numpy_helper

        g = model.graph
        self.consts = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.consts]
        self.node = g.node[0]

    def operand(self, name: str, consts: list, array=None) -> dict:
        """{'input': name} or {'const': index} (the array appended to `consts`)."""
        if name in self.inputs:
            return {"input": name}
        consts.append(self.consts[name] if array is None else array)
        return {"const": len(consts) - 1}


def _check(model) -> None:
    g = model.graph
    ops = [n.op_type for n in g.node]
    if len(ops) != 1 or ops[0] not in OPS:
        shown = ", ".join(dict.fromkeys(ops)) or "no nodes"
        raise TfjsUnsupported(f"tfjs-wasm runs only the single-op gemm/conv microbenchmarks ({', '.join(OPS)}); "
                              f"this model has {len(ops)} nodes ({shown})")
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type != 1:  # TensorProto.FLOAT
            raise TfjsUnsupported(f"tfjs-wasm: {vi.name} is not float32")


def _matmul(g: _Graph, consts: list, input_ranks: dict) -> dict:
    a, b = g.node.input
    for name in (a, b):
        rank = g.consts[name].ndim if name in g.consts else input_ranks.get(name, 2)
        if rank < 2:
            raise TfjsUnsupported(f"tfjs-wasm: MatMul operand {name} is 1-D (tf.matMul needs rank ≥ 2)")
    return {"op": "matMul", "a": g.operand(a, consts), "b": g.operand(b, consts), "transposeA": False, "transposeB": False}


def _gemm(g: _Graph, consts: list) -> dict:
    at = _attrs(g.node)
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    a, b, *rest = g.node.input
    c = rest[0] if rest and rest[0] else None
    if alpha != 1.0 and a not in g.consts and b not in g.consts:
        raise TfjsUnsupported("tfjs-wasm: Gemm with alpha ≠ 1 and no constant operand to fold it into")
    if c is not None and c not in g.consts:
        raise TfjsUnsupported("tfjs-wasm: Gemm whose C is a graph input")
    fold_b = alpha != 1.0 and b in g.consts
    fold_a = alpha != 1.0 and not fold_b
    prog = {"op": "matMul",
            "a": g.operand(a, consts, g.consts[a] * np.float32(alpha) if fold_a else None),
            "b": g.operand(b, consts, g.consts[b] * np.float32(alpha) if fold_b else None),
            "transposeA": bool(at.get("transA", 0)), "transposeB": bool(at.get("transB", 0))}
    if c is not None and beta != 0.0:
        prog["bias"] = g.operand(c, consts, g.consts[c] * np.float32(beta))
    return prog


def _conv(g: _Graph, consts: list, x_rank: int) -> dict:
    at = _attrs(g.node)
    x, w, *rest = g.node.input
    if w not in g.consts or (rest and rest[0] and rest[0] not in g.consts):
        raise TfjsUnsupported("tfjs-wasm: Conv whose weights or bias are a graph input")
    weight = g.consts[w]
    if x_rank != 4 or weight.ndim != 4:
        raise TfjsUnsupported(f"tfjs-wasm: only 2-D Conv (NCHW) maps to tf.conv2d; this one has rank {x_rank}")
    cout, cin_g, kh, kw = weight.shape
    group = int(at.get("group", 1))
    auto_pad = at.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "VALID"):
        pad = "same" if auto_pad == "SAME_UPPER" else "valid"
    elif auto_pad == "NOTSET":
        t, l, b, r = (list(at.get("pads", [0, 0, 0, 0])) + [0, 0, 0, 0])[:4]
        pad = [[0, 0], [t, b], [l, r], [0, 0]]
    else:
        raise TfjsUnsupported(f"tfjs-wasm: Conv auto_pad {auto_pad} has no tf.conv2d equivalent")
    prog = {"x": {"input": x}, "strides": list(at.get("strides", [1, 1])), "dilations": list(at.get("dilations", [1, 1])), "pad": pad}
    if group == 1:
        prog.update(op="conv2d", filter=g.operand(w, consts, np.ascontiguousarray(weight.transpose(2, 3, 1, 0))))
    elif cin_g == 1 and cout % group == 0:
        # Depthwise: ONNX [C·m, 1, kh, kw] with output channel c·m + j reading input channel c → [kh, kw, C, m].
        mult = cout // group
        filt = weight.reshape(group, mult, kh, kw).transpose(2, 3, 0, 1)
        prog.update(op="depthwiseConv2d", filter=g.operand(w, consts, np.ascontiguousarray(filt)))
    else:
        raise TfjsUnsupported(f"tfjs-wasm: grouped Conv (group {group}, {cin_g} channels per group) has no tf.conv2d equivalent")
    if rest and rest[0]:
        prog["bias"] = g.operand(rest[0], consts)
    return prog


def build(onnx_path: str | Path, input_ranks: dict[str, int]) -> tuple[dict, list[np.ndarray]]:
    """(program, constant arrays) for the page; raises TfjsUnsupported with the n/a reason."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    model = onnx.load(str(onnx_path), load_external_data=False)
    _check(model)  # before any external weights are read: a large model is refused cheaply
    load_external_data_for_model(model, str(Path(onnx_path).parent))
    g = _Graph(model)
    consts: list[np.ndarray] = []
    op = g.node.op_type
    if op == "MatMul":
        prog = _matmul(g, consts, input_ranks)
    elif op == "Gemm":
        prog = _gemm(g, consts)
    else:
        prog = _conv(g, consts, input_ranks.get(g.node.input[0], 0))
    prog["output"] = g.node.output[0]
    prog["nhwc"] = op == "Conv"
    return prog, consts


def prepare(onnx_path: str | Path, inputs: dict[str, np.ndarray], root: Path) -> dict:
    """Write root/program.json, root/consts.bin (each constant 64-byte aligned) and the inputs in
    TF.js layout; returns {'program', 'inputs'} (page inputs). Raises TfjsUnsupported."""
    from nnjit.browsers.page_data import write_inputs

    prog, consts = build(onnx_path, {k: v.ndim for k, v in inputs.items()})
    root.mkdir(parents=True, exist_ok=True)
    specs, blob = [], bytearray()
    for arr in consts:
        blob += bytes(-len(blob) % 64)
        specs.append({"shape": list(arr.shape), "offset": len(blob), "bytes": arr.nbytes})
        blob += np.ascontiguousarray(arr, np.float32).tobytes()
    (root / "consts.bin").write_bytes(bytes(blob) or bytes(4))
    prog["consts"] = specs
    feeds = {k: np.ascontiguousarray(v.transpose(NCHW_TO_NHWC)) if prog["nhwc"] else v for k, v in inputs.items()}
    page_inputs = write_inputs(root / "inputs.bin", feeds)
    (root / "program.json").write_text(json.dumps(prog))
    return {"program": prog, "inputs": page_inputs}


def to_onnx_layout(outputs: dict | None, program: dict) -> dict | None:
    """The page's outputs in ONNX layout (NHWC → NCHW for Conv), for the accuracy check."""
    if not outputs or not program.get("nhwc"):
        return outputs
    return {k: np.ascontiguousarray(v.transpose(NHWC_TO_NCHW)) for k, v in outputs.items()}


def prepare_model(info: dict) -> dict:
    """prepare() for a bench model (the info of bench/qoe_plan.prepare_model), into its work folder,
    once: {'dir', 'program', 'inputs', 'weights_bytes'}. Raises TfjsUnsupported (also remembered)."""
    root = Path(info["bundle"]).parent / "tfjs"
    done = root / "prepared.json"
    if done.is_file():
        data = json.loads(done.read_text())
    else:
        root.mkdir(parents=True, exist_ok=True)
        try:
            data = prepare(info["onnx"], dict(np.load(info["inputs"])), root)
            data["weights_bytes"] = sum(c["bytes"] for c in data["program"]["consts"])
        except TfjsUnsupported as e:
            data = {"unsupported": str(e)}
        data["dir"] = str(root)
        done.write_text(json.dumps(data))
    if "unsupported" in data:
        raise TfjsUnsupported(data["unsupported"])
    return data


def unsupported_cells(cells, prepared: dict) -> dict:
    """{cell: reason} for the tfjs-wasm cells whose model TF.js is not compared on: they get n/a rows
    without a browser."""
    out = {}
    for c in cells:
        if c.runtime == "tfjs-wasm":
            try:
                prepare_model(prepared[c.model])
            except TfjsUnsupported as e:
                out[c] = str(e)
    return out
