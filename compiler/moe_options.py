"""Run-time MoE options (docs/moe.md): `{residentExperts | budgetBytes, policy, plan}` checked against a
bundle's MoE layers, each layer's committee, and the compacted memory layout that keeps only the
committee's slots in wasm memory."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

POLICIES = ("swap", "substitute", "skip")
ALIGN = 256  # the bundle's weight alignment (plan.ALIGN): compaction keeps every offset on it


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class Layer:
    """One moe step of the bundle: its expert store (all E experts, kept outside wasm memory) and
    the committee resident in its R slots."""
    step: dict
    E: int
    k: int
    H: int
    F: int
    act: str
    slot_bytes: int
    store_tid: int
    table_tid: int
    store: np.ndarray                      # float32 [E, slot_bytes / 4]
    committee: list[int] = field(default_factory=list)
    similar: list[list[int]] | None = None  # per expert, the others from most to least similar
    gated: bool = False

    @property
    def node(self) -> str:
        return self.step["node"]


def moe_layers(manifest: dict, weights: bytes) -> list[Layer]:
    kernels = {k["id"]: k for k in manifest["kernels"]}
    tensors = {t["id"]: t for t in manifest["tensors"]}
    out = []
    for s in manifest["steps"]:
        if s["family"] != "moe":
            continue
        c = kernels[s["kernel"]]["config"]
        st = tensors[s["args"][4]]
        raw = np.frombuffer(weights, np.uint8, count=st["bytes"], offset=st["offset"])
        store = raw.view(np.float32).reshape(c["E"], c["slot_bytes"] // 4).copy()
        out.append(Layer(s, c["E"], c["k"], c["H"], c["F"], c["act"], c["slot_bytes"], s["args"][4], s["args"][3],
                         store, gated=bool(c.get("gated", False))))
    return out


def resident_count(layers: list[Layer], options: dict) -> int:
    """R, the experts resident per layer: residentExperts, or what budgetBytes holds across all layers."""
    E = min(layer.E for layer in layers)
    per_expert = sum(layer.slot_bytes for layer in layers)
    if "residentExperts" in options and "budgetBytes" in options:
        raise InputError("moe options: give residentExperts or budgetBytes, not both")
    if "budgetBytes" in options:
        b = options["budgetBytes"]
        if not isinstance(b, int) or b < per_expert:
            raise InputError(f"moe.budgetBytes: expected at least one expert per layer ({per_expert} bytes over "
                             f"{len(layers)} MoE layer(s)), got {b!r}")
        return min(E, b // per_expert)
    r = options.get("residentExperts", E)
    if not isinstance(r, int) or not 1 <= r <= E:
        raise InputError(f"moe.residentExperts: expected 1..{E} (the experts per layer), got {r!r}")
    return r


def load_plan(plan) -> dict | None:
    if plan is None or isinstance(plan, dict):
        return plan
    try:
        return json.loads(Path(plan).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"moe.plan: cannot read {str(plan)!r} as a plan JSON ({e})") from None


def apply_plan(layers: list[Layer], plan: dict | None, R: int) -> None:
    """Each layer's committee: the plan's R most used experts, else experts 0..R-1; its substitution
    ranking: the plan's (measured on the tokens routed to each expert), else by weight distance."""
    from .moe_plan import weight_ranking
    by_node = {lay["node"]: lay for lay in (plan or {}).get("layers", [])}
    for layer in layers:
        entry = by_node.get(layer.node)
        if plan is not None and entry is None:
            raise InputError(f"moe.plan: no entry for MoE layer {layer.node!r}; the plan has {sorted(by_node)}")
        if entry is None:
            layer.committee, layer.similar = list(range(R)), weight_ranking(layer.store)
            continue
        ranking = entry.get("ranking")
        if not isinstance(ranking, list) or sorted(ranking) != list(range(layer.E)):
            bad = sorted(set(ranking or []) - set(range(layer.E)))
            raise InputError(f"moe.plan: layer {layer.node!r} ranking: expected a permutation of experts "
                             f"0..{layer.E - 1}, got {ranking!r}" + (f" (no experts {bad})" if bad else ""))
        similar = entry.get("similar")
        if (not isinstance(similar, list) or len(similar) != layer.E
                or any(sorted(row + [e]) != list(range(layer.E)) for e, row in enumerate(similar))):
            raise InputError(f"moe.plan: layer {layer.node!r} similar: expected for each of {layer.E} experts "
                             "the other experts' ids")
        layer.committee, layer.similar = list(ranking[:R]), similar


def compact(manifest: dict, weights: bytes, layers: list[Layer], R: int) -> tuple[dict, bytes]:
    """(manifest, weights image) with each store cut to its first R slots: weight offsets after a cut
    move down, the arena follows the shorter weights, memory.total_bytes shrinks with them."""
    tensors = {t["id"]: t for t in manifest["tensors"]}
    cuts = []
    for layer in layers:
        off = tensors[layer.store_tid]["offset"]
        cuts.append((off + _align(R * layer.slot_bytes), off + _align(layer.E * layer.slot_bytes)))
    cuts = sorted(set(c for c in cuts if c[1] > c[0]))
    image, prev = bytearray(), 0
    for a, b in cuts:
        image += weights[prev:a]
        prev = b
    image += weights[prev:]

    def moved(off: int) -> int:
        return off - sum(b - a for a, b in cuts if b <= off)

    m = copy.deepcopy(manifest)
    for t in m["tensors"]:
        if t["storage"] == "weight":
            t["offset"] = moved(t["offset"])
    for layer in layers:
        t = m["tensors"][layer.store_tid]
        t["shape"], t["bytes"] = [R, layer.slot_bytes // 4], R * layer.slot_bytes
    mem = m["memory"]
    mem["arena_base"] = mem["weights_base"] + _align(len(image))
    mem["total_bytes"] = mem["arena_base"] + mem["arena_bytes"] + 64
    m["weights"] = {**m["weights"], "bytes": len(image)}
    return m, bytes(image)
