"""The interface every zoo decoder exports (docs/decoders.md) and the tracing that produces it:
input_ids, position_ids and past.{i}.key/value in; logits and present.{i}.key/value out."""
from __future__ import annotations

from pathlib import Path


def io_names(n_layer: int) -> tuple[list[str], list[str]]:
    past = [f"past.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    return ["input_ids", "position_ids", *past], ["logits", *present]


def io_specs(io, n_layer: int, kv_heads: int, head_dim: int, vocab: int) -> tuple[list[dict], list[dict]]:
    """The zoo's input/output declarations (`io(name, dtype, shape)`), dynamic dims seq and past."""
    ins, outs = io_names(n_layer)
    inputs = [io(ins[0], "int64", [1, "seq"]), io(ins[1], "int64", [1, "seq"])]
    inputs += [io(n, "float32", [1, kv_heads, "past", head_dim]) for n in ins[2:]]
    outputs = [io("logits", "float32", [1, "seq", vocab])]
    outputs += [io(n, "float32", [1, kv_heads, "past+seq", head_dim]) for n in outs[1:]]
    return inputs, outputs


def trace_with_past(net, n_layer: int, kv_heads: int, head_dim: int, sample_ids: list[int], torch_export):
    """The ONNX model of `net` (a forward over input_ids, position_ids, *past), traced with a past and a
    prompt longer than 1 so that neither dim is specialised."""
    import tempfile

    import onnx
    import torch

    ins, outs = io_names(n_layer)
    P, S = 2, len(sample_ids)
    args = (torch.tensor([sample_ids]), torch.arange(P, P + S)[None],
            *[torch.zeros(1, kv_heads, P, head_dim) for _ in range(2 * n_layer)])
    dyn = {"input_ids": {1: "seq"}, "position_ids": {1: "seq"}, "logits": {1: "seq"}}
    dyn.update({n: {2: "past"} for n in ins[2:]})
    dyn.update({n: {2: "past+seq"} for n in outs[1:]})
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "m.onnx"
        with torch.no_grad():
            torch_export(net, args, tmp, ins, outs, dyn)
        return onnx.load(str(tmp))
