"""Drive bench/pages/generate.html: Session.generate on a decoder bundle in headless Chromium, with
the tokens streamed back to Python while they come (the page publishes them; the driver polls)."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from .page_runner import BrowserHarness


def generate_in_page(harness: BrowserHarness, bundle_dir, prompt: list[int] | str, sampling, threads: int = 1,
                     stream=None, return_logits: bool = False, repeat: int = 1, backend: str = "wasm",
                     profile_decode: int = 0, lora_switch: str = "auto") -> dict:
    """{tokens, runs: [{prefillTokensPerS, decodeTokensPerS, ...}], logits (steps × vocab) or None, info};
    a str prompt is tokenised in the page (web_runtime/tokenizer.js), adding promptIds and text."""
    seen = [0]

    def progress(p):
        toks = p.get("tokens") or []
        if stream is not None and p.get("run", 0) == repeat - 1:
            for t in toks[seen[0]:]:
                stream(t)
            seen[0] = max(seen[0], len(toks))

    config = {"prompt": [] if isinstance(prompt, str) else list(prompt),
              "text": prompt if isinstance(prompt, str) else None, "maxNewTokens": sampling.max_new_tokens, "temperature": sampling.temperature,
              "topK": sampling.top_k, "topP": sampling.top_p, "seed": sampling.seed, "threads": threads,
              "returnLogits": return_logits, "repeat": repeat, "backend": backend, "profileDecode": profile_decode,
              "loraSwitch": lora_switch}
    if sampling.stop:
        config["stop"] = list(sampling.stop)
    with harness.mounted(bundle_dir) as url:
        value = harness._drive("generate.html", {**config, "bundleUrl": url}, {},
                               on_progress=progress if stream is not None else None)
    if stream is not None:
        for t in value["tokens"][seen[0]:]:
            stream(t)
    if value.get("logits"):
        raw = np.frombuffer(base64.b64decode(value["logits"]), np.float32)
        value["logits"] = raw.reshape(len(value["tokens"]), -1)
    return value


def browser_generate(bundle_dir: str | Path, prompt: list[int], sampling, backend: str = "wasm", threads: int = 1,
                     stream=None) -> dict:
    """What `nnjit generate --engine browser` reports: tokens, per-step logits, tokens/s."""
    with BrowserHarness(webgpu=backend != "wasm") as h:
        v = generate_in_page(h, bundle_dir, prompt, sampling, threads, stream, return_logits=True, backend=backend)
    r = v["runs"][-1]
    return {"tokens": v["tokens"], "logits": v["logits"], "prefill_tokens_per_s": r["prefillTokensPerS"],
            "decode_tokens_per_s": r["decodeTokensPerS"] or 0.0, "info": v["info"]}
