"""im2col kernel against numpy (docs/kernels.md, im2col), and im2col + gemm against a direct conv."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.compiler.codegen import wasm
from nnjit.compiler.codegen.gemm_pack import gemm_candidates, pack_b
from nnjit.compiler.wasm_native import run_kernel


def out_size(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def ref_im2col(x, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw):
    N, C, H, W = x.shape
    # Pad generously, then every tap is a strided slice of the padded image.
    pb = max(0, (OH - 1) * sh + (KH - 1) * dh + 1 - H - pt)
    pr = max(0, (OW - 1) * sw + (KW - 1) * dw + 1 - W - pl)
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr), x.dtype)
    xp[:, :, pt:pt + H, pl:pl + W] = x
    col = np.empty((N, C, KH, KW, OH, OW), x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            col[:, :, kh, kw] = xp[:, :, kh * dh: kh * dh + (OH - 1) * sh + 1: sh,
                                   kw * dw: kw * dw + (OW - 1) * sw + 1: sw]
    return col.reshape(N, C * KH * KW, OH * OW)


def im2col(x, KH, KW, s=(1, 1), pads=(0, 0, 0, 0), d=(1, 1)):
    N, C, H, W = x.shape
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = s, pads, d
    OH, OW = out_size(H, KH, sh, pt, pb, dh), out_size(W, KW, sw, pl, pr, dw)
    p = dict(N=N, C=C, H=H, W=W, KH=KH, KW=KW, OH=OH, OW=OW, stride_h=sh, stride_w=sw, pad_t=pt, pad_l=pl,
             dil_h=dh, dil_w=dw)
    plain, relaxed = wasm.build("im2col", p)
    assert relaxed is None, "im2col has no multiply-add: one binary"
    col, = run_kernel(plain, [x], [((N, C * KH * KW, OH * OW), "float32")])
    np.testing.assert_array_equal(col, ref_im2col(x, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw))
    return col, OH, OW


CASES = [
    # (N, C, H, W, KH, KW, stride, pads t/l/b/r, dilation)
    (1, 1, 1, 1, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    (1, 3, 1, 1, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (2, 3, 7, 7, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (1, 2, 13, 13, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (1, 2, 14, 14, 3, 3, (2, 2), (0, 0, 1, 1), (1, 1)),
    (1, 3, 37, 41, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1)),
    (1, 2, 13, 40, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1)),
    (1, 2, 17, 30, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2)),
    (1, 1, 9, 30, 3, 3, (1, 3), (1, 1, 1, 1), (2, 2)),
    (1, 3, 16, 17, 4, 4, (4, 4), (0, 0, 0, 0), (1, 1)),
    (1, 1, 7, 7, 3, 3, (1, 1), (5, 5, 5, 5), (1, 1)),
    (1, 2, 6, 6, 5, 5, (1, 1), (0, 0, 0, 0), (1, 1)),
    (1, 2, 5, 70, 1, 3, (1, 1), (0, 1, 0, 1), (1, 1)),
    (1, 1, 112, 112, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
]


@pytest.mark.parametrize("N,C,H,W,KH,KW,s,pads,d", CASES)
def test_im2col(N, C, H, W, KH, KW, s, pads, d):
    x = np.random.default_rng(H * W + KH).standard_normal((N, C, H, W)).astype(np.float32)
    im2col(x, KH, KW, s, pads, d)


def direct_conv(x, w, s, pads, d):
    """Plain float64 convolution, independent of the im2col formula."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = s, pads, d
    OH, OW = out_size(H, KH, sh, pt, pb, dh), out_size(W, KW, sw, pl, pr, dw)
    y = np.zeros((N, F, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            for kh in range(KH):
                for kw in range(KW):
                    ih, iw = oh * sh - pt + kh * dh, ow * sw - pl + kw * dw
                    if 0 <= ih < H and 0 <= iw < W:
                        y[:, :, oh, ow] += x[:, :, ih, iw].astype(np.float64) @ w[:, :, kh, kw].T.astype(np.float64)
    return y


def test_im2col_then_gemm_is_conv():
    rng = np.random.default_rng(5)
    N, C, H, W, F = 1, 3, 11, 9, 5
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((F, C, 3, 3)).astype(np.float32)
    s, pads, d = (2, 1), (1, 0, 1, 2), (1, 2)
    col, OH, OW = im2col(x, 3, 3, s, pads, d)
    # Conv as gemm: W[F, C·KH·KW] · col[C·KH·KW, OH·OW], B read row-major (an activation).
    M, K, Nn = F, C * 9, OH * OW
    sched = gemm_candidates(M, Nn, K)[0]
    p = dict(M=M, N=Nn, K=K, batch=[], a_strides=[], b_strides=[], c_strides=[], b_packed=False, bias=None,
             residual=False, act="none", act_min=None, act_max=None, **sched)
    y, = run_kernel(wasm.build("gemm", p)[1], [w.reshape(F, K), col[0]], [((M, Nn), "float32")])
    ref = direct_conv(x, w, s, pads, d)[0].reshape(F, -1)
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
    # And with the conv output channels as N (weights packed, the col matrix transposed as A).
    sched = gemm_candidates(Nn, M, K)[0]
    p.update(M=Nn, N=M, b_packed=True, **sched)
    y, = run_kernel(wasm.build("gemm", p)[0], [np.ascontiguousarray(col[0].T), pack_b(w.reshape(F, K).T, sched["nr"])],
                    [((Nn, M), "float32")])
    assert np.abs(y.T - ref).max() <= 1e-5 * np.abs(ref).max()
