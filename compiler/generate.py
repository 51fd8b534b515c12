"""Token generation over a decoder bundle (docs/decoders.md), for any session with
`run(feeds, plan)` and the decoder manifest section — the native wasmtime session here; the web
runtime's Session.generate follows the same rules:

- the prompt is prefilled in chunks of `prefill_len` tokens, each chunk right-aligned in the
  prefill plan's slots and the free slots marked with position -1 (their keys/values are not
  cached and their logits are never read), so the prefill's logits row is always its last slot;
  a last chunk of at most prefill_len / 16 tokens runs as single decode steps instead;
- then one decode-plan run per new token at position len(prompt) + i;
- tokens are picked from the last logits row: argmax (greedy), or sampled with temperature,
  top-k and top-p (nucleus) from a seeded generator.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError


# A prompt chunk of at most prefill_len / SMALL_CHUNK tokens runs as that many decode steps: a prefill
# run costs about its prefill_len slots whatever the chunk holds (gpt2 here: ~10 decode steps' time).
SMALL_CHUNK = 16


@dataclass
class Sampling:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0 → greedy
    top_k: int = 0            # 0 → all
    top_p: float = 1.0
    seed: int = 0
    stop: list[int] = field(default_factory=list)


def check_prompt(ids, dec: dict, max_new_tokens: int) -> list[int]:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"prompt: expected a non-empty 1-D list of token ids, got shape {list(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"prompt: expected integer token ids, got dtype {arr.dtype}")
    V = dec["vocab"]
    bad = arr[(arr < 0) | (arr >= V)]
    if bad.size:
        raise InputError(f"prompt: token id {int(bad[0])} is outside the vocabulary [0, {V})")
    T = dec["max_context"]
    if arr.size + max_new_tokens > T:
        raise InputError(f"prompt: {arr.size} tokens + max_new_tokens {max_new_tokens} exceed the bundle's max "
                         f"context of {T} tokens (compile with a larger --max-context)")
    return [int(x) for x in arr]


def pick(logits: np.ndarray, s: Sampling, rng: np.random.Generator) -> int:
    if s.temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / s.temperature
    order = np.argsort(-z, kind="stable")
    if s.top_k > 0:
        order = order[:s.top_k]
    p = np.exp(z[order] - z[order[0]])
    p /= p.sum()
    if s.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), s.top_p) + 1)
        order, p = order[:keep], p[:keep] / p[:keep].sum()
    return int(order[rng.choice(len(p), p=p)])


class Decoder:
    def __init__(self, session):
        self.s = session
        self.dec = session.manifest["decoder"]
        self.Sp = self.dec["prefill_len"]
        # The one-token plan: a LoRA-Switch bundle also has 'decode_unfused' (compiler/switch_jit.py picks).
        self.decode_plan = "decode"

    def prefill(self, ids: list[int]) -> np.ndarray:
        """Logits after the last prompt token."""
        Sp = self.Sp
        for c in range(0, len(ids), Sp):
            chunk = ids[c:c + Sp]
            if len(chunk) <= Sp // SMALL_CHUNK:
                for i, t in enumerate(chunk):
                    logits = self.step(t, c + i)
                return logits
            pad = Sp - len(chunk)
            tok = np.array([[0] * pad + chunk], np.int64)
            pos = np.array([[-1] * pad + list(range(c, c + len(chunk)))], np.int64)
            out = self.s.run({self.dec["token_input"]: tok, self.dec["position_input"]: pos})
        return out[self.dec["logits_output"]].reshape(-1, self.dec["vocab"])[-1]

    def step(self, token: int, position: int) -> np.ndarray:
        out = self.s.run({self.dec["token_input"]: np.array([[token]], np.int64),
                          self.dec["position_input"]: np.array([[position]], np.int64)}, plan=self.decode_plan)
        return out[self.dec["logits_output"]].reshape(-1, self.dec["vocab"])[-1]

    def generate(self, prompt, sampling: Sampling | None = None, logits_out: list | None = None):
        """Yields new token ids one by one; `logits_out` collects each step's logits when given, and
        self.timing the model's own time (prefill, and the decode steps), not the consumer's."""
        s = sampling or Sampling()
        ids = check_prompt(prompt, self.dec, s.max_new_tokens)
        rng = np.random.default_rng(s.seed)
        stop = set(s.stop)
        t0 = time.perf_counter()
        logits = self.prefill(ids)
        self.timing = {"prompt_tokens": len(ids), "prefill_s": time.perf_counter() - t0, "decode_s": 0.0, "decoded": 0}
        for i in range(s.max_new_tokens):
            if logits_out is not None:
                logits_out.append(logits.copy())
            tok = pick(logits, s, rng)
            yield tok
            if tok in stop or i == s.max_new_tokens - 1:
                return
            t0 = time.perf_counter()
            logits = self.step(tok, len(ids) + i)
            self.timing["decode_s"] += time.perf_counter() - t0
            self.timing["decoded"] += 1

    def run(self, prompt, sampling: Sampling | None = None, on_token=None) -> dict:
        """Whole generation: tokens, per-step logits, prefill and decode tokens/s; `on_token(id)` sees
        each token as it comes (streaming)."""
        logits, tokens = [], []
        for tok in self.generate(prompt, sampling, logits):
            tokens.append(tok)
            if on_token is not None:
                on_token(tok)
        t = self.timing
        return {"tokens": tokens, "logits": np.stack(logits), "prefill_tokens_per_s": t["prompt_tokens"] / t["prefill_s"],
                "decode_tokens_per_s": t["decoded"] / max(t["decode_s"], 1e-9)}
