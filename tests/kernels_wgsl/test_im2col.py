"""WGSL im2col (kernels_wgsl/im2col.wgsl.j2) against numpy, and WGSL im2col + WGSL gemm against a
direct convolution. The reference functions are the WASM tests' (same contract)."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.compiler.codegen import wgsl
from nnjit.compiler.codegen.gemm_pack import pack_b
from nnjit.compiler.codegen.wgsl_space import gemm_wgsl_candidates
from nnjit.compiler.wgpu_native import run_kernel
from tests.kernels.test_im2col import CASES, direct_conv, out_size, ref_im2col


def im2col(x, KH, KW, s=(1, 1), pads=(0, 0, 0, 0), d=(1, 1), sched=None):
    N, C, H, W = x.shape
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = s, pads, d
    OH, OW = out_size(H, KH, sh, pt, pb, dh), out_size(W, KW, sw, pl, pr, dw)
    p = dict(N=N, C=C, H=H, W=W, KH=KH, KW=KW, OH=OH, OW=OW, stride_h=sh, stride_w=sw, pad_t=pt, pad_l=pl,
             dil_h=dh, dil_w=dw)
    text, dispatch, _ = wgsl.build("im2col", p, sched)
    col, = run_kernel(text, dispatch, [x], [((N, C * KH * KW, OH * OW), "float32")])
    np.testing.assert_array_equal(col, ref_im2col(x, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw))
    return col, OH, OW


@pytest.mark.parametrize("N,C,H,W,KH,KW,s,pads,d", CASES)
def test_im2col(N, C, H, W, KH, KW, s, pads, d):
    x = np.random.default_rng(H * W + KH).standard_normal((N, C, H, W)).astype(np.float32)
    im2col(x, KH, KW, s, pads, d)


def test_workgroup_size_and_inf_outside_taps():
    # Values outside the taps (here inf) never leak into the zero padding.
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 10)).astype(np.float32)
    x[0, 1, 0, :] = np.inf
    for wg in (32, 256):
        im2col(x, 3, 3, (2, 2), (1, 1, 1, 1), sched={"wg": wg})


def test_im2col_then_gemm_is_conv():
    rng = np.random.default_rng(5)
    N, C, H, W, F = 1, 3, 11, 9, 5
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((F, C, 3, 3)).astype(np.float32)
    s, pads, d = (2, 1), (1, 0, 1, 2), (1, 2)
    col, OH, OW = im2col(x, 3, 3, s, pads, d)
    ref = direct_conv(x, w, s, pads, d)[0].reshape(F, -1)
    M, K, Nn = F, C * 9, OH * OW
    p = dict(M=M, N=Nn, K=K, batch=[], a_strides=[], b_strides=[], c_strides=[], b_packed=False, bias=None,
             residual=False, act="none", act_min=None, act_max=None, nr=8)
    text, dispatch, _ = wgsl.build("gemm", p, gemm_wgsl_candidates(M, Nn, K)[0])
    y, = run_kernel(text, dispatch, [w.reshape(F, K), col[0]], [((M, Nn), "float32")])
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
    # Output channels as N: weights packed, the col matrix transposed as A.
    p.update(M=Nn, N=M, b_packed=True, nr=12)
    text, dispatch, _ = wgsl.build("gemm", p, gemm_wgsl_candidates(Nn, M, K)[0])
    y, = run_kernel(text, dispatch, [np.ascontiguousarray(col[0].T), pack_b(w.reshape(F, K).T, 12)],
                    [((Nn, M), "float32")])
    assert np.abs(y.T - ref).max() <= 1e-5 * np.abs(ref).max()
