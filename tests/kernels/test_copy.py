"""copy kernel vs numpy views: transposes, slices (negative steps), expand, concat parts, 1/4/8-byte elements."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

DTYPES = {1: np.uint8, 4: np.float32, 8: np.int64}


def elem_strides(view, base):
    return [s // base.itemsize for s in view.strides]


def view_offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


def run_copy(src, view, dst_view=None):
    """Copy `view` (a numpy view into `src`) into a fresh dst, or into `dst_view` (a view into a larger
    dst); return the whole dst."""
    eb = src.itemsize
    if dst_view is None:
        dst = np.empty(view.shape, src.dtype)
        dst_view = dst
    else:
        dst = dst_view.base if dst_view.base is not None else dst_view
    params = dict(shape=list(view.shape) or [1], src_strides=elem_strides(view, src) or [0],
                  dst_strides=elem_strides(dst_view, dst) or [0], src_offset=view_offset(view, src),
                  dst_offset=view_offset(dst_view, dst), elem_bytes=eb)
    plain, relaxed = build("copy", params)
    assert relaxed is None
    return run_kernel(plain, [src], [(dst.shape, src.dtype)])[0]


def rand(shape, eb, seed=0):
    rng = np.random.default_rng(seed)
    if eb == 4:
        return rng.standard_normal(shape).astype(np.float32)
    if eb == 8:
        return rng.integers(-2**62, 2**62, shape, dtype=np.int64)
    if eb == 2:  # float16/bfloat16 images: any bit pattern, NaN payloads included, must survive
        return rng.integers(0, 2**16, shape, dtype=np.uint16)
    return rng.integers(0, 256, shape, dtype=np.uint8)


CASES = {
    "identity_1": lambda a: a[...],
    "slice_step": lambda a: a[..., 1::2],
    "slice_neg": lambda a: a[..., ::-1],
    "slice_neg_step": lambda a: a[::-1, ..., ::-3],
    "transpose": lambda a: a.T,
    "transpose_inner": lambda a: np.swapaxes(a, -1, -2),
    "middle_slice": lambda a: a[:, 1:-1],
    "reverse_rows": lambda a: a[::-1],
}


SHAPES = [(1,), (3,), (37,), (130,), (3, 7), (4, 130), (2, 3, 5), (2, 3, 4, 5), (3, 37, 2)]


def _defined(case, shape) -> bool:
    """Whether the view exists for this rank and is non-empty (e.g. a 2-D slice of a 1-D shape is not)."""
    try:
        return CASES[case](np.empty(shape)).size > 0
    except IndexError:
        return False


VIEWS = [(case, shape) for case in CASES for shape in SHAPES if _defined(case, shape)]


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
@pytest.mark.parametrize("case,shape", VIEWS)
def test_views(eb, shape, case):
    src = rand(shape, eb, seed=len(shape) * 10 + eb)
    view = CASES[case](src)
    y = run_copy(src, view)
    np.testing.assert_array_equal(y, view)


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
@pytest.mark.parametrize("out_shape,in_shape", [((5, 7), (1, 7)), ((5, 7), (5, 1)), ((3, 4, 9), (1, 4, 1)),
                                                ((37,), (1,)), ((2, 1, 3, 1, 2, 5), (1, 1, 3, 1, 1, 5))])
def test_expand(eb, out_shape, in_shape):
    src = rand(in_shape, eb, seed=3)
    view = np.broadcast_to(src, out_shape)
    np.testing.assert_array_equal(run_copy(src, view), view)


@pytest.mark.parametrize("eb", [1, 2, 4, 8])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat_part(eb, axis):
    """A part written into its slot of a larger dst; the rest of dst is left untouched (run_kernel's guard
    check covers bytes outside dst; inside dst the other parts keep whatever was there)."""
    part = rand((3, 5, 7), eb, seed=axis)
    dst_shape = [3, 5, 7]
    dst_shape[axis] = 11
    dst = np.zeros(dst_shape, part.dtype)
    sl = [slice(None)] * 3
    sl[axis] = slice(2, 2 + part.shape[axis])
    dst_view = dst[tuple(sl)]
    y = run_copy(part, part[...], dst_view=dst_view)
    np.testing.assert_array_equal(y[tuple(sl)], part)


def test_six_dim_permute():
    src = rand((2, 3, 1, 4, 3, 5), 4, seed=9)
    view = src.transpose(5, 3, 0, 4, 2, 1)
    np.testing.assert_array_equal(run_copy(src, view), view)


@pytest.mark.parametrize("rows", [4, 5, 7, 8, 13])
@pytest.mark.parametrize("cols", [4, 6, 9, 37])
@pytest.mark.parametrize("eb", [4, 8])
def test_tiled_transpose(rows, cols, eb):
    """[.., rows, cols] -> [.., cols, rows] (4×4 shuffle tiles for 4-byte elements, plus edge rows/cols)."""
    src = rand((2, rows, cols), eb, seed=rows * cols)
    for view in (np.swapaxes(src, 1, 2), np.swapaxes(src[:, ::-1], 1, 2), np.swapaxes(src[:, :, ::-2], 1, 2)):
        np.testing.assert_array_equal(run_copy(src, view), view)


def test_attention_style_permute():
    src = rand((2, 9, 3, 8), 4, seed=11)  # [B, S, H, D] -> [B, H, D, S]
    view = src.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(run_copy(src, view), view)
