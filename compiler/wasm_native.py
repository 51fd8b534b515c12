"""Run generated wasm kernels natively through wasmtime: the browser-free path for tests.

Memory follows the runtime's contract (docs/kernels.md): every buffer 64-byte aligned, and here every
buffer is surrounded by guard bytes filled with a NaN pattern, so a kernel that writes outside its
output or reads garbage it should not use is caught by the tests.
"""
from __future__ import annotations

import ctypes

import numpy as np
import wasmtime

GUARD = 64
# Bytes [0, 4): the i32 a split kernel call's parts take tasks from (docs/space.md, run_part).
SPLIT_COUNTER_BYTES = 4
_GUARD_BYTE = 0xFF  # 0xFFFFFFFF is a NaN as f32: reading it into a result poisons that result


def engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.wasm_simd = True
    cfg.wasm_relaxed_simd = True
    cfg.wasm_threads = True
    return wasmtime.Engine(cfg)


_ENGINE = None


def _engine() -> wasmtime.Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = engine()
    return _ENGINE


class Memory:
    """One linear memory plus a numpy view of its bytes."""

    def __init__(self, nbytes: int):
        self.store = wasmtime.Store(_engine())
        pages = max(1, -(-nbytes // 65536))
        self.mem = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, None)))

    def bytes(self) -> np.ndarray:
        n = self.mem.data_len(self.store)
        ptr = ctypes.cast(self.mem.data_ptr(self.store), ctypes.POINTER(ctypes.c_uint8))
        return np.ctypeslib.as_array(ptr, shape=(n,))

    def view(self, addr: int, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        return self.bytes()[addr:addr + count * dtype.itemsize].view(dtype).reshape(shape)

    def instantiate_module(self, wasm: bytes) -> wasmtime.Instance:
        module = wasmtime.Module(self.store.engine, wasm)
        return wasmtime.Instance(self.store, module, [self.mem])

    def instantiate(self, wasm: bytes):
        return self.instantiate_module(wasm).exports(self.store)["run"]

    def call(self, fn, *ptrs: int) -> None:
        fn(self.store, *[int(p) for p in ptrs])


def run_kernel(wasm: bytes, inputs: list[np.ndarray], outputs: list[tuple[tuple, str]],
               scratch_bytes: list[int] = (), out_init: list[np.ndarray] | None = None,
               parts: int | None = None) -> list[np.ndarray]:
    """Lay out inputs, outputs and scratch buffers with guards, call `run(in..., out..., scratch...)`,
    check the guards and return copies of the outputs. `out_init`: the outputs' starting contents
    (a kernel that updates its output in place), else guard bytes. `parts`: call
    `run_part(..., t, parts)` for t = 0..parts-1 in sequence instead of `run`."""
    arrays = [np.ascontiguousarray(a) for a in inputs]
    sizes = [a.nbytes for a in arrays]
    sizes += [int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize for s, d in outputs]
    sizes += list(scratch_bytes)
    addrs, cur = [], GUARD
    for n in sizes:
        addrs.append(cur)
        cur += -(-max(n, 1) // 64) * 64 + GUARD
    mem = Memory(cur + GUARD)
    raw = mem.bytes()
    raw[:] = _GUARD_BYTE
    for a, addr in zip(arrays + [np.ascontiguousarray(o) for o in out_init or []], addrs):
        raw[addr:addr + a.nbytes] = a.view(np.uint8).reshape(-1)
    exports = mem.instantiate_module(wasm).exports(mem.store)
    if parts is not None:
        raw[:SPLIT_COUNTER_BYTES] = 0  # the task counter split calls deal work out by (gemm's row tiles, softmax's slices)
    before = raw.copy()
    if parts is None:
        mem.call(exports["run"], *addrs)
    else:
        for t in range(parts):
            mem.call(exports["run_part"], *addrs, t, parts)
    after = mem.bytes()
    # Only output and scratch regions (and a split call's task counter) may change.
    allowed = np.zeros(len(after), dtype=bool)
    if parts is not None:
        allowed[:SPLIT_COUNTER_BYTES] = True
    for addr, n in zip(addrs[len(arrays):], sizes[len(arrays):]):
        allowed[addr:addr + n] = True
    changed = np.nonzero((after != before) & ~allowed)[0]
    if changed.size:
        raise AssertionError(f"kernel wrote outside its outputs at byte offsets {changed[:8].tolist()}")
    outs = []
    for (shape, dtype), addr in zip(outputs, addrs[len(arrays):]):
        outs.append(mem.view(addr, tuple(shape), dtype).copy())
    return outs
