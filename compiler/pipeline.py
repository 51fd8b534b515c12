"""The compile pipeline: import → passes → lower → plan → codegen → bundle."""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import bundle as bundle_mod
from .codegen import wasm, wgsl
from .ir import Graph
from .lower import lower
from .onnx_import import check_sizes, export_onnx, import_onnx, infer, to_graph
from .passes.fold_batchnorm import fold_batchnorm
from .passes.fold_constants import fold_constants
from .passes.fuse_epilogue import fuse_epilogue
from .passes.fuse_gelu import fuse_gelu
from .passes.lora_merge import lora_merge
from .passes.widen_half import widen_half
from .passes.moe import fuse_moe
from .plan import plan_memory


def optimize(g: Graph, rewrite=None) -> dict:
    """`rewrite(g)`: a graph rewrite that needs folded shapes but must see the graph before fusion
    (the decoder KV-cache pass); its result is returned under stats["rewrite"]."""
    stats = {"folded": fold_constants(g)}
    if any(v.shape is None for n in g.nodes for o in n.outputs if o for v in [g.values[o]]):
        # Folding made shape arithmetic concrete: let onnx infer the rest again.
        g2 = to_graph(infer(export_onnx(g)))
        for name, v in g2.values.items():
            if name in g.values and g.values[name].shape is None:
                g.values[name].shape, g.values[name].dtype = v.shape, v.dtype
        stats["folded"] += fold_constants(g)
    g.remove_dead()
    stats["lora_merged"] = lora_merge(g)
    stats["moe_fused"] = fuse_moe(g)
    if rewrite is not None:
        stats["rewrite"] = rewrite(g)
    stats["batchnorm_folded"] = fold_batchnorm(g)
    stats["gelu_fused"] = fuse_gelu(g)
    stats["epilogues_fused"] = fuse_epilogue(g)
    stats["half_widened"] = widen_half(g)
    g.remove_dead()
    return stats


def _wasm_kernel(kid: str, s, params: dict) -> tuple[dict, dict]:
    plain, relaxed = wasm.build(s.family, params)
    entry = {"id": kid, "backend": "wasm", "family": s.family, "entry": "run", "config": params,
             "file": f"kernels/{kid}.wasm", "sha256": bundle_mod.sha256(plain), "relaxed": None}
    files = {entry["file"]: plain}
    if relaxed is not None:
        rel = f"kernels/{kid}.relaxed.wasm"
        files[rel] = relaxed
        entry["relaxed"] = {"file": rel, "sha256": bundle_mod.sha256(relaxed)}
    return entry, files


def _webgpu_schedules(s) -> list[tuple[dict, str]]:
    """(schedule, device class) per candidate: the GPU default first, then the CPU-adapter default,
    then the rest of the pruned space (the tuner times them all on the user's adapter)."""
    if s.family != "gemm":
        return [({}, "any")]
    from .codegen.wgsl_space import gemm_wgsl_candidates, gemm_wgsl_cpu_default
    M, N, K = s.params["M"], s.params["N"], s.params["K"]
    space = gemm_wgsl_candidates(M, N, K)
    out = [(space[0], "gpu")]
    cpu = gemm_wgsl_cpu_default(M, N, K)
    if cpu is not None:
        out.append((cpu, "cpu"))
    # Marked 'gpu' so that a CPU adapter without a CPU default still starts on the GPU default.
    out += [(sched, "gpu") for sched in space[1:] if sched != cpu]
    return out


def _webgpu_kernel(kid: str, s, schedule: dict, device_class: str) -> tuple[dict, dict]:
    text, dispatch, info = wgsl.build(s.family, s.params, schedule)
    data = text.encode()
    entry = {"id": kid, "backend": "webgpu", "family": s.family, "entry": "main", "config": s.params,
             "schedule": schedule, "device_class": device_class, "dispatch": dispatch,
             "workgroup": info["workgroup"], "file": f"kernels/{kid}.wgsl", "sha256": bundle_mod.sha256(data)}
    return entry, {entry["file"]: data}


def _kernels_for(backend: str, s) -> list[tuple[str, callable]]:
    """(dedupe key suffix, builder(kid) → (entry, files)) for each candidate kernel of a step."""
    if backend == "wasm":
        # The step's default schedule first, then its alternatives: the tuner times them on the device.
        variants = [dict(s.params)] + [{**s.params, **c} for c in s.candidates]
        out, seen = [], set()
        for params in variants:
            key = json.dumps(params, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((key, lambda kid, params=params: _wasm_kernel(kid, s, params)))
        return out
    return [(json.dumps(sched, sort_keys=True) + cls, lambda kid, sched=sched, cls=cls: _webgpu_kernel(kid, s, sched, cls))
            for sched, cls in _webgpu_schedules(s)]


BACKENDS = ("wasm", "webgpu")


class KernelTable:
    """The bundle's kernels, deduplicated across steps (and across a decoder's two plans)."""

    def __init__(self):
        self.kernels: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.by_key: dict[tuple, str] = {}

    def steps(self, L, ids: dict[str, int], backends, source: str, first_id: int = 0) -> list[dict]:
        out = []
        for k, s in enumerate(L.steps):
            cands = {}
            for backend in backends:
                cands[backend] = []
                if backend == "webgpu" and wgsl.gap(s.family, s.params):
                    continue  # wasm only: the runtime runs such a bundle on wasm
                for suffix, build in _kernels_for(backend, s):
                    key = ((backend, s.family, suffix) if backend == "wasm"
                           else (backend, s.family, json.dumps(s.params, sort_keys=True), suffix))
                    if key not in self.by_key:
                        entry, new_files = build(f"{'k' if backend == 'wasm' else 'g'}{len(self.kernels)}")
                        self.kernels.append(entry)
                        self.files.update(new_files)
                        self.by_key[key] = entry["id"]
                    cands[backend].append(self.by_key[key])
            have = [b for b in backends if cands[b]]
            if not have:
                from .errors import UnsupportedOpError
                raise UnsupportedOpError(f"{source}: node {s.node!r} ({s.op}): {wgsl.gap(s.family, s.params)}; "
                                         "compile with --backend wasm,webgpu to run it on wasm")
            out.append({"id": first_id + k, "op": s.op, "node": s.node, "family": s.family,
                        "args": [ids[a] for a in s.args], "kernel": cands[have[0]][0],
                        "candidates": {b: c for b, c in cands.items() if c}})
        return out


def io_entries(g: Graph, L, ids: dict[str, int], names: list[str], int_ranges: dict | None = None) -> list[dict]:
    ranges = dict(int_ranges or {})
    for s in L.steps:
        if s.family == "gather" and s.args[1] in g.inputs:
            ranges.setdefault(s.args[1], [0, s.params["axis_len"]])
    out = []
    for name in names:
        v = g.values[name]
        entry = {"name": name, "dtype": v.dtype, "shape": list(v.shape), "tensor": ids[name]}
        if name in g.string_values:  # int32 ids of strings: the runtime interns and decodes them
            entry["encoding"] = "string"
        elif v.dtype in ("int64", "int32"):
            entry["int_range"] = ranges.get(name, [0, 2])
        out.append(entry)
    return out


def check_backends(backends) -> list[str]:
    backends = list(dict.fromkeys(backends))
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        from .errors import NnjitError
        raise NnjitError(f"backend {', '.join(unknown) or '(none)'}: available backends are {', '.join(BACKENDS)}")
    return backends


WEIGHT_FORMATS = ("f32", "f16")


def check_weight_format(fmt: str) -> str:
    if fmt not in WEIGHT_FORMATS:
        from .errors import NnjitError
        raise NnjitError(f"weights format {fmt!r}: expected one of {', '.join(WEIGHT_FORMATS)}")
    return fmt


def compile_model(model_path, out_dir, shapes: dict | None = None, backends=("wasm", "webgpu"), log=None,
                  bind: dict | None = None, weights: str = "f32") -> dict:
    """`weights`: 'f16' stores float32 weights as half floats in weights.bin (half the download; the
    runtime expands them, kernels compute in float32)."""
    t0 = time.perf_counter()
    backends = check_backends(backends)
    check_weight_format(weights)
    source = str(model_path)
    g = import_onnx(model_path, shapes, bind)
    n_onnx = len(g.nodes)
    stats = optimize(g)
    check_sizes(g, source)  # folding may have made new shapes concrete
    L = lower(g, source)
    plan = plan_memory(g, L)
    table = KernelTable()
    steps = table.steps(L, plan.ids, backends, source)
    total = plan.arena_base + plan.arena_bytes + 64
    manifest = {
        "model": {"name": Path(model_path).stem, "source_sha256": bundle_mod.sha256(Path(model_path).read_bytes()),
                  "opset": g.opset, "onnx_nodes": n_onnx, "passes": stats},
        "inputs": io_entries(g, L, plan.ids, g.inputs),
        "outputs": io_entries(g, L, plan.ids, g.outputs),
        "tensors": plan.tensors,
        "memory": {"weights_base": plan.weights_base, "arena_base": plan.arena_base, "arena_bytes": plan.arena_bytes,
                   "intermediate_bytes": plan.intermediate_bytes, "total_bytes": total},
        "steps": steps,
        "kernels": table.kernels,
    }
    if g.strings:
        manifest["strings"] = g.strings
    if g.passthrough:
        manifest["passthrough"] = g.passthrough
    bundle_mod.write_bundle(Path(out_dir), manifest, plan.weights, table.files,
                            plan.f16_ranges if weights == "f16" else None)
    summary = {"bundle": str(out_dir), "backends": backends, "onnx_nodes": n_onnx, "steps": len(steps),
               "kernels": len(table.kernels), "weights_bytes": len(plan.weights),
               "weights_file_bytes": (Path(out_dir) / "weights.bin").stat().st_size, "arena_bytes": plan.arena_bytes,
               "intermediate_bytes": plan.intermediate_bytes, "seconds": round(time.perf_counter() - t0, 2), **stats}
    return summary
