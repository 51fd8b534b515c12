"""LoRA-Switch zoo decoder (docs/lora_switch.md): gpt2-tiny with a pool of N low-rank adapters on every
attention and MLP projection, and one router on layer 0's input that picks the top-k adapters for each
token; the chosen set applies to every layer.

Exported as the *unfused dynamic* graph, which is also the baseline the switch is compared with:

    ids = TopK(h0·R + b, k).indices                           [1, S, k]     (h0: layer 0's input)
    y   = base(x) + ReduceSum((x[..,None,None,:] · A[ids]) · B[ids], axes=[2, 3]) · scale

A[ids] and B[ids] are Gathers of constant pools [N, in, r] and [N, r, out]. Routing is hard and the
weights are set-determined (every selected adapter contributes scale·A_i·B_i, no per-token gate
value): then the merged weight W + scale·Σ A_i·B_i depends on the set only, so a token whose set did
not change needs no merge. Soft gates would change W' whenever a gate value changes, i.e. on nearly
every token, and the switch would have to merge every time.

The router's constant bias favours two adapters, so the set repeats for runs of tokens and changes
now and then, which is what the skipped merges are counted on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import zoo_gpt2

POOL, RANK, ALPHA, TOP_K, SEED = 8, 4, 8, 2, 88
TARGETS = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


class _Route:
    """The indices the router picked for the current forward, read by every adapted projection."""
    ids = None


def _classes():
    import torch

    class Router(torch.nn.Module):
        def __init__(self, ln, d: int, route: _Route, gen, pool: int, k: int, bias_scale: float):
            super().__init__()
            self.ln, self.route, self.k = ln, route, k
            self.register_buffer("weight", torch.randn(d, pool, generator=gen))
            bias = torch.randn(pool, generator=gen) * 0.5
            bias[:2] += bias_scale  # two favourites: sets repeat for runs of tokens
            self.register_buffer("bias", bias)

        def forward(self, h):
            self.route.ids = torch.topk(h @ self.weight + self.bias, self.k, dim=-1).indices
            return self.ln(h)

    class SwitchLinear(torch.nn.Module):
        def __init__(self, base, fan_in: int, fan_out: int, route: _Route, gen, pool: int, rank: int, alpha: float):
            super().__init__()
            self.base, self.route, self.scale = base, route, alpha / rank
            bound = 1.0 / np.sqrt(fan_in)
            self.register_buffer("lora_A", torch.rand(pool, fan_in, rank, generator=gen) * 2 * bound - bound)
            self.register_buffer("lora_B", torch.randn(pool, rank, fan_out, generator=gen) * 0.05)

        def forward(self, x):
            ids = self.route.ids
            xa = x[:, :, None, None, :] @ self.lora_A[ids]          # [1, S, k, 1, r]
            return self.base(x) + (xa @ self.lora_B[ids]).sum(dim=(2, 3)) * self.scale

    return Router, SwitchLinear


def add_switch(hf, pool: int = POOL, rank: int = RANK, k: int = TOP_K, bias_scale: float = 1.5, targets=TARGETS):
    """Adapter pools on `targets` of every block of a GPT2LMHeadModel and the router on layer 0's input."""
    import torch

    Router, SwitchLinear = _classes()
    gen = torch.Generator().manual_seed(SEED)
    route = _Route()
    d = hf.config.n_embd
    blk0 = hf.transformer.h[0]
    blk0.ln_1 = Router(blk0.ln_1, d, route, gen, pool, k, bias_scale)
    for blk in hf.transformer.h:
        for path in targets:
            parent, _, leaf = path.rpartition(".")
            owner = blk.get_submodule(parent)
            base = getattr(owner, leaf)
            fan_in, fan_out = base.weight.shape  # Conv1D stores [in, out]
            setattr(owner, leaf, SwitchLinear(base, int(fan_in), int(fan_out), route, gen, pool, rank, ALPHA))
    return hf.eval()


def switch_torch(name: str = "gpt2-tiny", **kw):
    """transformers' GPT-2 (the zoo's seed) with adapter pools and the layer-0 router."""
    return add_switch(zoo_gpt2.load_gpt2_torch(name), **kw)


def build_gpt2_switch(name: str, torch_export, save_onnx, **kw):
    def build(out_path: Path) -> None:
        zoo_gpt2.export_decoder(switch_torch(name, **kw), out_path, torch_export, save_onnx)

    return build
