"""cast kernel vs numpy astype for every pair of float32, int64, int32, bool."""
import numpy as np
import pytest

from nnjit.compiler.codegen.wasm import build
from nnjit.compiler.wasm_native import run_kernel

NP = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


def run_cast(x, dst):
    src = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64", np.dtype(np.int32): "int32",
           np.dtype(np.bool_): "bool"}[x.dtype]
    plain, relaxed = build("cast", dict(n=int(x.size), src=src, dst=dst))
    assert relaxed is None
    return run_kernel(plain, [x], [(x.shape, NP[dst])])[0]


def values(src, n, rng):
    if src == "float32":
        v = np.concatenate([rng.uniform(-1000, 1000, n), rng.uniform(-3, 3, n), [0.0, -0.0, 0.5, -0.5, 1e-30]])
    elif src == "bool":
        return rng.integers(0, 2, n).astype(np.bool_)
    elif src == "int64":
        v = np.concatenate([rng.integers(-1000, 1000, n), rng.integers(-2**62, 2**62, n),
                            [0, 1, -1, 2**31, -2**31 - 1, 2**40 + 7, 2**24 + 1]])
    else:
        v = np.concatenate([rng.integers(-1000, 1000, n), rng.integers(-2**31, 2**31 - 1, n), [0, 1, -1, 2**24 + 1]])
    return v[rng.permutation(v.size)][:n].astype(NP[src])


@pytest.mark.parametrize("n", [1, 3, 7, 37, 130])
@pytest.mark.parametrize("src", list(NP))
@pytest.mark.parametrize("dst", list(NP))
def test_cast(src, dst, n):
    rng = np.random.default_rng(n)
    x = values(src, n, rng)
    y = run_cast(x, dst)
    with np.errstate(invalid="ignore"):
        ref = (x != 0) if dst == "bool" else x.astype(NP[dst])
    np.testing.assert_array_equal(y, ref)
    if dst == "bool":
        assert set(np.unique(y.view(np.uint8))) <= {0, 1}


def test_float_specials():
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -0.0, 2.9, -2.9], np.float32)
    y32 = run_cast(x, "int32")
    y64 = run_cast(x, "int64")
    yb = run_cast(x, "bool")
    # saturating truncation; NaN -> 0
    np.testing.assert_array_equal(y32, [0, 2**31 - 1, -2**31, 2**31 - 1, -2**31, 2**31 - 1, 0, 2, -2])
    np.testing.assert_array_equal(y64, [0, 2**63 - 1, -2**63, 3000000000, -3000000000, 2**63 - 1, 0, 2, -2])
    np.testing.assert_array_equal(yb, [True, True, True, True, True, True, False, True, True])


def test_nonstandard_bool_bytes():
    x = np.array([0, 1, 2, 255, 0, 7, 1], np.uint8).view(np.bool_)
    np.testing.assert_array_equal(run_cast(x, "float32"), [0, 1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(run_cast(x, "bool").view(np.uint8), [0, 1, 1, 1, 0, 1, 1])
