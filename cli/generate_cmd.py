"""`nnjit generate BUNDLE --prompt "…"`: generate text with a decoder bundle, streaming tokens.

--engine browser (default) runs Session.generate in headless Chromium (the web runtime, wasm or
webgpu); --engine native runs the same kernels through wasmtime. --compare MODEL.onnx also runs
greedy generation in onnxruntime on the exported graph and reports `match` (same tokens) and the
largest per-step logits error.

Exit codes: 0 ok; 2 bad input (bundle, prompt, options), one `ErrorName: message` line on stderr.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from nnjit.compiler.errors import BundleError, NnjitError


class UsageError(NnjitError):
    """An option value the command cannot honour."""


def add_parser(subparsers):
    p = subparsers.add_parser("generate", help="generate text with a decoder bundle (streams tokens)",
                              description="Generate text with a decoder bundle, printing tokens as they come.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--prompt", required=True, help="prompt text (tokenised with the bundle's tokenizer)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--greedy", action="store_true", help="argmax decoding (default when no --temperature)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=["browser", "native"], default="browser")
    p.add_argument("--backend", choices=["wasm", "webgpu"], default="wasm", help="browser engine backend")
    p.add_argument("--threads", type=int, default=1, help="browser engine: wasm kernel threads")
    p.add_argument("--compare", metavar="MODEL.onnx", help="greedy onnxruntime run on the exported graph")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end instead of streaming")
    p.set_defaults(func=main)
    return p


def _tokenizer(bundle: Path, manifest: dict):
    from tokenizers import Tokenizer

    from nnjit.compiler.bundle import verify_file
    t = manifest["decoder"].get("tokenizer")
    if not t:
        raise BundleError(f"{bundle}: the bundle ships no tokenizer (compile with --tokenizer tokenizer.json)")
    return Tokenizer.from_str(verify_file(bundle, t["file"], t["sha256"]).decode())


def encode(tok, dec: dict, text: str) -> list[int]:
    ids = tok.encode(text, add_special_tokens=False).ids
    bos = dec.get("bos_token_id")
    return ([bos] if bos is not None else []) + ids


def main(args) -> int:
    from nnjit.compiler.bundle import read_manifest
    from nnjit.compiler.generate import Sampling
    bundle = Path(args.bundle)
    m = read_manifest(bundle)
    if "decoder" not in m:
        raise BundleError(f"{bundle}: not a decoder bundle (compile a model with past.* inputs)")
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens {args.max_new_tokens}: expected at least 1")
    if args.greedy and args.temperature > 0:
        raise UsageError("--greedy and --temperature > 0 contradict each other")
    dec = m["decoder"]
    tok = _tokenizer(bundle, m)
    prompt = encode(tok, dec, args.prompt)
    stop = [dec["eos_token_id"]] if dec.get("eos_token_id") is not None else []
    s = Sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed, stop)
    stream = None if args.json else (lambda t: (sys.stdout.write(tok.decode([t])), sys.stdout.flush()))
    if not args.json:
        sys.stdout.write(args.prompt)
        sys.stdout.flush()
    if args.engine == "native":
        r = _native(bundle, prompt, s, stream)
    else:
        from nnjit.browsers.generate_page import browser_generate
        r = browser_generate(bundle, prompt, s, args.backend, args.threads, stream)
    out = {"tokens": r["tokens"], "text": tok.decode(r["tokens"]), "prompt_tokens": len(prompt),
           "prefill_tokens_per_s": round(r["prefill_tokens_per_s"], 2),
           "decode_tokens_per_s": round(r["decode_tokens_per_s"], 2), "engine": args.engine}
    if args.compare:
        from nnjit.bench.decoder_ref import OrtDecoder
        ref = OrtDecoder(args.compare).greedy(prompt, len(r["tokens"]), stop[0] if stop else None)
        out["match"] = ref["tokens"] == r["tokens"]
        n = min(len(ref["logits"]), len(r["logits"]))
        if n:
            a, b = np.asarray(r["logits"][:n]), ref["logits"][:n]
            out["max_logits_rel_err"] = float((np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)).max())
        out["reference_tokens"] = ref["tokens"]
        out["reference_decode_tokens_per_s"] = round(ref["decode_tokens_per_s"], 2)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"\n[{len(prompt)} prompt tokens, {out['prefill_tokens_per_s']} tok/s prefill; {len(r['tokens'])} new, "
              f"{out['decode_tokens_per_s']} tok/s decode; {args.engine}]"
              + (f" match onnxruntime: {out['match']}" if args.compare else ""), file=sys.stderr)
    return 0 if not args.compare or out["match"] else 1


def _native(bundle: Path, prompt: list[int], s, stream) -> dict:
    from nnjit.compiler.generate import Decoder
    from nnjit.compiler.native_runtime import NativeSession
    return Decoder(NativeSession(bundle)).run(prompt, s, on_token=stream)
