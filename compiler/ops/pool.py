"""MaxPool / AveragePool → pool2d; GlobalAveragePool / GlobalMaxPool → reduce."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Node
from .common import Lowering, lowers
from .conv import as_2d, conv_geometry


@lowers("MaxPool", "AveragePool")
def lower_pool(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if node.op == "MaxPool" and L.dtype(x) in ("int8", "uint8", "int16", "uint16") and len(node.outputs) == 1:
        return _small_int_max(L, node, x, out)
    L.need_float(node, x)
    indices = node.outputs[1] if len(node.outputs) > 1 and node.outputs[1] else ""
    if indices and len(L.shape(x)) != 4:
        raise UnsupportedOpError(f"node {node.name} (MaxPool): the Indices output is supported for 2-D pooling only")
    if len(L.shape(x)) == 5:
        return _pool3d(L, node, x, out)
    if len(L.shape(x)) not in (3, 4):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): only 1-D, 2-D and 3-D pooling is supported, got {L.shape(x)}")
    one_d = len(L.shape(x)) == 3
    N, C, H, W = as_2d(L.shape(x))
    k = list(node.attrs["kernel_shape"])
    _, _, OH, OW = as_2d(L.shape(out))
    geo = conv_geometry(node, [W] if one_d else [H, W], k, [OW] if one_d else [OH, OW])
    if one_d:
        k = [1] + k
        geo = {"strides": [1] + geo["strides"], "dil": [1] + geo["dil"], "pads": [0, geo["pads"][0], 0, geo["pads"][1]]}
    params = {"planes": N * C, "H": H, "W": W, "OH": OH, "OW": OW, "KH": k[0], "KW": k[1],
              "stride_h": geo["strides"][0], "stride_w": geo["strides"][1], "pad_t": geo["pads"][0],
              "pad_l": geo["pads"][1], "pad_b": geo["pads"][2], "pad_r": geo["pads"][3], "dil_h": geo["dil"][0], "dil_w": geo["dil"][1],
              "mode": "max" if node.op == "MaxPool" else "avg",
              "count_include_pad": bool(node.attrs.get("count_include_pad", 0))}
    L.emit(node, "pool2d", params, [x, out], [out])
    if indices:
        # A second, element-at-a-time pass for the argmax (kernels_wasm/poolidx.wat.j2): same geometry.
        geo_keys = ("planes", "H", "W", "OH", "OW", "KH", "KW", "stride_h", "stride_w", "pad_t", "pad_l", "dil_h", "dil_w")
        L.emit(node, "poolidx", {**{k: params[k] for k in geo_keys},
                                 "storage_order": int(node.attrs.get("storage_order", 0))}, [x, indices], [indices])


def _small_int_max(L: Lowering, node: Node, x: str, out: str) -> None:
    """Max pooling of 8/16-bit integers through float32, which holds them exactly."""
    from .elementwise import cast_to, lower_cast
    xf = cast_to(L, node, x, "float32")
    yf = L.temp(node.name + "_yf", "float32", L.shape(out))
    lower_pool(L, Node(node.op, node.name, [xf], [yf], node.attrs))
    lower_cast(L, Node("Cast", node.name, [yf], [out], {}))


def _pool3d(L: Lowering, node: Node, x: str, out: str) -> None:
    """3-D pooling as two pool2d passes: every (H, W) plane of every depth slice, then the depth axis as
    the rows of [D, OH·OW] planes. Exact for both modes: a max of maxes, and an average whose divisor (the
    tap count, with or without padding) is the product of the per-axis counts."""
    N, C, D, H, W = L.shape(x)
    _, _, OD, OH, OW = L.shape(out)
    k = list(node.attrs["kernel_shape"])
    geo = conv_geometry(node, [D, H, W], k, [OD, OH, OW])
    (sd, sh, sw), (dd, dh, dw), pads = geo["strides"], geo["dil"], geo["pads"]
    mode = "max" if node.op == "MaxPool" else "avg"
    cip = bool(node.attrs.get("count_include_pad", 0))
    mid = L.temp(node.name + "_hw", "float32", (N, C, D, OH, OW))
    L.emit(node, "pool2d", {"planes": N * C * D, "H": H, "W": W, "OH": OH, "OW": OW, "KH": k[1], "KW": k[2],
                            "stride_h": sh, "stride_w": sw, "pad_t": pads[1], "pad_l": pads[2], "pad_b": pads[4],
                            "pad_r": pads[5], "dil_h": dh, "dil_w": dw, "mode": mode, "count_include_pad": cip},
           [x, mid], [mid])
    L.emit(node, "pool2d", {"planes": N * C, "H": D, "W": OH * OW, "OH": OD, "OW": OH * OW, "KH": k[0], "KW": 1,
                            "stride_h": sd, "stride_w": 1, "pad_t": pads[0], "pad_l": 0, "pad_b": pads[3],
                            "pad_r": 0, "dil_h": dd, "dil_w": 1, "mode": mode, "count_include_pad": cip},
           [mid, out], [out])


@lowers("GlobalAveragePool", "GlobalMaxPool")
def lower_global_pool(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    s = L.shape(x)
    L.emit(node, "reduce", {"op": "mean" if node.op == "GlobalAveragePool" else "max",
                            "outer": int(s[0] * s[1]), "n": int(np.prod(s[2:])), "inner": 1}, [x, out], [out])
