"""LoRA variants of zoo models: the base weights of `mlp` and `gpt2-tiny` (same seeds) with rank-8,
alpha-16 adapters on every projection, exported so that each branch stays in the graph as PEFT's
export leaves it: base(x) + lora_B(lora_A(dropout(x))) * (alpha / r).

peft is not a dependency: the wrapper below re-states PEFT's LoraLayer forward for nn.Linear and
transformers' Conv1D. Adapters are random and non-zero (PEFT starts B at zero, which would make
the merge a no-op that no test could tell from a dropped branch).
"""
from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import zoo_gpt2

RANK, ALPHA, SEED = 8, 16, 8
MLP_DIMS = [784, 1024, 1024, 10]
MLP_BATCH = 32


def _lora_class():
    import torch

    class LoraLinear(torch.nn.Module):
        def __init__(self, base, fan_in: int, fan_out: int, gen):
            super().__init__()
            self.base = base
            self.lora_A = torch.nn.Linear(fan_in, RANK, bias=False)
            self.lora_B = torch.nn.Linear(RANK, fan_out, bias=False)
            self.lora_dropout = torch.nn.Dropout(0.05)  # the identity in eval mode, as exported
            self.scaling = ALPHA / RANK
            with torch.no_grad():
                bound = 1.0 / np.sqrt(fan_in)  # PEFT's kaiming-uniform A
                self.lora_A.weight.copy_(torch.rand(RANK, fan_in, generator=gen) * 2 * bound - bound)
                self.lora_B.weight.copy_(torch.randn(fan_out, RANK, generator=gen) * 0.02)

        def forward(self, x):
            return self.base(x) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    return LoraLinear


def add_lora(module, names: list[str], gen) -> None:
    """Wrap each submodule `names` (dotted paths under `module`) of type nn.Linear or Conv1D."""
    import torch

    LoraLinear = _lora_class()
    for path in names:
        parent, _, leaf = path.rpartition(".")
        owner = module.get_submodule(parent) if parent else module
        base = getattr(owner, leaf)
        # Conv1D stores [in, out]; nn.Linear [out, in].
        fan_in, fan_out = (base.in_features, base.out_features) if isinstance(base, torch.nn.Linear) else base.weight.shape
        setattr(owner, leaf, LoraLinear(base, int(fan_in), int(fan_out), gen).eval())


def mlp_torch(lora: bool = True):
    """The zoo's mlp (its numpy-seed-784 weights) as torch Linear layers, optionally with adapters."""
    import torch

    rng = np.random.default_rng(784)
    layers = []
    for i, (din, dout) in enumerate(itertools.pairwise(MLP_DIMS)):
        bound = 1.0 / np.sqrt(din)
        lin = torch.nn.Linear(din, dout)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=(dout, din)).astype(np.float32)))
            lin.bias.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=(dout,)).astype(np.float32)))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(MLP_DIMS) - 2 else [])
    net = torch.nn.Sequential(*layers).eval()
    if lora:
        add_lora(net, [str(i) for i, m in enumerate(net) if isinstance(m, torch.nn.Linear)],
                 torch.Generator().manual_seed(SEED))
    return net


def build_mlp_lora(torch_export, save_onnx):
    def build(out_path: Path) -> None:
        import onnx
        import torch

        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td) / "m.onnx"
            with torch.no_grad():
                torch_export(mlp_torch(), (torch.zeros(MLP_BATCH, MLP_DIMS[0]),), tmp, ["input"], ["logits"])
            model = onnx.load(str(tmp))
        save_onnx(model, out_path)

    return build


def gpt2_lora_torch(name: str = "gpt2-tiny"):
    """transformers' GPT-2 (the zoo's seed) with adapters on attention c_attn, c_proj and the MLP."""
    import torch

    hf = zoo_gpt2.load_gpt2_torch(name)
    gen = torch.Generator().manual_seed(SEED)
    for i in range(hf.config.n_layer):
        add_lora(hf.transformer.h[i], ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"], gen)
    return hf.eval()


def build_gpt2_lora(name: str, torch_export, save_onnx):
    def build(out_path: Path) -> None:
        zoo_gpt2.export_decoder(gpt2_lora_torch(name), out_path, torch_export, save_onnx)

    return build


def copy_sidecars(base_onnx: Path, out_path: Path) -> None:
    """The base decoder's tokenizer and metadata: adapters change neither."""
    from nnjit.compiler.decoder import sidecar_paths

    for src, dst in zip(sidecar_paths(Path(base_onnx)), sidecar_paths(Path(out_path))):
        shutil.copyfile(src, dst)
