"""Run generated WGSL kernels natively through wgpu-py (Vulkan; lavapipe on a CPU-only machine):
the browser-free path for WebGPU kernel tests and the "native WebGPU" baseline.

Buffers follow the runtime's contract (docs/kernels_wgsl.md): binding i of group 0 is kernel argument
i; here each argument gets its own buffer padded with NaN guard words on both sides, so a kernel
that writes outside its output is caught."""
from __future__ import annotations

import functools
import os

import numpy as np

GUARD_WORDS = 64
_NAN_WORD = 0xFFFFFFFF


@functools.lru_cache(maxsize=1)
def device():
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    import wgpu
    adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
    if adapter is None:
        raise RuntimeError("no WebGPU adapter (wgpu found no Vulkan/GL device)")
    limits = {k: adapter.limits[k] for k in ("max-storage-buffer-binding-size", "max-compute-workgroup-storage-size",
                                             "max-compute-invocations-per-workgroup", "max-storage-buffers-per-shader-stage",
                                             "max-buffer-size")}
    features = [f for f in ("timestamp-query", "subgroup") if f in adapter.features]
    return adapter.request_device_sync(required_limits=limits, required_features=features)


def adapter_name() -> str:
    d = device()
    info = d.adapter.info
    return f"{info.get('device', '?')} ({info.get('backend_type', '?')})"


def _words(nbytes: int) -> int:
    return -(-max(nbytes, 4) // 4)


def run_kernel(wgsl: str, dispatch, inputs: list[np.ndarray], outputs: list[tuple[tuple, str]],
               entry: str = "main", runs: int = 1, out_init: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Bind inputs then outputs as bindings 0..n-1, dispatch `dispatch` workgroups `runs` times,
    check the guards, return the outputs. `out_init`: the outputs' starting contents (a kernel that
    updates its output in place), else guard words."""
    import wgpu
    dev = device()
    arrays = [np.ascontiguousarray(a) for a in inputs]
    sizes = [a.nbytes for a in arrays] + [int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize for s, d in outputs]
    starts = arrays + [np.ascontiguousarray(a) for a in out_init or []]
    bufs, datas = [], []
    for k, n in enumerate(sizes):
        words = np.full(_words(n) + 2 * GUARD_WORDS, _NAN_WORD, np.uint32)
        raw = words.view(np.uint8)
        if k < len(starts):
            raw[GUARD_WORDS * 4:GUARD_WORDS * 4 + n] = starts[k].view(np.uint8).reshape(-1)
        datas.append(words)
        bufs.append(dev.create_buffer_with_data(data=words, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC))
    module = dev.create_shader_module(code=wgsl)
    pipeline = dev.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": entry})
    entries = [{"binding": k, "resource": {"buffer": b, "offset": GUARD_WORDS * 4, "size": _words(n) * 4}}
               for k, (b, n) in enumerate(zip(bufs, sizes))]
    bind = dev.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)
    enc = dev.create_command_encoder()
    for _ in range(runs):
        p = enc.begin_compute_pass()
        p.set_pipeline(pipeline)
        p.set_bind_group(0, bind)
        p.dispatch_workgroups(*[int(d) for d in (list(dispatch) + [1, 1])[:3]])
        p.end()
    dev.queue.submit([enc.finish()])
    outs = []
    for k, (b, n) in enumerate(zip(bufs, sizes)):
        got = np.frombuffer(dev.queue.read_buffer(b), np.uint32)
        lo, hi = GUARD_WORDS, GUARD_WORDS + _words(n)
        # Inputs must be untouched; outputs may change only inside their own words.
        if k < len(arrays):
            if not np.array_equal(got, datas[k]):
                raise AssertionError(f"kernel wrote into input binding {k}")
            continue
        if not (np.all(got[:lo] == _NAN_WORD) and np.all(got[hi:] == _NAN_WORD)):
            raise AssertionError(f"kernel wrote outside output binding {k}")
        shape, dtype = outputs[k - len(arrays)]
        outs.append(got[lo:hi].view(np.uint8)[:n].view(np.dtype(dtype)).reshape(shape).copy())
    return outs
