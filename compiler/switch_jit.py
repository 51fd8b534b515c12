"""Pick LoRA-Switch's decode strategy on the device (docs/lora_switch.md), for the native runners
(NativeSession on wasmtime, GPUSession on wgpu-py); web_runtime/lora_switch.js does the same in the page.

A switch bundle carries two one-token plans over the same caches: 'decode' (merge when the router's set
changed, then plain gemms) and 'decode_unfused' (each adapter's (x·A)·B per layer). With a change rate f
(share of tokens whose set differs from the last merged one) a switch token costs about
skip + f·(merge − skip), an unfused one `unfused`, so switching wins while f < f* = (unfused − skip) /
(merge − skip). Which side of f* a model falls on depends on the device (merging reads and writes every
adapted weight; the unfused plan adds small gemms and gathers per layer), hence a measurement.

Timing runs use position −1: kvwrite skips it and attention answers zeros, so the KV caches are untouched;
the merged weights and their gate always describe the set they hold, so any interleaving of the two
plans stays exact.
"""
from __future__ import annotations

import time

import numpy as np


def gate_words(session) -> list[int]:
    """[merges run, valid, ids...] of a switch bundle's gate, read from the session's arena."""
    t = next(t for t in session.manifest["tensors"] if t["name"].startswith("lora_switch.gate"))
    spec = {"name": "gate", "tensor": t["id"], "dtype": "int32", "shape": t["shape"]}
    if hasattr(session, "mem"):  # NativeSession: wasm linear memory
        return session._read(spec).tolist()
    return session._read_outputs([spec])["gate"].tolist()


def _run(session, dec: dict, plan: str, token: int) -> None:
    session.run({dec["token_input"]: np.array([[token]], np.int64),
                 dec["position_input"]: np.array([[-1]], np.int64)}, plan=plan)


def _median_ms(f, reps: int) -> float:
    f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(1000 * (time.perf_counter() - t0))
    return float(np.median(t))


def _changing_pair(session, dec: dict, tries: int = 256) -> tuple[int, int]:
    """Two token ids the router gives different sets (each run of the pair merges), from ids spread
    over the vocabulary."""
    ids = [(t * 7919) % dec["vocab"] for t in range(tries)]
    _run(session, dec, "decode", ids[0])
    for t in ids[1:]:
        before = gate_words(session)[0]
        _run(session, dec, "decode", t)
        if gate_words(session)[0] != before:
            return ids[0], t
    raise ValueError(f"the router gives {tries} token ids one set: no merge to time")


def time_strategies(session, reps: int = 9) -> dict:
    """ms per decode run: `merge` (the switch plan, set changed every run), `skip` (set unchanged),
    `unfused`, and the crossover change rate f*."""
    dec = session.manifest["decoder"]
    a, b = _changing_pair(session, dec)
    toggle = [a]

    def alternate(plan):
        def f():
            toggle[0] = b if toggle[0] == a else a
            _run(session, dec, plan, toggle[0])
        return f

    merge = _median_ms(alternate("decode"), reps)
    skip = _median_ms(lambda: _run(session, dec, "decode", toggle[0]), reps)
    unfused = _median_ms(alternate("decode_unfused"), reps)
    fstar = (unfused - skip) / (merge - skip) if merge > skip else float("inf")
    return {"merge_ms": merge, "skip_ms": skip, "unfused_ms": unfused, "crossover_f": fstar}


def choose(times: dict, change_rate: float = 1.0) -> str:
    """'decode' (switch) or 'decode_unfused' for an expected change rate; 1.0 assumes every token merges."""
    return "decode" if change_rate <= times["crossover_f"] else "decode_unfused"


def pick(decoder, change_rate: float = 1.0, reps: int = 9) -> dict:
    """Time both strategies on `decoder`'s session and set decoder.decode_plan to the faster one."""
    if "decode_unfused" not in decoder.s.plans:
        return {"strategy": "decode"}
    times = time_strategies(decoder.s, reps)
    decoder.decode_plan = choose(times, change_rate)
    return {**times, "strategy": decoder.decode_plan}
