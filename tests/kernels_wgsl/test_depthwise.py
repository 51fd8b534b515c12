"""WGSL depthwise2d (kernels_wgsl/depthwise2d.wgsl.j2) against the float64 numpy reference of the WASM
tests (same contract)."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.compiler.codegen import wgsl
from nnjit.compiler.wgpu_native import run_kernel
from tests.kernels.test_depthwise import ACTS, out_size, ref_depthwise


def run_case(N, C, H, W, KH, KW, s=(1, 1), pads=(0, 0, 0, 0), d=(1, 1), bias=True, act="none", seed=0,
             sched=None, x=None):
    sh, sw = s
    pt, pl, pb, pr = pads
    dh, dw = d
    OH, OW = out_size(H, KH, sh, pt, pb, dh), out_size(W, KW, sw, pl, pr, dw)
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((C, KH, KW)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32) if bias else None
    p = dict(N=N, C=C, H=H, W=W, KH=KH, KW=KW, OH=OH, OW=OW, stride_h=sh, stride_w=sw, pad_t=pt, pad_l=pl,
             dil_h=dh, dil_w=dw, bias=bias, act=act, act_min=0.0 if act == "clip" else None,
             act_max=6.0 if act == "clip" else None)
    ref = ACTS[act](ref_depthwise(x.astype(np.float64), w.astype(np.float64),
                                  None if b is None else b.astype(np.float64), KH, KW, OH, OW, sh, sw, pt, pl, dh, dw))
    text, dispatch, _ = wgsl.build("depthwise2d", p, sched)
    inputs = [x, w.reshape(C, KH * KW)] + ([b] if bias else [])
    y, = run_kernel(text, dispatch, inputs, [((N, C, OH, OW), "float32")])
    err = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err <= 1e-5, f"{p}: error {err:.3g}"
    return y


@pytest.mark.parametrize("H,W", [(1, 1), (7, 7), (13, 13), (1, 13), (13, 1), (6, 23)])
@pytest.mark.parametrize("s", [(1, 1), (2, 2)])
def test_3x3_pad1(H, W, s):
    run_case(1, 3, H, W, 3, 3, s=s, pads=(1, 1, 1, 1))


@pytest.mark.parametrize("s", [(1, 1), (2, 2)])
def test_3x3_mobilenet_like(s):
    run_case(1, 4, 56, 56, 3, 3, s=s, pads=(1, 1, 1, 1), act="clip")


def test_asymmetric_pad_tf_same():
    run_case(2, 3, 14, 14, 3, 3, s=(2, 2), pads=(0, 0, 1, 1))


@pytest.mark.parametrize("H,W", [(7, 7), (2, 9)])
def test_5x5(H, W):
    run_case(1, 2, H, W, 5, 5, pads=(2, 2, 2, 2))
    run_case(1, 2, H, W, 5, 5, s=(2, 2), pads=(2, 2, 2, 2), seed=1)


def test_dilation_and_odd_strides():
    run_case(1, 3, 20, 31, 3, 3, pads=(2, 2, 2, 2), d=(2, 2))
    run_case(1, 3, 13, 13, 3, 3, s=(2, 1), pads=(1, 2, 0, 1), d=(2, 2), seed=1)
    run_case(1, 2, 13, 29, 3, 3, s=(3, 3), pads=(1, 1, 1, 1))
    run_case(1, 2, 17, 40, 2, 4, s=(1, 4), pads=(0, 1, 1, 2))


def test_large_padding_and_kernel_wider_than_input():
    # Outputs with no tap inside the image are act(bias).
    run_case(1, 2, 3, 3, 3, 3, pads=(3, 3, 3, 3), act="relu")
    run_case(1, 2, 2, 5, 7, 7, pads=(3, 3, 3, 3))


def test_no_bias_multi_image_and_workgroup_sizes():
    for wg in (32, 64, 256):
        run_case(3, 5, 9, 11, 3, 3, pads=(1, 1, 1, 1), bias=False, sched={"wg": wg})


def test_inf_outside_the_window_stays_out():
    # The padding is a true 0, not 0·x of a clamped tap: an inf on the border row only reaches the
    # outputs whose windows contain it.
    x = np.random.default_rng(4).standard_normal((1, 2, 6, 8)).astype(np.float32)
    x[0, 0, 5, :] = 1e30
    run_case(1, 2, 6, 8, 3, 3, s=(2, 2), pads=(1, 1, 1, 1), x=x)


@pytest.mark.parametrize("act", list(ACTS))
def test_activations(act):
    run_case(1, 3, 9, 10, 3, 3, s=(1, 1), pads=(1, 1, 1, 1), act=act)   # OH·OW % 4 == 2: scalar stores
    run_case(1, 3, 8, 8, 3, 3, s=(2, 2), pads=(1, 1, 1, 1), act=act, seed=1)  # vec4 stores
