"""Model inputs for runs and benchmarks: seeded random ones from a manifest, or loaded from .npz.

The same arrays go to the browser and to onnxruntime, so `nnjit run --compare` compares like with like.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nnjit.compiler.errors import InputError
from nnjit.compiler.feeds import check_feeds
from nnjit.compiler.ir import NP_DTYPES



def random_inputs(manifest_inputs: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """float32 ~ N(0, 1); integers uniform in the entry's "int_range" [lo, hi) (default [0, 2)); bool 0/1.

    Inputs are drawn in manifest order from one generator, so a seed fixes every array.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for spec in manifest_inputs:
        name, dtype, shape = spec["name"], spec["dtype"], tuple(spec["shape"])
        if dtype == "float32":
            out[name] = rng.standard_normal(shape, dtype=np.float32)
        elif dtype in ("int64", "int32"):
            lo, hi = spec.get("int_range", (0, 2))
            out[name] = rng.integers(lo, hi, size=shape, dtype=NP_DTYPES[dtype])
        elif dtype == "bool":
            out[name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            raise InputError(f"input {name!r}: unknown dtype {dtype!r}")
    return out


def load_inputs(path_npz: str | Path) -> dict[str, np.ndarray]:
    """Arrays of an .npz file by name (no pickles)."""
    path = Path(path_npz)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: not a readable .npz file ({e})") from None


def check_inputs(manifest_inputs: list[dict], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inputs as the bundle wants them, or InputError naming the input, the expected and what it got.
    Integer inputs of another integer width are converted (as the web runtime does for int64); any
    other dtype difference is an error rather than a silent cast."""
    return check_feeds(manifest_inputs, inputs, convert_ints=True)
