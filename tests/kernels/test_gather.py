"""gather kernel vs numpy.take: int32/int64 indices, negative wrap, out-of-range clamp, 4/8-byte data."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel


def run_gather(data, idx, axis):
    outer = int(np.prod(data.shape[:axis], dtype=np.int64))
    axis_len = data.shape[axis]
    inner = int(np.prod(data.shape[axis + 1:], dtype=np.int64))
    params = dict(outer=outer, axis_len=axis_len, inner=inner, n_idx=int(idx.size),
                  idx_dtype=str(idx.dtype), elem_bytes=data.itemsize)
    plain, relaxed = build("gather", params)
    assert relaxed is None
    out_shape = data.shape[:axis] + idx.shape + data.shape[axis + 1:]
    return run_kernel(plain, [data, idx], [(out_shape, data.dtype)])[0]


def ref_gather(data, idx, axis):
    n = data.shape[axis]
    fixed = np.where(idx < 0, idx + n, idx)
    return np.take(data, np.clip(fixed, 0, n - 1), axis=axis)


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((37, 1), 0), ((30, 3), 0), ((30, 130), 0), ((5, 37), 1),
                                         ((2, 7, 5), 1), ((3, 4, 9), 2), ((1, 1, 1), 1), ((4, 13, 4), 1)])
def test_gather(idx_dtype, dtype, shape, axis):
    rng = np.random.default_rng(sum(shape) + axis)
    data = (rng.standard_normal(shape) * 100).astype(dtype)
    n = shape[axis]
    idx = rng.integers(-n, n, 11).astype(idx_dtype)
    np.testing.assert_array_equal(run_gather(data, idx, axis), ref_gather(data, idx, axis))


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
def test_out_of_range_is_clamped(idx_dtype):
    data = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    big = 2**40 if idx_dtype == np.int64 else 2**30
    idx = np.array([0, 5, 6, 100, -1, -6, -7, -100, big, -big, 3], idx_dtype)
    y = run_gather(data, idx, 0)
    np.testing.assert_array_equal(y, ref_gather(data, idx, 0))


def test_two_dim_indices():
    data = np.random.default_rng(0).standard_normal((3, 10, 6)).astype(np.float32)
    idx = np.array([[1, -2, 3], [9, 0, 0]], np.int64)
    np.testing.assert_array_equal(run_gather(data, idx, 1), np.take(data, np.where(idx < 0, idx + 10, idx), axis=1))
