"""WGSL cumsum, argreduce, topk and scatternd kernels vs numpy/onnx's reference on odd shapes (the cases of
tests/kernels/test_scan.py), and the software float64 add of the float64 cumsum bit for bit against numpy."""
import itertools

import numpy as np
import pytest
from onnx.reference.ops.op_topk import topk_sorted_implementation

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_scan import (
    SHAPES,
    arg_input,
    argreduce_ref,
    check_cumsum,
    cumsum_input,
    scatter_case,
    scatter_cases,
    topk_cases,
    topk_input,
)


def gpu(family, params, inputs, outputs):
    text, dispatch, _ = build(family, params)
    return run_kernel(text, dispatch, inputs, outputs)


@pytest.mark.parametrize("dt", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("exclusive,reverse", list(itertools.product([False, True], [False, True])))
@pytest.mark.parametrize("shape", SHAPES)
def test_cumsum(dt, exclusive, reverse, shape):
    x = cumsum_input(dt, shape)
    (y,) = gpu("cumsum", dict(outer=shape[0], n=shape[1], inner=shape[2], dtype=dt, exclusive=exclusive,
                              reverse=reverse), [x], [(shape, dt)])
    check_cumsum(y, x, exclusive, reverse)


def test_float64_add_is_correctly_rounded():
    """y[1] = x0 + x1 of a 2-row cumsum: random magnitudes, near and exact cancellation, subnormals, ±inf,
    NaN, signed zeros, overflow; equal bits to numpy (NaN: any NaN)."""
    rng = np.random.default_rng(0)
    n = 20000
    a = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)
    b = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)
    b[: n // 4] = -a[: n // 4] * (1 + rng.standard_normal(n // 4) * 1e-10)
    b[n // 4: n // 3] = -a[n // 4: n // 3]
    sp = np.array([5e-324, 1e-310, -2.2e-308, 1.7e308, -1.7e308, np.inf, -np.inf, np.nan, 0.0, -0.0,
                   2.2250738585072014e-308, 1.0, 2.0 ** -53])
    a, b = np.concatenate([a, np.repeat(sp, sp.size)]), np.concatenate([b, np.tile(sp, sp.size)])
    x = np.stack([a, b])[None]
    (y,) = gpu("cumsum", dict(outer=1, n=2, inner=a.size, dtype="float64", exclusive=False, reverse=False),
               [x], [(x.shape, np.float64)])
    with np.errstate(all="ignore"):
        ref = a + b
    got = y[0, 1]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_array_equal(got[ok].view(np.uint64), ref[ok].view(np.uint64))


@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
@pytest.mark.parametrize("op,last", list(itertools.product(["max", "min"], [False, True])))
@pytest.mark.parametrize("shape", SHAPES + [(1, 4, 1), (1, 5, 1)])
def test_argreduce(kind, op, last, shape):
    x = arg_input(kind, shape)
    (y,) = gpu("argreduce", dict(op=op, outer=shape[0], n=shape[1], inner=shape[2], select_last=last),
               [x], [((shape[0], shape[2]), np.int64)])
    np.testing.assert_array_equal(y, argreduce_ref(x, op, last))


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dt,shape,k,kind", list(topk_cases()))
def test_topk(dt, shape, k, kind, largest):
    x = topk_input(dt, kind, shape)
    out = (shape[0], k, shape[2])
    vals, idx = gpu("topk", dict(outer=shape[0], n=shape[1], inner=shape[2], k=k, largest=largest, dtype=dt),
                    [x], [(out, dt), (out, np.int64)])
    rv, ri = topk_sorted_implementation(x, k, 1, largest)
    np.testing.assert_array_equal(idx, ri)
    np.testing.assert_array_equal(vals, rv)


@pytest.mark.parametrize("dshape,q,nidx,red,dt", list(scatter_cases()))
def test_scatternd(dshape, q, nidx, red, dt):
    data, idx, upd, ref, params = scatter_case(dshape, q, nidx, red, dt)
    (y,) = gpu("scatternd", params, [data, idx, upd], [(dshape, dt)])
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("wg", [1, 32, 128, 256])
@pytest.mark.parametrize("op", ["max", "min"])
def test_argreduce_vocabulary_row(op, wg):
    """One long row split over the workgroup: the tree must keep index order across threads."""
    x = np.random.default_rng(1).standard_normal((2, 50257, 1)).astype(np.float32)
    x[0, 50001, 0] = x[0, 50200, 0] = x[0, 7, 0] = 9.0 if op == "max" else -9.0
    for last in (False, True):
        params = dict(op=op, outer=2, n=50257, inner=1, select_last=last)
        text, dispatch, _ = build("argreduce", params, {"wg": wg})
        (y,) = run_kernel(text, dispatch, [x], [((2, 1), np.int64)])
        np.testing.assert_array_equal(y, argreduce_ref(x, op, last))
