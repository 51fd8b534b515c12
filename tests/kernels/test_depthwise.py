"""depthwise2d kernel against a float64 numpy reference (docs/kernels.md, depthwise2d); its run_part
splits against run."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnjit.compiler.codegen import wasm
from nnjit.compiler.wasm_native import run_kernel

_erf = np.vectorize(math.erf)
ACTS = {
    "none": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "clip": lambda x: np.clip(x, 0.0, 6.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
}


def out_size(n, k, s, pad0, pad1, d):
    return (n + pad0 + pad1 - d * (k - 1) - 1) // s + 1


def ref_depthwise(x, w, b, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw):
    """y[n,c,oh,ow] = b[c] + Σ x[n,c,oh·sh−pt+kh·dh, ow·sw−pl+kw·dw]·w[c,kh,kw], zero outside."""
    N, C, H, W = x.shape
    pad_h = max(0, (OH - 1) * sh + (KH - 1) * dh + 1 - H - pt)
    pad_w = max(0, (OW - 1) * sw + (KW - 1) * dw + 1 - W - pl)
    xp = np.zeros((N, C, H + pt + pad_h, W + pl + pad_w))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    y = np.zeros((N, C, OH, OW))
    for kh in range(KH):
        for kw in range(KW):
            patch = xp[:, :, kh * dh: kh * dh + (OH - 1) * sh + 1: sh, kw * dw: kw * dw + (OW - 1) * sw + 1: sw]
            y += patch * w[None, :, kh, kw, None, None]
    if b is not None:
        y += b[None, :, None, None]
    return y


def run_case(N, C, H, W, KH, KW, s=(1, 1), pads=(0, 0, 0, 0), d=(1, 1), bias=True, act="none", seed=0):
    sh, sw = s
    pt, pl, pb, pr = pads
    dh, dw = d
    OH, OW = out_size(H, KH, sh, pt, pb, dh), out_size(W, KW, sw, pl, pr, dw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((C, KH, KW)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32) if bias else None
    p = dict(N=N, C=C, H=H, W=W, KH=KH, KW=KW, OH=OH, OW=OW, stride_h=sh, stride_w=sw, pad_t=pt, pad_l=pl,
             dil_h=dh, dil_w=dw, bias=bias, act=act, act_min=0.0 if act == "clip" else None,
             act_max=6.0 if act == "clip" else None)
    ref = ACTS[act](ref_depthwise(x.astype(np.float64), w.astype(np.float64),
                                  None if b is None else b.astype(np.float64), KH, KW, OH, OW, sh, sw, pt, pl, dh, dw))
    plain, relaxed = wasm.build("depthwise2d", p)
    assert relaxed is not None
    inputs = [x, w.reshape(C, KH * KW)] + ([b] if bias else [])
    for binary in (plain, relaxed):
        y, = run_kernel(binary, inputs, [((N, C, OH, OW), "float32")])
        err = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err <= 1e-5, f"{p}: error {err:.3g}"
        # run_part: the planes split in 2, 3 and more parts than planes (some parts empty) = run, bit for bit.
        for parts in (2, 3, N * C + 1):
            got, = run_kernel(binary, inputs, [((N, C, OH, OW), "float32")], parts=parts)
            assert np.array_equal(got.view(np.uint32), y.view(np.uint32)), f"{p}: run_part x{parts} != run"


@pytest.mark.parametrize("H,W", [(1, 1), (7, 7), (13, 13), (1, 13), (13, 1), (6, 23)])
@pytest.mark.parametrize("s", [(1, 1), (2, 2)])
def test_3x3_pad1(H, W, s):
    run_case(1, 3, H, W, 3, 3, s=s, pads=(1, 1, 1, 1))


@pytest.mark.parametrize("s", [(1, 1), (2, 2)])
def test_3x3_mobilenet_like(s):
    # 112-wide planes like MobileNet's first depthwise layers (rows long enough for the column loop).
    run_case(1, 4, 112, 112, 3, 3, s=s, pads=(1, 1, 1, 1), act="clip")


def test_3x3_asymmetric_pad_tf_same():
    # TF "SAME" stride 2 on an even input: pad only bottom/right.
    run_case(2, 3, 14, 14, 3, 3, s=(2, 2), pads=(0, 0, 1, 1))


@pytest.mark.parametrize("H,W", [(7, 7), (13, 13), (2, 9)])
def test_5x5(H, W):
    run_case(1, 2, H, W, 5, 5, pads=(2, 2, 2, 2))
    run_case(1, 2, H, W, 5, 5, s=(2, 2), pads=(2, 2, 2, 2), seed=1)


@pytest.mark.parametrize("H,W", [(7, 7), (13, 13), (20, 31)])
def test_dilation_2(H, W):
    run_case(1, 3, H, W, 3, 3, pads=(2, 2, 2, 2), d=(2, 2))
    run_case(1, 3, H, W, 3, 3, s=(2, 1), pads=(1, 2, 0, 1), d=(2, 2), seed=1)


def test_no_pad_and_odd_strides():
    run_case(1, 2, 13, 29, 3, 3)
    run_case(1, 2, 13, 29, 3, 3, s=(3, 3), pads=(1, 1, 1, 1))
    run_case(1, 2, 17, 40, 2, 4, s=(1, 4), pads=(0, 1, 1, 2))


def test_large_padding_and_kernel_wider_than_input():
    # Rows and columns with no tap inside the image output act(bias).
    run_case(1, 2, 3, 3, 3, 3, pads=(3, 3, 3, 3), act="relu")
    run_case(1, 2, 2, 5, 7, 7, pads=(3, 3, 3, 3))


def test_no_bias_multi_image():
    run_case(3, 5, 9, 11, 3, 3, pads=(1, 1, 1, 1), bias=False)


@pytest.mark.parametrize("act", [
    "relu", "clip", "sigmoid", "tanh",
    "gelu"])
def test_activations(act):
    run_case(1, 3, 9, 10, 3, 3, s=(1, 1), pads=(1, 1, 1, 1), act=act)
    run_case(1, 3, 9, 10, 3, 3, s=(2, 2), pads=(1, 1, 1, 1), act=act, seed=1)
