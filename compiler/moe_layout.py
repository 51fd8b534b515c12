"""The expert slot layout the moe kernel reads (kernels_wasm/moe.wat.j2), its packing, and the numpy
reference of the experts computation: one place shared by the pass, the runtime and the tests."""
from __future__ import annotations

import numpy as np

from .errors import ShapeError

ACTS = ("relu", "gelu", "silu", "sigmoid", "tanh", "none")


def _pad16(n: int) -> int:
    return -(-n // 16) * 16


def layout(H: int, F: int, gated: bool = False) -> dict:
    """Byte offsets in one slot: W1 [H, F1], b1 [F1], W2 [F, H], b2 [H], each part padded to 16 floats
    so that a 4-lane load at the end of any row stays inside the slot. F1 = 2F for gated (SwiGLU)
    experts: gate columns, then up columns."""
    F1 = 2 * F if gated else F
    o_b1 = 4 * _pad16(H * F1)
    o_w2 = o_b1 + 4 * _pad16(F1)
    o_b2 = o_w2 + 4 * _pad16(F * H)
    slot_bytes = o_b2 + 4 * _pad16(H)
    return {"o_b1": o_b1, "o_w2": o_w2, "o_b2": o_b2, "slot_bytes": slot_bytes}


def scratch_floats(F: int, gated: bool = False) -> int:
    """The kernel's scratch: the up projection's F1 outputs (and, gated, act(gate)·up after them)."""
    return _pad16(2 * F) + _pad16(F) if gated else -(-F // 4) * 4


def pack(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """w1 [E, H, F1], b1 [E, F1], w2 [E, F, H], b2 [E, H] → float32 [E, slot_bytes / 4]; F1 = 2F: gated."""
    E, H, F1 = w1.shape
    F = w2.shape[1]
    lay = layout(H, F, F1 == 2 * F)
    out = np.zeros((E, lay["slot_bytes"] // 4), np.float32)
    out[:, :H * F1] = w1.reshape(E, -1)
    out[:, lay["o_b1"] // 4:lay["o_b1"] // 4 + F1] = b1
    out[:, lay["o_w2"] // 4:lay["o_w2"] // 4 + F * H] = w2.reshape(E, -1)
    out[:, lay["o_b2"] // 4:lay["o_b2"] // 4 + H] = b2
    return out


def unpack(slot: np.ndarray, H: int, F: int, gated: bool = False):
    """(w1 [H, F1], b1 [F1], w2 [F, H], b2 [H]) of one packed slot."""
    lay = layout(H, F, gated)
    F1 = 2 * F if gated else F
    s = np.asarray(slot, np.float32).reshape(-1)
    return (s[:H * F1].reshape(H, F1), s[lay["o_b1"] // 4:lay["o_b1"] // 4 + F1],
            s[lay["o_w2"] // 4:lay["o_w2"] // 4 + F * H].reshape(F, H), s[lay["o_b2"] // 4:lay["o_b2"] // 4 + H])


def activate(act: str, v: np.ndarray) -> np.ndarray:
    if act == "relu":
        return np.maximum(v, 0)
    if act == "gelu":
        from math import erf, sqrt
        return (0.5 * v * (1 + np.vectorize(lambda a: erf(a / sqrt(2)))(v))).astype(v.dtype)
    if act == "silu":
        return v / (1 + np.exp(-v))
    if act == "sigmoid":
        return 1 / (1 + np.exp(-v))
    if act == "tanh":
        return np.tanh(v)
    return v


def hidden(u: np.ndarray, F: int, act: str, gated: bool) -> np.ndarray:
    """The expert's hidden vector from the up projection u [n, F1]."""
    return activate(act, u[:, :F]) * u[:, F:] if gated else activate(act, u)


def expert(slot: np.ndarray, x: np.ndarray, H: int, F: int, act: str, gated: bool = False) -> np.ndarray:
    """One expert's FFN on rows x [n, H], in float64."""
    w1, b1, w2, b2 = (a.astype(np.float64) for a in unpack(slot, H, F, gated))
    return hidden(x.astype(np.float64) @ w1 + b1, F, act, gated) @ w2 + b2


def reference(x, ids, gates, table, store, H: int, F: int, act: str, gated: bool = False) -> np.ndarray:
    """What the kernel computes (float64): y[t] = Σ_kept gate·mass/kept_mass · expert(slot)(x[t])."""
    x = np.asarray(x, np.float64).reshape(-1, H)
    T = x.shape[0]
    ids = np.asarray(ids).reshape(T, -1)
    gates = np.asarray(gates, np.float64).reshape(T, -1)
    E = len(table)
    y = np.zeros((T, H))
    for t in range(T):
        slots = [int(table[e]) if 0 <= e < E else -1 for e in ids[t]]
        kept = sum(g for g, s in zip(gates[t], slots) if s >= 0)
        scale = gates[t].sum() / kept if kept > 0 else 0.0
        for g, s in zip(gates[t], slots):
            if s >= 0:
                y[t] += g * scale * expert(store[s], x[t:t + 1], H, F, act, gated)[0]
    return y


def check_k(k: int, E: int, where: str) -> None:
    if not 1 <= k <= E:
        raise ShapeError(f"{where}: top-k of {k} experts out of {E}: expected 1 <= k <= {E} (the number of experts)")
