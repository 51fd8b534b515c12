"""The offline committee planner (`nnjit moe-plan`, docs/moe.md): run a bundle natively on calibration
data, count how often the router picks each expert, measure how well each expert stands in for
another on the tokens routed to it, and write the plan the runtime's `moe.plan` option reads."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import moe_layout
from .errors import InputError

SAMPLE_ROWS = 256  # tokens per expert for the similarity measure: enough to rank 8-64 experts


def weight_ranking(store: np.ndarray) -> list[list[int]]:
    """Without calibration data: for each expert, the others by relative squared distance of their
    packed weights (web_runtime/moe.js computes the same ranking)."""
    s = store.astype(np.float64)
    out = []
    for e in range(len(s)):
        norm = max(float((s[e] ** 2).sum()), 1e-30)
        d = {c: float(((s[c] - s[e]) ** 2).sum()) / norm for c in range(len(s)) if c != e}
        out.append(sorted(d, key=lambda c: (d[c], c)))
    return out


def similarity(layer, rows_by_expert: list[np.ndarray]) -> list[list[int]]:
    """For each expert e, the other experts ordered by how closely their outputs match e's on the
    calibration tokens routed to e (relative squared error; all tokens for an expert never picked)."""
    everyone = np.concatenate([r for r in rows_by_expert if len(r)] or [np.zeros((1, layer.H))])
    ranks = []
    for e in range(layer.E):
        x = rows_by_expert[e] if len(rows_by_expert[e]) else everyone
        ref = moe_layout.expert(layer.store[e], x, layer.H, layer.F, layer.act, layer.gated)
        denom = max(float((ref ** 2).sum()), 1e-30)
        err = {c: float(((moe_layout.expert(layer.store[c], x, layer.H, layer.F, layer.act, layer.gated) - ref) ** 2).sum()) / denom
               for c in range(layer.E) if c != e}
        ranks.append(sorted(err, key=lambda c: (err[c], c)))
    return ranks


def _calib_batches(session, calib: dict[str, np.ndarray]) -> list[dict]:
    spec = session.manifest["inputs"]
    names = [s["name"] for s in spec]
    missing = [n for n in names if n not in calib]
    if missing:
        raise InputError(f"--calib: missing inputs {missing}; the bundle takes {names}")
    B = spec[0]["shape"][0]
    n = len(calib[names[0]])
    if n < B:
        raise InputError(f"--calib: {n} rows, fewer than the bundle's batch of {B}")
    return [{s["name"]: np.asarray(calib[s["name"]][i:i + B], dtype=s["dtype"]).reshape(s["shape"]) for s in spec}
            for i in range(0, n - B + 1, B)]


def plan(bundle_dir, calib: dict[str, np.ndarray], resident: int | None = None,
         budget_bytes: int | None = None) -> dict:
    from .native_runtime import NativeSession
    options = {"policy": "substitute"}
    session = NativeSession(bundle_dir, moe=options)  # every expert resident: observe the plain model
    rt = session.moe
    freq = {layer.node: np.zeros(layer.E) for layer in rt.layers}
    mass = {layer.node: np.zeros(layer.E) for layer in rt.layers}
    rows = {layer.node: [[] for _ in range(layer.E)] for layer in rt.layers}

    def observe(layer, x, ids, gates):
        for t in range(len(ids)):
            for e, gt in zip(ids[t], gates[t]):
                freq[layer.node][e] += 1
                mass[layer.node][e] += gt
                if len(rows[layer.node][e]) < SAMPLE_ROWS:
                    rows[layer.node][e].append(x[t])

    rt.observer = observe
    batches = _calib_batches(session, calib)
    for feeds in batches:
        session.run(feeds)
    R = None
    if resident is not None or budget_bytes is not None:
        from .moe_options import resident_count
        R = resident_count(rt.layers, {"residentExperts": resident} if resident is not None
                           else {"budgetBytes": budget_bytes})
    layers = []
    for layer in rt.layers:
        f = freq[layer.node]
        ranking = sorted(range(layer.E), key=lambda e: (-f[e], -mass[layer.node][e], e))
        sample = [np.asarray(r, np.float64).reshape(-1, layer.H) for r in rows[layer.node]]
        layers.append({"node": layer.node, "experts": layer.E, "k": layer.k, "expert_bytes": layer.slot_bytes,
                       "frequency": [int(v) for v in f], "gate_mass": [round(float(v), 6) for v in mass[layer.node]],
                       "ranking": ranking, "committee": ranking[:R] if R else None,
                       "similar": similarity(layer, sample)})
    return {"format": "nnjit-moe-plan", "version": 1, "bundle": str(bundle_dir),
            "calibration_batches": len(batches), "resident": R, "budget_bytes": budget_bytes, "layers": layers}


def write(plan_dict: dict, out) -> Path:
    out = Path(out)
    out.write_text(json.dumps(plan_dict, indent=1) + "\n")
    return out
