"""weights.bin encodings (docs/bundle.md): `f32` (the memory image itself) or `f16` (float32 weights
stored as IEEE half floats, everything else byte for byte).

An f16 bundle's manifest keeps weights.bytes = the size of the memory image, so every tensor range
means what it always meant; weights.encoding = "f16", weights.file_bytes = the file's size, and
weights.segments = [[offset, bytes, "f16" | "raw"], ...] tile the memory image in order. Runtimes
expand the file into the memory image once at load (web_runtime/bundle.js does the same): the
download and the disk halve, kernels still read and accumulate float32.
"""
from __future__ import annotations

import numpy as np

from .errors import BundleError

F16_MAX = 65504.0
MIN_F16_BYTES = 4096  # small constants (scales, epsilons, shapes) keep their exact float32 bits


def f16_eligible(arr: np.ndarray, dtype: str) -> bool:
    """Float32 weights big enough to matter and inside half's range (others stay float32)."""
    if dtype != "float32" or arr.size * 4 < MIN_F16_BYTES:
        return False
    a = np.asarray(arr, np.float32)
    return bool(np.isfinite(a).all() and np.abs(a).max(initial=0.0) <= F16_MAX)


def encode(image: bytes, f16_ranges: list[tuple[int, int]]) -> tuple[bytes, list[list]]:
    """(file bytes, segments) for a memory image whose [offset, offset + bytes) ranges hold float32 to halve."""
    segs: list[list] = []
    pos = 0
    for off, n in sorted(f16_ranges):
        if off > pos:
            segs.append([pos, off - pos, "raw"])
        segs.append([off, n, "f16"])
        pos = off + n
    if pos < len(image):
        segs.append([pos, len(image) - pos, "raw"])
    merged: list[list] = []
    for s in segs:
        if merged and merged[-1][2] == s[2] and merged[-1][0] + merged[-1][1] == s[0]:
            merged[-1][1] += s[1]
        else:
            merged.append(s)
    view = memoryview(image)
    parts = [np.frombuffer(view[o:o + n], np.float32).astype(np.float16).tobytes() if k == "f16" else bytes(view[o:o + n])
             for o, n, k in merged]
    return b"".join(parts), merged


def check(spec: dict) -> None:
    """Structure of an encoded weights entry; BundleError naming the field."""
    enc = spec.get("encoding", "f32")
    if enc == "f32":
        return
    if enc != "f16":
        raise BundleError(f"manifest.json: weights.encoding: expected 'f32' or 'f16', got {enc!r}")
    segs, total, pos, file_bytes = spec.get("segments"), spec.get("bytes"), 0, 0
    if not isinstance(segs, list):
        raise BundleError("manifest.json: weights.segments: expected a list of [offset, bytes, kind]")
    for k, s in enumerate(segs):
        ok = (isinstance(s, list) and len(s) == 3 and all(isinstance(v, int) and not isinstance(v, bool) for v in s[:2])
              and s[0] == pos and s[1] > 0 and s[2] in ("f16", "raw") and (s[2] == "raw" or s[1] % 4 == 0 == s[0] % 4))
        if not ok:
            raise BundleError(f"manifest.json: weights.segments[{k}]: expected [{pos}, bytes > 0 (a multiple of 4 for "
                              f"f16), 'f16' | 'raw'], got {s!r}")
        pos += s[1]
        file_bytes += s[1] // 2 if s[2] == "f16" else s[1]
    if pos != total:
        raise BundleError(f"manifest.json: weights.segments cover {pos} bytes, expected weights.bytes {total}")
    if spec.get("file_bytes") != file_bytes:
        raise BundleError(f"manifest.json: weights.file_bytes: expected {file_bytes} (from the segments), "
                          f"got {spec.get('file_bytes')!r}")


def decode(data: bytes, spec: dict) -> bytes:
    """The memory image from weights.bin's bytes (checked against weights.file_bytes / bytes)."""
    if spec.get("encoding", "f32") == "f32":
        return data
    if len(data) != spec["file_bytes"]:
        raise BundleError(f"{spec['file']}: manifest.json weights.file_bytes expects {spec['file_bytes']} bytes, "
                          f"the file has {len(data)}")
    out = bytearray(spec["bytes"])
    at = 0
    for off, n, kind in spec["segments"]:
        if kind == "f16":
            out[off:off + n] = np.frombuffer(data, np.float16, n // 4, at).astype(np.float32).tobytes()
            at += n // 2
        else:
            out[off:off + n] = data[at:at + n]
            at += n
    return bytes(out)
