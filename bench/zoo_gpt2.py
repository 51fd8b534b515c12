"""GPT-2 decoders for the zoo: transformers' GPT2LMHeadModel (random weights, fixed seed)
exported as a decoder with explicit past keys/values, and a byte-level BPE tokenizer.

The exported interface is the one every zoo decoder shares (docs/decoders.md):
  inputs  input_ids int64 [1, seq], position_ids int64 [1, seq],
          past.{i}.key / past.{i}.value float32 [1, kv_heads, past, head_dim]
  outputs logits float32 [1, seq, vocab], present.{i}.key / present.{i}.value
          float32 [1, kv_heads, past + seq, head_dim]
The causal mask is built inside the graph from position_ids (key j is visible to a query at
position p iff j <= p), so the graph needs no attention_mask input.

The forward below re-states GPT2Model's forward with transformers' own submodules (ln, c_attn,
c_proj, mlp) and the eager attention's exact order of operations: transformers' mask builder
and Cache objects do not trace with the TorchScript exporter (aten::diff), and the dynamo
exporter needs onnxscript, which is not installed here. tests/test_decoders.py checks that its
logits equal GPT2LMHeadModel's and its greedy tokens equal transformers' generate().

GPT-2's own vocabulary files cannot be fetched here (no model hub); the tokenizer is a
byte-level BPE of GPT-2's vocabulary size trained at build time on a pinned corpus (the
transformers 5.24 sources), deterministic, saved as tokenizer.json beside the model.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import decoder_export

GPT2_CONFIGS = {
    # The 124M configuration (transformers' GPT2Config defaults).
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),
    # Same vocabulary and structure, small enough for browser tests in CI.
    "gpt2-tiny": dict(n_layer=2, n_head=4, n_embd=128, n_positions=1024),
}
VOCAB = 50257
EOS = 50256  # GPT-2's <|endoftext|>
SEED = 124
_TOKENIZER_CORPUS_BYTES = 24_000_000


def load_gpt2_torch(name: str, **overrides):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=VOCAB, bos_token_id=EOS, eos_token_id=EOS, **{**GPT2_CONFIGS[name], **overrides})
    torch.manual_seed(SEED)
    return GPT2LMHeadModel(cfg).eval()


def causal(kpos, qpos):
    return kpos[None, :] <= qpos[:, None]


def decoder_wrapper(hf, visible=causal):
    """`visible(key positions, query positions)` → bool [S, past + S]: the mask rule (tests swap it
    for a sliding window or a non-causal rule)."""
    import torch

    class GPT2WithPast(torch.nn.Module):
        def __init__(self, hf):
            super().__init__()
            self.t = hf.transformer
            self.lm_head = hf.lm_head
            c = hf.config
            self.H, self.D = c.n_head, c.n_embd // c.n_head

        def forward(self, input_ids, position_ids, *past):
            t, H, D = self.t, self.H, self.D
            S = input_ids.shape[1]
            h = t.wte(input_ids) + t.wpe(position_ids)
            kpos = torch.arange(past[0].shape[2] + S)
            mask = torch.where(visible(kpos, position_ids[0]), 0.0, torch.finfo(torch.float32).min)[None, None]
            presents = []
            for i, blk in enumerate(t.h):
                a = blk.ln_1(h)
                q, k, v = blk.attn.c_attn(a).split(H * D, dim=2)
                q, k, v = (x.reshape(1, S, H, D).transpose(1, 2) for x in (q, k, v))
                k = torch.cat([past[2 * i], k], dim=2)
                v = torch.cat([past[2 * i + 1], v], dim=2)
                presents += [k, v]
                w = torch.matmul(q, k.transpose(-1, -2)) * blk.attn.scaling + mask
                w = torch.softmax(w, dim=-1)
                o = torch.matmul(w, v).transpose(1, 2).reshape(1, S, H * D)
                h = h + blk.attn.c_proj(o)
                h = h + blk.mlp(blk.ln_2(h))
            return (self.lm_head(t.ln_f(h)), *presents)

    return GPT2WithPast(hf).eval()


def io_specs(name: str, io) -> tuple[list[dict], list[dict]]:
    c = GPT2_CONFIGS[name]
    return decoder_export.io_specs(io, c["n_layer"], c["n_head"], c["n_embd"] // c["n_head"], VOCAB)


def builder(name: str, torch_export, save_onnx):
    def build(out_path: Path) -> None:
        export_decoder(load_gpt2_torch(name), out_path, torch_export, save_onnx)

    return build


def export_decoder(hf, out_path: Path, torch_export, save_onnx, visible=causal) -> None:
    c = hf.config
    save_onnx(decoder_export.trace_with_past(decoder_wrapper(hf, visible), c.n_layer, c.n_head, c.n_embd // c.n_head,
                                             [15, 16, 17], torch_export), out_path)


def write_sidecars(name: str, out_path: Path) -> None:
    from nnjit.compiler.decoder import sidecar_paths

    tok, meta = sidecar_paths(Path(out_path))
    train_tokenizer(tok)
    c = GPT2_CONFIGS[name]
    meta.write_text(json.dumps({"eos_token_id": EOS, "max_positions": c["n_positions"], "vocab": VOCAB}) + "\n")


def _corpus() -> list[str]:
    import transformers

    root = Path(transformers.__file__).parent
    texts, total = [], 0
    for p in sorted(root.rglob("*.py")):
        t = p.read_text(encoding="utf-8", errors="replace")
        texts.append(t)
        total += len(t)
        if total >= _TOKENIZER_CORPUS_BYTES:
            break
    return texts


def train_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=EOS, special_tokens=[], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    # GPT-2's end-of-text token takes the last id, as in the original vocabulary.
    n = tok.get_vocab_size()
    if n != EOS:
        # A corpus too small to fill the vocabulary would shift EOS: name the shortfall instead.
        from nnjit.compiler.errors import NnjitError
        raise NnjitError(f"tokenizer corpus gave {n} tokens, fewer than GPT-2's {EOS}")
    tok.add_special_tokens(["<|endoftext|>"])
    out.write_text(tok.to_str())


def greedy_reference(hf, prompt_ids: list[int], n: int) -> list[int]:
    """transformers' own greedy generate (its KV cache), the reference the tests compare with."""
    import torch

    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt_ids]), max_new_tokens=n, do_sample=False,
                          min_new_tokens=n, pad_token_id=EOS)
    return out[0, len(prompt_ids):].tolist()
