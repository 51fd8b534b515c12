"""WGSL pool2d (kernels_wgsl/pool2d.wgsl.j2) against the numpy reference of the WASM tests (onnxruntime
semantics for ceil_mode / count_include_pad, checked there and once more here)."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.compiler.codegen import wgsl
from nnjit.compiler.wgpu_native import run_kernel
from tests.kernels.test_pool import out_size, ref_pool


def run_case(P, H, W, KH, KW, mode, s=(1, 1), pads=(0, 0, 0, 0), d=(1, 1), cip=False, ceil=False,
             pass_far_pads=True, seed=0, x=None, sched=None):
    sh, sw = s
    pt, pl, pb, pr = pads
    dh, dw = d
    OH, OW = out_size(H, KH, sh, pt, pb, dh, ceil), out_size(W, KW, sw, pl, pr, dw, ceil)
    if x is None:
        x = np.random.default_rng(seed).standard_normal((P, H, W)).astype(np.float32)
    p = dict(planes=P, H=H, W=W, OH=OH, OW=OW, KH=KH, KW=KW, stride_h=sh, stride_w=sw, pad_t=pt, pad_l=pl,
             dil_h=dh, dil_w=dw, mode=mode, count_include_pad=cip)
    if pass_far_pads:
        p.update(pad_b=pb, pad_r=pr)
    ref = ref_pool(x.astype(np.float64), mode, KH, KW, OH, OW, sh, sw, pt, pl, pb, pr, dh, dw, cip)
    text, dispatch, _ = wgsl.build("pool2d", p, sched)
    y, = run_kernel(text, dispatch, [x], [((P, OH, OW), "float32")])
    if mode == "max":
        np.testing.assert_array_equal(y, ref.astype(np.float32))
    else:
        err = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err <= 1e-5, f"{p}: error {err:.3g}"
    return y


@pytest.mark.parametrize("H,W", [(1, 1), (7, 7), (13, 13), (56, 56), (6, 23)])
def test_max_3x3_s2_p1(H, W):
    run_case(3, H, W, 3, 3, "max", s=(2, 2), pads=(1, 1, 1, 1))


@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize("H,W", [(7, 7), (13, 29), (2, 3)])
def test_avg_3x3_pad(H, W, cip):
    run_case(2, H, W, 3, 3, "avg", s=(1, 1), pads=(1, 1, 1, 1), cip=cip)
    run_case(2, H, W, 3, 3, "avg", s=(2, 2), pads=(1, 1, 1, 1), cip=cip, seed=1)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("cip", [False, True])
def test_ceil_mode(mode, cip):
    run_case(2, 6, 6, 3, 3, mode, s=(2, 2), pads=(1, 1, 1, 1), cip=cip, ceil=True)
    run_case(2, 8, 11, 2, 2, mode, s=(2, 2), cip=cip, ceil=True)
    run_case(1, 112, 112, 3, 3, mode, s=(2, 2), cip=cip, ceil=True)  # GoogLeNet-style 112 → 56
    run_case(1, 13, 17, 3, 3, mode, s=(3, 3), pads=(0, 1, 0, 1), cip=cip, ceil=True)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_stride1_dilation_and_big_kernels(mode):
    run_case(2, 17, 30, 3, 3, mode, s=(1, 1), pads=(2, 2, 2, 2), d=(2, 2))
    run_case(1, 14, 40, 5, 5, mode, s=(1, 1), pads=(2, 2, 2, 2), cip=True)
    run_case(1, 7, 7, 7, 7, mode)  # global-pool-like window
    run_case(1, 9, 33, 2, 4, mode, s=(1, 2), pads=(1, 0, 0, 3), d=(1, 2), ceil=True)


def test_default_far_pads_divide_by_window():
    # Without pad_b/pad_r the count_include_pad divisor is KH·KW (floor-mode outputs).
    run_case(2, 9, 9, 3, 3, "avg", s=(2, 2), pads=(1, 1, 1, 1), cip=True, pass_far_pads=False)


def test_windows_with_no_tap_inside():
    # Padding wider than the kernel: corner windows see no pixel: max gives -FLT_MAX, avg 0.
    for mode in ("max", "avg"):
        for cip in (False, True):
            y = run_case(1, 3, 3, 2, 2, mode, s=(1, 1), pads=(3, 3, 3, 3), cip=cip)
            assert y[0, 0, 0] == (np.finfo(np.float32).min if mode == "max" else 0.0)


def test_max_ignores_padding_and_nan():
    # Padding must not act as a 0 in max pooling, and NaN taps are skipped (onnxruntime's x > y).
    x = -1.0 - np.abs(np.random.default_rng(3).standard_normal((2, 7, 9))).astype(np.float32)
    y = run_case(2, 7, 9, 3, 3, "max", s=(2, 2), pads=(1, 1, 1, 1), x=x)
    assert (y <= -1.0).all()
    x[0, 2, 2] = np.nan
    p = dict(planes=2, H=7, W=9, OH=4, OW=5, KH=3, KW=3, stride_h=2, stride_w=2, pad_t=1, pad_l=1,
             dil_h=1, dil_w=1, mode="max", count_include_pad=False)
    text, dispatch, _ = wgsl.build("pool2d", p, {"wg": 32})
    y, = run_kernel(text, dispatch, [x], [((2, 4, 5), "float32")])
    ref = ref_pool(np.where(np.isnan(x), -np.inf, x).astype(np.float64), "max", 3, 3, 4, 5, 2, 2, 1, 1, 1, 1, 1, 1,
                   False)
    np.testing.assert_array_equal(y, ref.astype(np.float32))


def test_matches_onnxruntime_ceil_count_include_pad():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    for H, k, s, pads, ceil, cip in [(6, 3, 2, 1, 1, 1), (6, 3, 2, 0, 1, 1), (7, 3, 2, 1, 1, 0), (9, 2, 2, 0, 1, 1)]:
        node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s],
                                pads=[pads] * 4, ceil_mode=ceil, count_include_pad=cip)
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, H, H])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
        model.ir_version = 9
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(H).standard_normal((1, 1, H, H)).astype(np.float32)
        want = sess.run(None, {"x": x})[0][0]
        OH = out_size(H, k, s, pads, pads, 1, ceil)
        p = dict(planes=1, H=H, W=H, OH=OH, OW=OH, KH=k, KW=k, stride_h=s, stride_w=s, pad_t=pads, pad_l=pads,
                 pad_b=pads, pad_r=pads, dil_h=1, dil_w=1, mode="avg", count_include_pad=bool(cip))
        text, dispatch, _ = wgsl.build("pool2d", p, {})
        got, = run_kernel(text, dispatch, [x[0]], [((1, OH, OH), "float32")])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
