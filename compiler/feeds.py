"""Check run-time inputs against a bundle's manifest inputs — one rule for every Python runner
(wasmtime, wgpu, the browser driver), matching the web runtime's InputError messages."""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .ir import NP_DTYPES


def check_feeds(specs: list[dict], feeds, convert_ints: bool = False) -> dict[str, np.ndarray]:
    """Contiguous arrays by input name, or InputError naming the input, the expected and the got.
    `convert_ints` accepts another integer width when the values fit (as the web runtime does)."""
    if not isinstance(feeds, dict):
        raise InputError(f"feeds: expected a dict of input name → array, got {type(feeds).__name__}")
    expected = {spec["name"]: spec for spec in specs}
    for name in feeds:
        if name not in expected:
            raise InputError(f"unknown input {name!r}; the model's inputs are {sorted(expected)}")
    out = {}
    for name, spec in expected.items():
        if name not in feeds:
            raise InputError(f"missing input {name!r} ({spec['dtype']} {list(spec['shape'])})")
        try:
            arr = np.asarray(feeds[name])
        except Exception as e:  # noqa: BLE001 - anything numpy cannot turn into an array is bad input
            raise InputError(f"input {name!r}: not an array ({e})") from None
        if list(arr.shape) != list(spec["shape"]):
            raise InputError(f"input {name!r}: expected shape {list(spec['shape'])}, got {list(arr.shape)}")
        want = np.dtype(NP_DTYPES[spec["dtype"]])
        if arr.dtype != want:
            both_int = np.issubdtype(arr.dtype, np.integer) and np.issubdtype(want, np.integer)
            if not (convert_ints and both_int and np.array_equal(arr.astype(want), arr)):
                raise InputError(f"input {name!r}: expected dtype {spec['dtype']}, got {arr.dtype}")
            arr = arr.astype(want)
        out[name] = np.ascontiguousarray(arr).reshape(arr.shape)  # ascontiguousarray makes a 0-d array 1-d
    return out
