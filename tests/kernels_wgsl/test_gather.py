"""WGSL gather kernel vs numpy.take: int32/int64 indices, negative wrap, out-of-range clamp, 4/8-byte data."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_gather import ref_gather


def run_gather(data, idx, axis, schedule=None):
    outer = int(np.prod(data.shape[:axis], dtype=np.int64))
    axis_len = data.shape[axis]
    inner = int(np.prod(data.shape[axis + 1:], dtype=np.int64))
    params = dict(outer=outer, axis_len=axis_len, inner=inner, n_idx=int(idx.size),
                  idx_dtype=str(idx.dtype), elem_bytes=data.itemsize)
    text, dispatch, _ = build("gather", params, schedule)
    out_shape = data.shape[:axis] + idx.shape + data.shape[axis + 1:]
    return run_kernel(text, dispatch, [data, idx], [(out_shape, data.dtype)])[0]


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((37, 1), 0), ((30, 3), 0), ((30, 130), 0), ((5, 37), 1),
                                         ((2, 7, 5), 1), ((3, 4, 9), 2), ((1, 1, 1), 1), ((4, 13, 4), 1)])
def test_gather(idx_dtype, dtype, shape, axis):
    rng = np.random.default_rng(sum(shape) + axis)
    data = (rng.standard_normal(shape) * 100).astype(dtype)
    if dtype == np.int64:
        data = data * 2**33 + 5  # use the high words too
    n = shape[axis]
    idx = rng.integers(-n, n, 11).astype(idx_dtype)
    np.testing.assert_array_equal(run_gather(data, idx, axis), ref_gather(data, idx, axis))


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
def test_out_of_range_is_clamped(idx_dtype):
    data = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    if idx_dtype == np.int64:
        big = [2**40, -2**40, 2**32, -2**32, 2**31, -2**31 - 1, 2**63 - 1, -2**63]
    else:
        big = [2**30, -2**30, 2**31 - 1, -2**31]
    idx = np.array([0, 5, 6, 100, -1, -6, -7, -100, 3] + big, idx_dtype)
    np.testing.assert_array_equal(run_gather(data, idx, 0), ref_gather(data, idx, 0))


def test_two_dim_indices():
    data = np.random.default_rng(0).standard_normal((3, 10, 6)).astype(np.float32)
    idx = np.array([[1, -2, 3], [9, 0, 0]], np.int64)
    np.testing.assert_array_equal(run_gather(data, idx, 1), np.take(data, np.where(idx < 0, idx + 10, idx), axis=1))


def test_embedding_rows_folded():
    """A token-embedding lookup with more output words than one dispatch row holds."""
    rng = np.random.default_rng(4)
    data = rng.standard_normal((50, 37)).astype(np.float32)
    idx = rng.integers(-50, 50, 1900).astype(np.int64)
    np.testing.assert_array_equal(run_gather(data, idx, 0, schedule={"wg": 1}), ref_gather(data, idx, 0))


@pytest.mark.parametrize("n_idx,inner", [(0, 3), (4, 0)])
def test_empty_output_is_a_no_op(n_idx, inner):
    params = dict(outer=2, axis_len=5, inner=inner, n_idx=n_idx, idx_dtype="int64", elem_bytes=4)
    text, dispatch, _ = build("gather", params)
    data = np.zeros(max(10 * inner, 1), np.float32)
    (y,) = run_kernel(text, dispatch, [data, np.zeros(max(n_idx, 1), np.int64)], [((0,), np.float32)])
    assert y.size == 0
