"""Compile a decoder LM (docs/decoders.md) into one bundle with two shape-specialised plans sharing
weights and KV caches: `prefill` (a chunk of prefill_len prompt tokens) and `decode` (one token).

Both plans come from the same exported graph with its past length bound to 0: the KV-cache pass
(passes/kv_cache.py) turns the past/present interface into caches preallocated to max_context rows
that sit at fixed arena offsets, identical in both plans, so they persist across runs. Everything
else of the two plans shares the rest of the arena (they never run at once).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import bundle as bundle_mod
from .errors import NnjitError, UnsupportedOpError
from .ir import Node, Value
from .lower import lower
from .onnx_import import check_sizes, import_onnx, load_model
from .passes import kv_cache, kv_shield, lora_switch
from .pipeline import KernelTable, check_backends, check_weight_format, io_entries, optimize
from .plan import ALIGN, WeightPool, plan_memory

DEFAULT_MAX_CONTEXT = 1024
DEFAULT_PREFILL = 128
_MASKED = -1e4  # an additive mask entry at or below this hides its key (transformers uses finfo.min)


def is_decoder(model_path) -> bool:
    m = load_model(model_path)
    return any(i.name.startswith("past.") for i in m.graph.input)


def _symbols(model) -> tuple[str, str]:
    ins = {i.name: i for i in model.graph.input}
    try:
        seq = ins["input_ids"].type.tensor_type.shape.dim[1].dim_param
        past = next(i for n, i in ins.items() if n.startswith("past.")).type.tensor_type.shape.dim[2].dim_param
    except (KeyError, IndexError, StopIteration):
        seq = past = ""
    if not seq or not past:
        raise UnsupportedOpError("decoder: expected input_ids [1, seq] and past.*.key/value [1, kv_heads, past, "
                                 "head_dim] with named dynamic dims seq and past (docs/decoders.md)")
    return seq, past


def sidecar_paths(model_path) -> tuple[Path, Path]:
    """(tokenizer.json, decoder.json) a zoo decoder keeps beside its ONNX file."""
    p = Path(model_path)
    stem = p.name.split(".onnx")[0]
    return p.with_name(stem + ".tokenizer.json"), p.with_name(stem + ".decoder.json")


def sidecars(model_path) -> tuple[Path | None, dict]:
    """The sidecar tokenizer (when there is one) and the decoder metadata ({} when none)."""
    tok, meta = sidecar_paths(model_path)
    return (tok if tok.is_file() else None), (json.loads(meta.read_text()) if meta.is_file() else {})


def check_masks(source_model, sites: list, max_context: int) -> dict[int, int]:
    """Run the original graph in onnxruntime at the far end of the context and read each attention's
    mask: it must be causal (key j visible to position p iff j <= p), optionally a sliding window
    (p - W < j <= p). Returns the window per layer (0 = none). The fused kernel computes the mask from
    positions, so a mask it cannot reproduce is an error, never a silent difference."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(source_model)  # the caller's model stays as it was
    want = {s.mask: s for s in sites}
    for name, s in want.items():
        t = onnx.TensorProto.FLOAT if s.mask_kind == "add" else onnx.TensorProto.BOOL
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, t, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    S = 3
    windows: dict[int, int] = {}
    for P in sorted({0, max(max_context - S, 0)}):
        feeds = {"input_ids": np.zeros((1, S), np.int64), "position_ids": np.arange(P, P + S, dtype=np.int64)[None]}
        for i in sess.get_inputs():
            if i.name.startswith("past."):
                feeds[i.name] = np.zeros((1, i.shape[1], P, i.shape[3]), np.float32)
        got = dict(zip(list(want), sess.run(list(want), feeds)))
        for name, s in want.items():
            m = np.asarray(got[name])
            m = np.broadcast_to(m, m.shape[:-2] + (S, P + S)).reshape(-1, S, P + S)
            if not (m == m[:1]).all():
                raise UnsupportedOpError(f"attention at node {s.node!r}: its mask differs between heads; only "
                                         "causal (optionally sliding-window) masks are fused")
            m = m[0]
            if s.mask_kind == "add":
                if not np.all((m == 0) | (m <= _MASKED)):
                    raise UnsupportedOpError(f"attention at node {s.node!r}: additive mask has values other than 0 "
                                             f"and <= {_MASKED:g}; only causal masks are fused")
                vis = m == 0
            else:
                vis = m.astype(bool)
            for i in range(S):
                p = P + i
                js = np.nonzero(vis[i])[0]
                lo = int(js[0]) if js.size else -1
                ok = js.size and js[-1] == p and js.size == p - lo + 1
                w = p - lo + 1 if ok and lo > 0 else 0
                if not ok or (w and windows.get(s.layer, w) not in (w, 0)):
                    raise UnsupportedOpError(f"attention at node {s.node!r}: mask row for position {p} shows keys "
                                             f"{js.tolist()[:8]}{'...' if js.size > 8 else ''}; only causal "
                                             "(optionally sliding-window) masks are fused")
                if w:
                    windows[s.layer] = w
    return {s.layer: windows.get(s.layer, 0) for s in sites}


def _last_row_logits(g, logits: str) -> bool:
    """Only the last slot's logits are ever read (prefill chunks are right-aligned): slice the LM head's
    input to that row, which saves (S-1)/S of the largest matmul of a prefill."""
    n = g.producers().get(logits)
    if n is None or n.op != "MatMul" or len(g.values[n.inputs[0]].shape) != 3:
        return False
    a = n.inputs[0]
    S = g.values[a].shape[1]
    if S == 1:
        return False
    row = g.fresh(a + "/last_row")
    g.values[row] = Value(row, g.values[a].dtype, (g.values[a].shape[0], 1, g.values[a].shape[2]))
    consts = [g.add_const(f"{row}/{k}", np.array([v], np.int64)) for k, v in (("starts", S - 1), ("ends", S), ("axes", 1))]
    g.nodes.insert(g.nodes.index(n), Node("Slice", row, [a, *consts], [row]))
    n.inputs[0] = row
    v = g.values[logits]
    v.shape = (v.shape[0], 1, v.shape[2])
    return True


def _plan_graph(model_path, seq_sym: str, past_sym: str, S: int, max_context: int, source: str,
                shield_seed: int | None = None, switch: bool = True):
    g = import_onnx(model_path, {seq_sym: [S], past_sym: [0]})

    def rewrite(g):
        sites = kv_cache.rewrite(g, max_context)
        if shield_seed is not None:
            kv_shield.shield(g, sites, shield_seed)
        # Token-wise adapters merge per token only where a run holds one token (docs/lora_switch.md).
        return sites, lora_switch.rewrite(g, merge=switch and S == 1)

    stats = optimize(g, rewrite=rewrite)
    sites, stats["lora_switch"] = stats.pop("rewrite")
    stats["last_row_logits"] = _last_row_logits(g, "logits")
    check_sizes(g, source)
    return g, sites, stats


def compile_decoder(model_path, out_dir, max_context: int | None = None, prefill_len: int | None = None,
                    backends=("wasm", "webgpu"), tokenizer=None, meta: dict | None = None,
                    kv_shield_seed: int | None = None, weights_format: str = "f32") -> dict:
    """`kv_shield_seed`: apply KV-Shield (passes/kv_shield.py) with permutations drawn from this seed;
    the CLI draws it from the OS's secret source and never writes it anywhere."""
    t0 = time.perf_counter()
    backends = check_backends(backends)
    check_weight_format(weights_format)
    source = str(model_path)
    tok_side, meta_side = sidecars(model_path)
    meta = {**meta_side, **(meta or {})}
    tokenizer = Path(tokenizer) if tokenizer else tok_side
    limit = int(meta.get("max_positions") or DEFAULT_MAX_CONTEXT)
    T = int(max_context or min(DEFAULT_MAX_CONTEXT, limit))
    if not 1 <= T <= limit:
        raise NnjitError(f"{source}: --max-context {T}: expected 1..{limit} (the model's position limit)")
    Sp = int(prefill_len or min(DEFAULT_PREFILL, T))
    if not 1 <= Sp <= T:
        raise NnjitError(f"{source}: --prefill {Sp}: expected 1..{T} (the max context)")
    model = load_model(model_path)
    seq_sym, past_sym = _symbols(model)

    gp, sites_p, stats = _plan_graph(model_path, seq_sym, past_sym, Sp, T, source, kv_shield_seed)
    gd, sites_d, stats_d = _plan_graph(model_path, seq_sym, past_sym, 1, T, source, kv_shield_seed)
    windows = check_masks(model, sites_p, T)
    for g in (gp, gd):
        for n in g.nodes:
            if n.op == "CausalAttention":
                n.attrs["window"] = windows[int(n.inputs[2].split(".")[1])]

    # KV caches: the same names in both graphs, pinned at the start of the arena.
    reserved, off = {}, 0
    for n in gp.nodes:
        if n.op == "KvWrite":
            name = n.outputs[0]
            reserved[name] = off
            off += -(-gp.values[name].nbytes // ALIGN) * ALIGN
    state_bytes = off
    switch = stats_d.pop("lora_switch")
    stats.pop("lora_switch")
    # A switch bundle also carries the unfused one-token plan: which is faster depends on the device
    # and on how often the set changes, so the runtime picks (compiler/switch_jit.py).
    gu = _plan_graph(model_path, seq_sym, past_sym, 1, T, source, kv_shield_seed, switch=False)[0] if switch else None
    for n in gu.nodes if gu else ():
        if n.op == "CausalAttention":
            n.attrs["window"] = windows[int(n.inputs[2].split(".")[1])]
    stats["lora_switched"] = switch["segments"] if switch else 0
    reserved_p, reserved_d = dict(reserved), dict(reserved)
    if switch:
        # The merged weights persist across decode runs after the caches; prefill leaves their bytes alone.
        for name, o in [(switch["state"], 0), *switch["views"].items()]:
            gp.values[name] = gu.values[name] = gd.values[name]
            reserved_p[name] = reserved_d[name] = off + o
        off += -(-switch["bytes"] // ALIGN) * ALIGN
    if {n.outputs[0] for n in gd.nodes if n.op == "KvWrite"} != set(reserved):
        raise UnsupportedOpError(f"{source}: the prefill and decode graphs found different KV caches")

    Lp = lower(gp, source)
    Ld = lower(gd, source, Lp.pack_widths)
    pool = WeightPool()
    plan_p = plan_memory(gp, Lp, reserved_p, pool)
    plan_d = plan_memory(gd, Ld, reserved_d, pool)
    n_p = len(plan_p.tensors)
    for t in plan_d.tensors:
        t["id"] += n_p
    ids_d = {k: v + n_p for k, v in plan_d.ids.items()}
    extra = []  # (graph, lowering, plan, ids) of the unfused one-token plan
    if gu is not None:
        Lu = lower(gu, source, Lp.pack_widths)
        plan_u = plan_memory(gu, Lu, reserved_p, pool)
        for t in plan_u.tensors:
            t["id"] += n_p + len(plan_d.tensors)
        extra.append((gu, Lu, plan_u, {k: v + n_p + len(plan_d.tensors) for k, v in plan_u.ids.items()}))
    weights = bytes(pool.blob)
    arena_base = ALIGN + -(-len(weights) // ALIGN) * ALIGN
    arena_bytes = max([plan_p.arena_bytes, plan_d.arena_bytes] + [e[2].arena_bytes for e in extra])

    table = KernelTable()
    steps_p = table.steps(Lp, plan_p.ids, backends, source)
    steps_d = table.steps(Ld, ids_d, backends, source)
    steps_u = [table.steps(L, ids, backends, source) for _, L, _, ids in extra]
    pos_range = {"position_ids": [-1, T]}
    files = dict(table.files)
    dec = {
        "max_context": T, "prefill_len": Sp, "state_bytes": state_bytes, "kv_shield": kv_shield_seed is not None,
        "token_input": "input_ids", "position_input": "position_ids", "logits_output": "logits",
        "eos_token_id": meta.get("eos_token_id"), "bos_token_id": meta.get("bos_token_id"),
        "vocab": int(gp.values["logits"].shape[-1]),
        "layers": [{"layer": s.layer, "heads": s.H, "kv_heads": s.Hkv, "head_dim": s.D, "window": windows[s.layer],
                    "key": plan_p.ids[f"cache.{s.layer}.key"], "value": plan_p.ids[f"cache.{s.layer}.value"]}
                   for s in sites_p],
        "decode": {"inputs": io_entries(gd, Ld, ids_d, gd.inputs, pos_range),
                   "outputs": io_entries(gd, Ld, ids_d, gd.outputs), "steps": steps_d},
    }
    if switch:
        dec["lora_switch"] = {"pool": switch["pool"], "k": switch["k"], "projections": switch["segments"],
                              "merged_bytes": switch["bytes"]}
    for (g, L, _, ids), steps in zip(extra, steps_u):
        dec["decode_unfused"] = {"inputs": io_entries(g, L, ids, g.inputs, pos_range),
                                 "outputs": io_entries(g, L, ids, g.outputs), "steps": steps}
    if tokenizer is not None:
        data = Path(tokenizer).read_bytes()
        files["tokenizer.json"] = data
        dec["tokenizer"] = {"file": "tokenizer.json", "sha256": bundle_mod.sha256(data)}
    manifest = {
        "model": {"name": Path(model_path).stem, "source_sha256": bundle_mod.sha256(Path(model_path).read_bytes()),
                  "opset": gp.opset, "onnx_nodes": len(model.graph.node), "passes": stats},
        "inputs": io_entries(gp, Lp, plan_p.ids, gp.inputs, pos_range),
        "outputs": io_entries(gp, Lp, plan_p.ids, gp.outputs),
        "tensors": plan_p.tensors + plan_d.tensors + [t for e in extra for t in e[2].tensors],
        "memory": {"weights_base": ALIGN, "arena_base": arena_base, "arena_bytes": arena_bytes,
                   "intermediate_bytes": max(plan_p.intermediate_bytes, plan_d.intermediate_bytes),
                   "total_bytes": arena_base + arena_bytes + 64},
        "steps": steps_p,
        "kernels": table.kernels,
        "decoder": dec,
    }
    bundle_mod.write_bundle(Path(out_dir), manifest, weights, files, list(pool.f16_ranges) if weights_format == "f16" else None)
    return {"bundle": str(out_dir), "backends": backends, "decoder": True, "max_context": T, "prefill_len": Sp,
            "kv_shield": kv_shield_seed is not None,
            "layers": len(sites_p), "windows": sorted(set(windows.values())), "steps": len(steps_p),
            "decode_steps": len(steps_d), "kernels": len(table.kernels), "weights_bytes": len(weights),
            "weights_file_bytes": (Path(out_dir) / "weights.bin").stat().st_size,
            "kv_cache_bytes": state_bytes, "arena_bytes": arena_bytes,
            "seconds": round(time.perf_counter() - t0, 2), **stats}
