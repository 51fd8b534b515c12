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
    L.need_float(node, x)
    if len([o for o in node.outputs if o]) > 1:
        raise UnsupportedOpError(f"node {node.name} (MaxPool): the Indices output is not supported")
    if len(L.shape(x)) not in (3, 4):
        raise UnsupportedOpError(f"node {node.name} ({node.op}): only 1-D and 2-D pooling is supported, got {L.shape(x)}")
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


@lowers("GlobalAveragePool", "GlobalMaxPool")
def lower_global_pool(L: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    L.need_float(node, x)
    s = L.shape(x)
    L.emit(node, "reduce", {"op": "mean" if node.op == "GlobalAveragePool" else "max",
                            "outer": int(s[0] * s[1]), "n": int(np.prod(s[2:])), "inner": 1}, [x, out], [out])
