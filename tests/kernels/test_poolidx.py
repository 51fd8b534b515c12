"""poolidx (MaxPool's Indices) vs a direct reference on odd sizes, with padding, strides, dilation, ties,
NaN taps and both storage orders; `run` is the backend's (tests/kernels_wgsl imports these tests)."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel


def reference(x, p):
    """onnxruntime's rule: the first tap (kh, then kw) strictly greater than all before it."""
    P, H, W = x.shape
    out = np.zeros((P, p["OH"], p["OW"]), np.int64)
    for c in range(P):
        for oh in range(p["OH"]):
            for ow in range(p["OW"]):
                h0, w0 = oh * p["stride_h"] - p["pad_t"], ow * p["stride_w"] - p["pad_l"]
                best, bh, bw = np.float32(-3.4028234663852886e38), min(max(h0, 0), H - 1), min(max(w0, 0), W - 1)
                for kh in range(p["KH"]):
                    for kw in range(p["KW"]):
                        h, w = h0 + kh * p["dil_h"], w0 + kw * p["dil_w"]
                        if 0 <= h < H and 0 <= w < W and x[c, h, w] > best:
                            best, bh, bw = x[c, h, w], h, w
                out[c, oh, ow] = c * H * W + (bh * W + bw if p["storage_order"] == 0 else bh + bw * H)
    return out


def run_wasm(p, x):
    return run_kernel(build("poolidx", p)[0], [x], [((p["planes"], p["OH"], p["OW"]), np.int64)])[0]


@pytest.fixture
def run():
    return run_wasm


CASES = [  # (H, W, K, stride, pad, dil)
    (1, 1, 1, 1, 0, 1), (7, 7, 3, 1, 1, 1), (5, 37, 2, 2, 0, 1), (13, 10, 3, 2, 1, 2), (4, 130, 5, 3, 2, 1)]


@pytest.mark.parametrize("H,W,K,s,pad,d", CASES)
@pytest.mark.parametrize("so", [0, 1])
def test_poolidx(run, H, W, K, s, pad, d, so):
    rng = np.random.default_rng(H * W + so)
    planes = 3
    x = rng.integers(-4, 5, (planes, H, W)).astype(np.float32)  # small integers: many ties
    x.reshape(-1)[::11] = np.nan
    OH = max((H + 2 * pad - d * (K - 1) - 1) // s + 1, 1)
    OW = max((W + 2 * pad - d * (K - 1) - 1) // s + 1, 1)
    p = {"planes": planes, "H": H, "W": W, "OH": OH, "OW": OW, "KH": K, "KW": K, "stride_h": s, "stride_w": s,
         "pad_t": pad, "pad_l": pad, "dil_h": d, "dil_w": d, "storage_order": so}
    np.testing.assert_array_equal(run(p, x), reference(x, p))
