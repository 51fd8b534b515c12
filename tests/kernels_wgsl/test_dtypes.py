"""WGSL binary and compare kernels on the integer dtypes they hold (8/16-bit packed in words, int32,
uint32) vs numpy, on odd sizes with broadcasting: exact, and the same rules as the wasm kernels."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wgsl import build, gap
from nnjit.compiler.wgpu_native import run_kernel

from tests.kernels.test_dtypes import SIZES, int_div, values

pytest.importorskip("wgpu")
DTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32"]


def run(family, params, inputs, out_shape, out_dtype):
    assert gap(family, params) is None
    text, dispatch, _ = build(family, params)
    return run_kernel(text, dispatch, inputs, [(tuple(out_shape), out_dtype)])[0]


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "min", "pow"])
@pytest.mark.parametrize("n", SIZES)
def test_binary_int_dtypes(dt, op, n):
    rng = np.random.default_rng(n * 31 + len(dt))
    a = values(dt, (3, n), rng, small=op == "pow")
    b = values(dt, (n,), rng, small=op == "pow")
    if op == "pow":
        b = np.abs(b.astype(np.int64)).astype(dt) % 5
    y = run("binary", {"op": op, "shape": [3, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": dt},
            [a, b], (3, n), dt)
    with np.errstate(all="ignore"):
        if op == "div":
            want = int_div(a, np.broadcast_to(b, a.shape))
        else:
            want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
                    "pow": np.power}[op](a, b).astype(dt)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dt", DTS + ["bool", "uint64"])
@pytest.mark.parametrize("op", ["eq", "lt", "gt"])
@pytest.mark.parametrize("n", SIZES)
def test_compare_int_dtypes(dt, op, n):
    rng = np.random.default_rng(n + len(dt))
    a, b = values(dt, (5, n), rng, small=dt != "uint64"), values(dt, (n,), rng, small=dt != "uint64")
    if dt == "uint64":  # equal high words, so the low words decide, for some pairs
        a[0] = b + np.uint64(1)
        a[1] = b
    y = run("compare", {"op": op, "shape": [5, n], "a_strides": [n, 1], "b_strides": [0, 1], "dtype": dt},
            [a, b], (5, n), np.bool_)
    np.testing.assert_array_equal(y, {"eq": np.equal, "lt": np.less, "gt": np.greater}[op](a, b))


def test_gap_names_what_wgsl_lacks():
    assert "float64" in gap("binary", {"dtype": "float64"})
    assert "uint64" in gap("binary", {"dtype": "uint64"})
    assert "16-bit" in gap("copy", {"elem_bytes": 2})
    assert gap("binary", {"dtype": "int8"}) is None and gap("copy", {"elem_bytes": 1}) is None
