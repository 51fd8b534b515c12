"""Python side of the gemm kernel family: weight packing and schedule candidates.

Layout produced by `pack_b` (docs/kernels.md, gemm): B[K, N] is cut into ceil(N / nr) column panels;
panel j holds B[:, j·nr:(j+1)·nr] as K consecutive rows of nr floats, the last panel zero padded.
The micro-kernel then reads one panel row (nr floats, contiguous) per k step.
"""
from __future__ import annotations

import numpy as np

# V8 on x86-64 allocates 15 XMM registers (xmm15 is its scratch) and schedules all loads of a loop
# body before the multiply-adds, so in the K loop the accumulators, the nr/4 B vectors and all mr A
# splats are live together. A schedule that needs more than this spills accumulators every k step
# (measured: 6x8 runs at half the speed of 4x8).
_VREGS = 15

# Preference orders, measured in V8 (node, x86-64 Zen 4) with bench/kernel_gemm_native.py --node.
# The first entry of each list fits the register rule with and without relaxed SIMD (Safari has no
# relaxed SIMD), the rest are ordered by their relaxed speed.
# Large M: 4x8 and 2x16 reach ~43 GFLOP/s plain and ~52 relaxed at 512^3; 3x12 matches them only
# with relaxed_madd (its plain variant needs a 16th register).
_GENERAL = [(4, 8), (2, 16), (3, 12), (3, 8), (7, 4), (6, 4), (1, 24), (2, 12)]
# M <= 3 (batch-1 fully connected layers, decoding): rows beyond M would only repeat the same code,
# so every tile is at most M rows and the tiles get wider instead.
_SKINNY = {
    1: [(1, 24), (1, 28), (1, 16), (1, 20), (1, 12), (1, 8)],
    2: [(2, 16), (2, 12), (1, 24), (1, 28), (2, 8), (1, 16)],
    3: [(3, 8), (3, 12), (2, 16), (1, 24), (2, 12), (1, 28)],
}
SCHEDULES = sorted(set(_GENERAL).union(*_SKINNY.values()))


def vregs_needed(mr: int, nr: int, relaxed: bool = True) -> int:
    """v128 values live in the K loop: mr·nr/4 accumulators, nr/4 B vectors, mr A splats, and the
    product temporary of mul+add when relaxed_madd is not available."""
    return mr * (nr // 4) + nr // 4 + mr + (0 if relaxed else 1)


def valid_schedule(mr: int, nr: int) -> bool:
    return mr >= 1 and nr >= 4 and nr % 4 == 0 and vregs_needed(mr, nr) <= _VREGS


def pack_b(B: np.ndarray, nr: int) -> np.ndarray:
    """Pack a constant B[K, N] into zero-padded column panels: shape [ceil(N/nr), K, nr], float32."""
    B = np.asarray(B, dtype=np.float32)
    if B.ndim != 2:
        raise ValueError(f"pack_b expects a 2-D matrix, got shape {B.shape}")
    if nr < 4 or nr % 4:
        raise ValueError(f"nr must be a positive multiple of 4, got {nr}")
    K, N = B.shape
    panels = -(-N // nr)
    padded = np.zeros((K, panels * nr), dtype=np.float32)
    padded[:, :N] = B
    return np.ascontiguousarray(padded.reshape(K, panels, nr).transpose(1, 0, 2))


def packed_size(K: int, N: int, nr: int) -> int:
    """Number of float32 elements `pack_b` returns for a [K, N] matrix."""
    return -(-N // nr) * K * nr


def gemm_candidates(M: int, N: int, K: int) -> list[dict]:
    """4–8 valid schedules {mr, nr} for an M×N×K gemm, the expected fastest first."""
    order = list(_SKINNY.get(M, _GENERAL))
    if N <= 8:
        # A narrow C wastes most of a wide tile: least column padding first, and among those a
        # default that fits the plain variant too (stable, so the measured order decides the rest).
        order.sort(key=lambda s: (-(-N // s[1]) * s[1] - N, vregs_needed(*s, relaxed=False) > _VREGS))
    return [{"mr": mr, "nr": nr} for mr, nr in order if valid_schedule(mr, nr)]
