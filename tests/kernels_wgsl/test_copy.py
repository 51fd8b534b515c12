"""WGSL copy kernel vs numpy views: transposes, slices (negative steps), expand, concat parts, 1/2/4/8-byte
elements. run_kernel fills outputs with 0xFF bytes first, so bytes of dst outside the view must still be
0xFF afterwards: that checks that a bool writer keeps the bytes of the words it shares with others."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_copy import CASES, VIEWS, elem_strides, rand, view_offset


def run_copy(src, view, dst_view=None, schedule=None):
    """Copy `view` (a numpy view into `src`) into a fresh dst, or into `dst_view` (a view into a larger
    dst); return the whole dst as the kernel left it."""
    if dst_view is None:
        dst = np.empty(view.shape, src.dtype)
        dst_view = dst
    else:
        dst = dst_view.base if dst_view.base is not None else dst_view
    params = dict(shape=list(view.shape) or [1], src_strides=elem_strides(view, src) or [0],
                  dst_strides=elem_strides(dst_view, dst) or [0], src_offset=view_offset(view, src),
                  dst_offset=view_offset(dst_view, dst), elem_bytes=src.itemsize)
    text, dispatch, _ = build("copy", params, schedule)
    return run_kernel(text, dispatch, [src], [(dst.shape, src.dtype)])[0]


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
@pytest.mark.parametrize("case,shape", VIEWS)
def test_views(eb, shape, case):
    src = rand(shape, eb, seed=len(shape) * 10 + eb)
    view = CASES[case](src)
    np.testing.assert_array_equal(run_copy(src, view), view)


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
@pytest.mark.parametrize("out_shape,in_shape", [((5, 7), (1, 7)), ((5, 7), (5, 1)), ((3, 4, 9), (1, 4, 1)),
                                                ((37,), (1,)), ((2, 1, 3, 1, 2, 5), (1, 1, 3, 1, 1, 5))])
def test_expand(eb, out_shape, in_shape):
    src = rand(in_shape, eb, seed=3)
    view = np.broadcast_to(src, out_shape)
    np.testing.assert_array_equal(run_copy(src, view), view)


def untouched(y, mask):
    """Bytes of y outside `mask` (elements of the view) still hold the 0xFF fill."""
    raw = y.view(np.uint8).reshape(y.shape + (y.itemsize,))
    assert (raw[~mask] == 0xFF).all()


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("start", [0, 1, 2, 3])
def test_concat_part(eb, axis, start):
    """A part written into its slot of a larger dst at every byte alignment; the rest of dst (other parts'
    bytes, sharing words with this part when elements are bools) is left as it was."""
    part = rand((3, 5, 7), eb, seed=axis)
    dst_shape = [3, 5, 7]
    dst_shape[axis] = 5 + part.shape[axis]
    dst = np.zeros(dst_shape, part.dtype)
    sl = [slice(None)] * 3
    sl[axis] = slice(start, start + part.shape[axis])
    y = run_copy(part, part[...], dst_view=dst[tuple(sl)])
    np.testing.assert_array_equal(y[tuple(sl)], part)
    mask = np.zeros(dst_shape, bool)
    mask[tuple(sl)] = True
    untouched(y, mask)


@pytest.mark.parametrize("eb", [1, 2, 4])
def test_strided_dst_view(eb):
    """dst is every other column of a larger tensor, written from a transposed src."""
    src = rand((9, 6), eb, seed=5)
    dst = np.zeros((6, 19), src.dtype)
    dst_view = dst[:, 1::2]
    y = run_copy(src, src.T, dst_view=dst_view)
    np.testing.assert_array_equal(y[:, 1::2], src.T)
    mask = np.zeros(dst.shape, bool)
    mask[:, 1::2] = True
    untouched(y, mask)


def test_six_dim_permute():
    src = rand((2, 3, 1, 4, 3, 5), 4, seed=9)
    view = src.transpose(5, 3, 0, 4, 2, 1)
    np.testing.assert_array_equal(run_copy(src, view), view)


@pytest.mark.parametrize("rows", [4, 5, 13])
@pytest.mark.parametrize("cols", [4, 9, 37])
@pytest.mark.parametrize("eb", [1, 2, 4, 8])
def test_transpose(rows, cols, eb):
    src = rand((2, rows, cols), eb, seed=rows * cols)
    for view in (np.swapaxes(src, 1, 2), np.swapaxes(src[:, ::-1], 1, 2), np.swapaxes(src[:, :, ::-2], 1, 2)):
        np.testing.assert_array_equal(run_copy(src, view), view)


def test_float_bits_preserved():
    src = np.array([np.nan, -0.0, np.inf, -np.inf, 1.0], np.float32)
    src.view(np.uint32)[0] = 0x7FA00001  # a NaN with a payload
    y = run_copy(src, src[::-1])
    np.testing.assert_array_equal(y.view(np.uint32), src[::-1].view(np.uint32))


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
def test_large_folded(eb):
    src = rand((300000,), eb, seed=1)
    view = src[::-1]
    np.testing.assert_array_equal(run_copy(src, view, schedule={"wg": 1}), view)


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
def test_empty_is_a_no_op(eb):
    params = dict(shape=[2, 0, 3], src_strides=[3, 3, 1], dst_strides=[0, 3, 1], src_offset=0, dst_offset=0,
                  elem_bytes=eb)
    text, dispatch, _ = build("copy", params)
    dt = {1: np.uint8, 2: np.uint16, 4: np.float32, 8: np.int64}[eb]
    (y,) = run_kernel(text, dispatch, [np.zeros(6, dt)], [((0,), dt)])
    assert y.size == 0
