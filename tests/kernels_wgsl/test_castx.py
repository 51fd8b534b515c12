"""The WGSL cast kernel on the Cast-only dtypes: the wasm kernel tests (tests/kernels/test_castx.py), same
references and probes, run through wgpu (lavapipe)."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build, gap
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_castx import (test_decode_every_code, test_e8m0_encode,  # noqa: F401 - collected here
                                     test_encode_around_every_value, test_encode_from_other_dtypes,
                                     test_narrow_ints_from_floats, test_packed_round_trip)

pytest.importorskip("wgpu")


def run_wgsl(params, x_bytes, out_bytes):
    assert gap("cast", params) is None
    text, dispatch, _ = build("cast", params)
    return run_kernel(text, dispatch, [x_bytes], [((out_bytes,), np.uint8)])[0]


@pytest.fixture
def run():
    return run_wgsl
