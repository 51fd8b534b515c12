"""Conv → depthwise2d, a direct gemm (1×1 convs) or im2col + gemm; bias/residual/act fused."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, lowers
from .matmul import emit_gemm, epilogue


def conv_geometry(node: Node, in_hw, k_hw, out_hw=None) -> dict:
    nd = len(k_hw)
    strides = list(node.attrs.get("strides", [1] * nd))
    dil = list(node.attrs.get("dilations", [1] * nd))
    pads = list(node.attrs.get("pads", [0] * (2 * nd)))
    auto = node.attrs.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            o = -(-in_hw[i] // strides[i])
            total = max(0, (o - 1) * strides[i] + dil[i] * (k_hw[i] - 1) + 1 - in_hw[i])
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[i], pads[i + nd] = lo, total - lo
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    if out_hw is None:
        ceil = int(node.attrs.get("ceil_mode", 0))
        out_hw = []
        for i in range(nd):
            span = in_hw[i] + pads[i] + pads[i + nd] - dil[i] * (k_hw[i] - 1) - 1
            o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
            if ceil and (o - 1) * strides[i] >= in_hw[i] + pads[i]:
                o -= 1  # the last window must start inside the input or its left padding
            out_hw.append(o)
    return {"strides": strides, "dil": dil, "pads": pads, "out": list(out_hw)}


def as_2d(shape):
    """Treat 1-D spatial ops as 2-D with H = 1."""
    return (shape[0], shape[1], 1, shape[2]) if len(shape) == 3 else tuple(shape)


@lowers("Conv")
def lower_conv(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    if len(L.shape(x)) not in (3, 4):
        raise UnsupportedOpError(f"node {node.name} (Conv): only 1-D and 2-D convolutions are supported, "
                                 f"input has shape {L.shape(x)}")
    wname = node.inputs[1]
    L.need_float(node, wname)
    # A run-time weight tensor is already the gemm's A operand (and the depthwise filter table) in memory:
    # [Co, Cg, KH, KW] row-major is [Co, Cg·KH·KW], whatever view a path takes of it.
    w = L.g.const(wname).astype(np.float32) if L.g.is_const(wname) else None
    one_d = len(L.shape(wname)) == 3
    wshape = tuple(L.shape(wname))
    if one_d:
        wshape = (wshape[0], wshape[1], 1, wshape[2])
    N, Ci, H, W = as_2d(L.shape(x))
    Co, Cg, KH, KW = wshape

    def weights(*shape):
        return wname if w is None else L.const(node.name + "_w", w.reshape(shape))

    G = int(node.attrs.get("group", 1))
    if Cg * G != Ci or Co % G:
        raise UnsupportedOpError(f"node {node.name} (Conv): group {G} does not divide channels {Ci}→{Co}")
    _, _, OH, OW = as_2d(L.shape(out))
    k = [KW] if one_d else [KH, KW]
    geo = conv_geometry(node, [W] if one_d else [H, W], k, [OW] if one_d else [OH, OW])
    if one_d:
        geo = {"strides": [1] + geo["strides"], "dil": [1] + geo["dil"],
               "pads": [0, geo["pads"][0], 0, geo["pads"][1]], "out": [1] + geo["out"]}
    sh, sw = geo["strides"]
    dh, dw = geo["dil"]
    pt, pl = geo["pads"][0], geo["pads"][1]
    bias = np.zeros(Co, np.float32)
    has_bias = False
    runtime_bias = None
    if len(node.inputs) > 2 and node.inputs[2]:
        if L.g.is_const(node.inputs[2]):
            bias = bias + L.g.const(node.inputs[2]).astype(np.float32)
        else:
            L.need_float(node, node.inputs[2])
            runtime_bias = node.inputs[2]
        has_bias = True
    if node.attrs.get("_bias"):
        if runtime_bias:
            raise L.not_const(node, 2, "bias", "must be a constant when another bias is fused into the Conv")
        bias = bias + L.g.const(node.attrs["_bias"])
        has_bias = True
    residual = node.attrs.get("_residual")
    ep = epilogue(node)
    geom = {"KH": KH, "KW": KW, "OH": OH, "OW": OW, "stride_h": sh, "stride_w": sw,
            "pad_t": pt, "pad_l": pl, "dil_h": dh, "dil_w": dw}

    if G == Ci and Co == Ci and Cg == 1:
        target = out if residual is None else L.temp(node.name + "_dw", "float32", L.shape(out))
        args = [x, weights(Co, KH * KW)]
        if has_bias:
            args.append(runtime_bias or L.const(node.name + "_b", bias))
        dw_ep = ep if residual is None else {"act": "none", "act_min": 0.0, "act_max": 0.0}
        L.emit(node, "depthwise2d", {"N": N, "C": Ci, "H": H, "W": W, **geom, "bias": has_bias, **dw_ep},
               args + [target], [target])
        if residual is not None:
            _residual_then_act(L, node, target, residual, out, ep)
        return

    bname = (runtime_bias or L.const(node.name + "_b", bias)) if has_bias else None
    OHW = OH * OW
    if G == 1 and KH == KW == 1 and sh == sw == 1 and pt == pl == 0 and geo["pads"][2:] == [0, 0] and (H, W) == (OH, OW):
        wmat = weights(Co, Ci)
        emit_gemm(L, node, wmat, x, out, Co, OHW, Ci, [N] if N > 1 else [], [0] if N > 1 else [],
                  [Ci * OHW] if N > 1 else [], [Co * OHW] if N > 1 else [], bias=bname, bias_kind="m",
                  residual=residual)
        return

    Kc = Cg * KH * KW
    col = L.temp(node.name + "_col", "float32", (N, Ci * KH * KW, OHW))
    L.emit(node, "im2col", {"N": N, "C": Ci, "H": H, "W": W, **geom}, [x, col], [col])
    wmat = weights(G, Co // G, Kc)
    batch, a_st, b_st, c_st = [], [], [], []
    if N > 1:
        batch.append(N), a_st.append(0), b_st.append(Ci * KH * KW * OHW), c_st.append(Co * OHW)
    if G > 1:
        batch.append(G), a_st.append((Co // G) * Kc), b_st.append(Kc * OHW), c_st.append((Co // G) * OHW)
    if G == 1:
        emit_gemm(L, node, wmat, col, out, Co, OHW, Kc, batch, a_st, b_st, c_st,
                  bias=bname, bias_kind="m", residual=residual)
        return
    # The gemm's bias vector does not step with the group batch: add it as a broadcast afterwards.
    plain = L.temp(node.name + "_grouped", "float32", L.shape(out))
    saved = {k: node.attrs.pop(k, None) for k in ("_act", "_act_min", "_act_max")}
    emit_gemm(L, node, wmat, col, plain, Co // G, OHW, Kc, batch, a_st, b_st, c_st)
    node.attrs.update({k: v for k, v in saved.items() if v is not None})
    cur = plain
    if has_bias:
        nxt = L.temp(node.name + "_biased", "float32", L.shape(out))
        L.emit(node, "binary", {"op": "add", "shape": [N, Co, OHW], "a_strides": [Co * OHW, OHW, 1],
                                "b_strides": [0, 1, 0]}, [cur, bname, nxt], [nxt])
        cur = nxt
    _residual_then_act(L, node, cur, residual, out, ep)


def _residual_then_act(L: Lowering, node: Node, cur: str, residual: str | None, out: str, ep: dict) -> None:
    n = int(np.prod(L.shape(out)))
    if residual is not None:
        nxt = out if ep["act"] == "none" else L.temp(node.name + "_res", "float32", L.shape(out))
        L.emit(node, "binary", {"op": "add", "shape": [n], "a_strides": [1], "b_strides": [1]},
               [cur, residual, nxt], [nxt])
        cur = nxt
    if ep["act"] != "none" or cur != out:
        L.emit(node, "unary", {"op": ep["act"] if ep["act"] != "none" else "identity", "n": n,
                               "act_min": ep["act_min"], "act_max": ep["act_max"]}, [cur, out], [out])
