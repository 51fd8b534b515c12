"""cumsum, argreduce (ArgMax/ArgMin), topk and scatternd kernels vs numpy/onnx's reference on odd shapes
(x as [outer, n, inner] around the axis): inner = 1 takes the in-row SIMD paths, inner > 1 the
column-vector ones."""
import itertools

import numpy as np
import pytest
from onnx.reference.ops.op_topk import topk_sorted_implementation

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

SHAPES = [(1, 1, 1), (1, 7, 1), (2, 37, 1), (1, 130, 1), (3, 5, 7), (2, 1, 37), (1, 13, 130), (2, 4, 3), (1, 3, 1)]


def wasm(family, params, inputs, outputs):
    plain, relaxed = build(family, params)
    assert relaxed is None
    return run_kernel(plain, inputs, outputs)


def cumsum_ref(x, exclusive, reverse):
    if reverse:
        x = x[:, ::-1]
    y = np.cumsum(x, axis=1, dtype=x.dtype)
    if exclusive:
        y = np.concatenate([np.zeros_like(y[:, :1]), y[:, :-1]], axis=1)
    return y[:, ::-1] if reverse else y


def cumsum_input(dt, shape):
    x = np.random.default_rng(shape[1] * 31 + shape[2]).standard_normal(shape) * 10
    return (x * 2**40).astype(dt) if dt == "int64" else x.astype(dt)  # int64 sums past 32 bits


def check_cumsum(y, x, exclusive, reverse):
    ref = cumsum_ref(x, exclusive, reverse)
    if x.dtype.kind == "f":  # SIMD prefix sums associate differently from a sequential loop
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-4 * max(1.0, float(np.abs(x).sum(axis=1).max())))
    else:
        np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("dt", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("exclusive,reverse", list(itertools.product([False, True], [False, True])))
@pytest.mark.parametrize("shape", SHAPES)
def test_cumsum(dt, exclusive, reverse, shape):
    x = cumsum_input(dt, shape)
    (y,) = wasm("cumsum", dict(outer=shape[0], n=shape[1], inner=shape[2], dtype=dt, exclusive=exclusive,
                               reverse=reverse), [x], [(shape, dt)])
    check_cumsum(y, x, exclusive, reverse)


def argreduce_ref(x, op, last):
    f = np.argmax if op == "max" else np.argmin
    return x.shape[1] - 1 - f(x[:, ::-1], axis=1) if last else f(x, axis=1)


def arg_input(kind, shape):
    rng = np.random.default_rng(shape[1] * 7 + shape[2] + len(kind))
    if kind == "random":
        return rng.standard_normal(shape).astype(np.float32)
    x = rng.integers(-3, 3, shape).astype(np.float32)  # many ties
    if kind == "nan":
        x[rng.random(shape) < 0.2] = np.nan
    return x


@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
@pytest.mark.parametrize("op,last", list(itertools.product(["max", "min"], [False, True])))
@pytest.mark.parametrize("shape", SHAPES + [(1, 4, 1), (1, 5, 1)])
def test_argreduce(kind, op, last, shape):
    x = arg_input(kind, shape)
    (y,) = wasm("argreduce", dict(op=op, outer=shape[0], n=shape[1], inner=shape[2], select_last=last),
                [x], [((shape[0], shape[2]), np.int64)])
    np.testing.assert_array_equal(y, argreduce_ref(x, op, last))


def topk_input(dt, kind, shape):
    x = arg_input(kind, shape)
    if dt != "float32":
        x = (np.nan_to_num(x) * (2**40 if dt.endswith("64") else 1000)).astype(dt)  # uint64 wraps: a wide range
    return x


def topk_cases():
    for dt in ["float32", "int32", "int64", "uint64"]:
        for shape in SHAPES:
            for k in sorted({1, min(3, shape[1]), shape[1]}):
                for kind in ["random", "ties"] + (["nan"] if dt == "float32" else []):
                    yield dt, shape, k, kind


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dt,shape,k,kind", list(topk_cases()))
def test_topk(dt, shape, k, kind, largest):
    x = topk_input(dt, kind, shape)
    out = (shape[0], k, shape[2])
    vals, idx = wasm("topk", dict(outer=shape[0], n=shape[1], inner=shape[2], k=k, largest=largest, dtype=dt),
                     [x], [(out, dt), (out, np.int64)])
    rv, ri = topk_sorted_implementation(x, k, 1, largest)
    np.testing.assert_array_equal(idx, ri)
    np.testing.assert_array_equal(vals, rv)


SCATTER = [((7,), 1, 3), ((37, 5), 1, 4), ((4, 5, 6), 2, 7), ((3, 130), 1, 2), ((2, 3, 4), 3, 5), ((1,), 1, 1)]
REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter_case(dshape, q, nidx, red, dt):
    """data, indices (negative ones included; unique for reduction none, repeated for the others), updates,
    the expected output and the kernel params."""
    rng = np.random.default_rng(len(dshape) * 13 + nidx)
    data = (rng.standard_normal(dshape) * 5).astype(dt)
    rows = int(np.prod(dshape[:q]))
    flat = rng.choice(rows, size=min(nidx, rows), replace=False) if red == "none" else rng.integers(0, rows, nidx)
    idx = np.stack(np.unravel_index(flat, dshape[:q]), -1).astype(np.int64)
    idx -= (rng.random(idx.shape) < 0.5) * np.array(dshape[:q], np.int64)  # the same positions, from the end
    upd = (rng.standard_normal(idx.shape[:-1] + tuple(dshape[q:])) * 5).astype(dt)
    ref = data.copy()
    for t in np.ndindex(idx.shape[:-1]):
        k = tuple(int(v) for v in idx[t])
        ref[k] = upd[t] if red == "none" else REDUCE[red](ref[k], upd[t])
    params = dict(n_idx=int(np.prod(idx.shape[:-1])), dims=list(dshape[:q]), slice=int(np.prod(dshape[q:])),
                  reduction=red, dtype=dt, elem_bytes=np.dtype(dt).itemsize)
    return data, idx, upd, ref, params


def scatter_cases():
    for dshape, q, nidx in SCATTER:
        for red in ["none"] + list(REDUCE):
            for dt in (["float32", "int64", "int32"] if red == "none" else ["float32"]):
                yield dshape, q, nidx, red, dt


@pytest.mark.parametrize("dshape,q,nidx,red,dt", list(scatter_cases()))
def test_scatternd(dshape, q, nidx, red, dt):
    data, idx, upd, ref, params = scatter_case(dshape, q, nidx, red, dt)
    (y,) = wasm("scatternd", params, [data, idx, upd], [(dshape, dt)])
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("op", ["max", "min"])
def test_argreduce_vocabulary_row(op):
    """ArgMax over one long logits row (a vocabulary), with the winner and a tie near the end."""
    x = np.random.default_rng(1).standard_normal((2, 50257, 1)).astype(np.float32)
    x[0, 50001, 0] = x[0, 50200, 0] = 9.0 if op == "max" else -9.0
    for last in (False, True):
        (y,) = wasm("argreduce", dict(op=op, outer=2, n=50257, inner=1, select_last=last), [x], [((2, 1), np.int64)])
        np.testing.assert_array_equal(y, argreduce_ref(x, op, last))
