"""`counters-switch`: a LoRA-Switch decoder trained here, whose accuracy is measurable (docs/lora_switch.md).

Task: x[t+1] = (x[t-1] + 1) mod V from random start pairs: the next token is the one two back plus one,
so attention to an earlier position must work (two interleaved counters). Model: a 2-layer GPT-2 (d = 64, vocabulary V) with the
zoo's switch structure (bench/zoo_switch.py: pools of 8 rank-4 adapters on every projection, a constant
top-2 router on layer 0's input, hard routing). Only the adapter pools are trained; the base keeps its
random weights and the router stays fixed (hard TopK passes no gradient to it). Accuracy: greedy continuation of held-out 4-token
prompts, share of generated tokens equal to the rule's.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

V, LEN, PROMPT_LEN, N_NEW, SEED = 23, 16, 4, 12, 2026
CONFIG = {"n_layer": 2, "n_head": 4, "n_embd": 64, "n_positions": 32}


def sequences(starts: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(starts), n), np.int64)
    out[:, :2] = starts
    for t in range(2, n):
        out[:, t] = (out[:, t - 2] + 1) % V
    return out


def held_out_starts() -> np.ndarray:
    """Every 5th start pair (of V² in all) is never trained on."""
    pairs = np.array([(a, b) for a in range(V) for b in range(V)], np.int64)
    return pairs[::5]


def train(steps: int = 300):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from . import zoo_switch

    torch.manual_seed(SEED)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=V, bos_token_id=0, eos_token_id=0, **CONFIG))
    net = zoo_switch.add_switch(hf)
    pairs = np.array([(a, b) for a in range(V) for b in range(V)], np.int64)
    train_pairs = np.delete(pairs, np.arange(0, len(pairs), 5), axis=0)
    rng = np.random.default_rng(SEED)
    # Only the adapters learn: the base stays at its random initialisation, so the task is solved by the
    # adapters the router picks per token, and removing them breaks it (docs/lora_switch.md).
    for p in net.parameters():
        p.requires_grad_(False)
    params = [b for n, b in net.named_buffers() if "lora_" in n]
    for b in params:
        b.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    net.train()
    for _ in range(steps):
        batch = torch.from_numpy(sequences(train_pairs[rng.integers(0, len(train_pairs), 64)], LEN))
        logits = net(batch).logits[:, 1:-1]  # the first step has one token of history only
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), batch[:, 2:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for b in params:
        b.requires_grad_(False)
    return net.eval()


def build_counters_switch(torch_export, save_onnx, single_thread):
    def build(out_path: Path) -> None:
        from . import zoo_gpt2

        with single_thread():  # one reduction order: the same weights on every machine
            net = train()
        zoo_gpt2.export_decoder(net, out_path, torch_export, save_onnx)
        out_path.with_name(out_path.name.split(".onnx")[0] + ".decoder.json").write_text(
            json.dumps({"eos_token_id": None, "max_positions": CONFIG["n_positions"], "vocab": V}) + "\n")

    return build


def accuracy(generate) -> float:
    """Share of correct tokens when `generate(prompt ids, n)` continues each held-out prompt."""
    seqs = sequences(held_out_starts(), PROMPT_LEN + N_NEW)
    right = 0
    for s in seqs:
        got = generate([int(t) for t in s[:PROMPT_LEN]], N_NEW)
        right += int((np.array(got) == s[PROMPT_LEN:]).sum())
    return right / (len(seqs) * N_NEW)
