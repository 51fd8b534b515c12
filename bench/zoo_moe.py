"""moe-digits: a small mixture-of-experts classifier trained here on scikit-learn's digits, so that
what a parameter committee (docs/moe.md) costs in accuracy is a real number.

64 pixels → Linear(64, 32) + ReLU → MoE FFN (8 experts 32-64-32 with ReLU, top-2 of a softmax
router, gates renormalised to sum 1) + residual → Linear(32, 10). The MoE block is written the way
transformers' `experts_implementation="batched_mm"` runs Mixtral's experts (gather each token's
expert weights, batched matmul, weight by the gate, sum over k), so the compiler's MoE pass
(compiler/passes/moe.py) sees the same graph shape for both.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

HIDDEN, FFN, EXPERTS, TOP_K, CLASSES = 32, 64, 8, 2, 10
SEED, EPOCHS, BATCH = 2024, 60, 64
# A Switch-style load-balancing loss keeps all 8 experts in use: without it the router collapses onto
# two or three experts and every committee would look free.
BALANCE = 0.02
MIN_ACCURACY = 0.94


def moe_block_class():
    import torch
    from torch import nn

    class MoeFFN(nn.Module):
        def __init__(self, hidden: int, ffn: int, experts: int, k: int, act=torch.relu):
            super().__init__()
            self.k, self.experts, self.act = k, experts, act
            self.router = nn.Linear(hidden, experts, bias=False)
            s1, s2 = 1 / np.sqrt(hidden), 1 / np.sqrt(ffn)
            # [E, out, in], transformers' layout for batched experts
            self.w1 = nn.Parameter(torch.empty(experts, ffn, hidden).uniform_(-s1, s1))
            self.b1 = nn.Parameter(torch.empty(experts, ffn).uniform_(-s1, s1))
            self.w2 = nn.Parameter(torch.empty(experts, hidden, ffn).uniform_(-s2, s2))
            self.b2 = nn.Parameter(torch.empty(experts, hidden).uniform_(-s2, s2))
            self.last_probs = None

        def forward(self, x):  # x [T, hidden]
            probs = torch.softmax(self.router(x), dim=-1)
            self.last_probs = probs
            gates, idx = torch.topk(probs, self.k, dim=-1)
            gates = gates / gates.sum(dim=-1, keepdim=True)
            ids = idx.reshape(-1)
            xs = x.repeat_interleave(self.k, dim=0)
            h = self.act(torch.bmm(self.w1[ids], xs.unsqueeze(-1)).squeeze(-1) + self.b1[ids])
            o = torch.bmm(self.w2[ids], h.unsqueeze(-1)).squeeze(-1) + self.b2[ids]
            return (o * gates.reshape(-1, 1)).view(x.shape[0], self.k, -1).sum(dim=1)

    return MoeFFN


def mixtral_block(hidden: int, ffn: int, experts: int, k: int, seed: int = 0):
    """transformers' own MixtralSparseMoeBlock (SwiGLU experts, experts_implementation="batched_mm"),
    random N(0, 0.1) weights, eval mode: the Mixtral MoE as transformers exports it."""
    import torch
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    cfg = MixtralConfig(hidden_size=hidden, intermediate_size=ffn, num_local_experts=experts, num_experts_per_tok=k,
                        experts_implementation="batched_mm")
    torch.manual_seed(seed)
    block = MixtralSparseMoeBlock(cfg).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.1)
    return block


def _net():
    import torch
    from torch import nn

    MoeFFN = moe_block_class()

    class MoeDigits(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(64, HIDDEN)
            self.moe = MoeFFN(HIDDEN, FFN, EXPERTS, TOP_K)
            self.out = nn.Linear(HIDDEN, CLASSES)

        def forward(self, x):  # x [T, 64]
            h = torch.relu(self.inp(x))
            return self.out(h + self.moe(h))

    return MoeDigits()


def digits_flat():
    """(x_train, y_train, x_test, y_test) with 64 features per image (the zoo's digits split)."""
    from nnjit.bench.datasets import digits_split

    x_tr, y_tr, x_te, y_te = digits_split()
    return x_tr.reshape(-1, 64), y_tr, x_te.reshape(-1, 64), y_te


def train():
    """(net, held-out accuracy); deterministic: fixed seeds, one thread (the zoo builder sets it)."""
    import torch

    from .train_classifier import train_classifier

    def balance(net):
        probs = net.moe.last_probs
        chosen = torch.zeros_like(probs).scatter_(1, probs.topk(TOP_K, dim=-1).indices, 1.0)
        return BALANCE * EXPERTS * (chosen.mean(0) / TOP_K * probs.mean(0)).sum()

    x_tr, y_tr, x_te, y_te = digits_flat()
    torch.manual_seed(SEED)
    return train_classifier(_net(), x_tr, y_tr, x_te, y_te, seed=SEED, epochs=EPOCHS, batch=BATCH,
                            extra_loss=balance)


def build_moe_digits(torch_export, save_onnx, single_thread, error_cls):
    def build(out_path: Path) -> None:
        import onnx
        import torch

        with single_thread():
            net, acc = train()
            if acc < MIN_ACCURACY:
                raise error_cls(f"moe-digits: held-out accuracy {acc:.4f} < {MIN_ACCURACY}")
            with tempfile.TemporaryDirectory() as td:
                tmp = Path(td) / "m.onnx"
                torch_export(net, (torch.zeros(3, 64),), tmp, ["input"], ["logits"],
                             dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                _check_against_torch(net, tmp, error_cls)
                model = onnx.load(str(tmp))
        if not any(n.op_type == "TopK" for n in model.graph.node):
            raise error_cls("moe-digits: export lost its TopK router")
        model.doc_string = f"MoE digits classifier (8 experts, top-2), torch held-out accuracy {acc:.4f}"
        save_onnx(model, out_path)
    return build


def _check_against_torch(net, path, error_cls) -> None:
    """The exported graph gives torch's logits on every held-out digit (onnxruntime CPU)."""
    import onnxruntime as ort
    import torch

    x = digits_flat()[2]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    err = float(np.abs(got - want).max() / np.abs(want).max())
    if err > 1e-5 or not np.array_equal(got.argmax(1), want.argmax(1)):
        raise error_cls(f"moe-digits: onnxruntime differs from torch on the held-out digits (max rel err {err:.2e})")


def torch_accuracy_from_doc(path) -> float:
    import onnx

    doc = onnx.load(str(path), load_external_data=False).doc_string
    return float(doc.rsplit(" ", 1)[-1])
