"""The WGSL poolidx kernel: the wasm kernel's tests (tests/kernels/test_poolidx.py) through wgpu."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_poolidx import test_poolidx  # noqa: F401 - collected here

pytest.importorskip("wgpu")


@pytest.fixture
def run():
    def run_wgsl(p, x):
        text, dispatch, _ = build("poolidx", p)
        return run_kernel(text, dispatch, [x], [((p["planes"], p["OH"], p["OW"]), np.int64)])[0]
    return run_wgsl
