"""`nnjit compile MODEL.onnx -o OUT [--shape NAME=1x128 ...] [--bind NAME=v1,v2 ...] [--backend wasm]`."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("compile", help="compile an ONNX model into a bundle")
    p.add_argument("model", help="ONNX file")
    p.add_argument("-o", "--out", required=True, help="bundle directory to write")
    p.add_argument("--shape", action="append", metavar="NAME=1x128",
                   help="bind an input's shape (or SYMBOL=128 for a named dynamic dim); repeatable")
    p.add_argument("--bind", action="append", metavar="NAME=FILE.npy|v1,v2,...",
                   help="freeze a graph input to a constant (it leaves the bundle's inputs); for inputs that "
                        "decide shapes, such as Slice starts or Reshape shape; repeatable")
    p.add_argument("--backend", default="wasm,webgpu", help="comma-separated backends to emit kernels for (default: both)")
    p.add_argument("--max-context", type=int, metavar="T",
                   help="decoder models (inputs past.*): KV cache rows, the longest prompt + generation "
                        "(default: the model's position limit, at most 1024)")
    p.add_argument("--prefill", type=int, metavar="S", help="decoder models: prompt tokens per prefill run (default 128)")
    p.add_argument("--tokenizer", metavar="tokenizer.json",
                   help="decoder models: tokenizer to ship in the bundle (default: the zoo's file beside the model)")
    p.add_argument("--kv-shield", action="store_true",
                   help="decoder models: permute each KV head's dimensions by a secret drawn now, folded into the "
                        "Q/K/V and output projections (same outputs; cached keys/values in a secret order; docs/decoders.md)")
    p.add_argument("--weights", choices=["f32", "f16"], default="f32",
                   help="f16: store float32 weights as half floats in weights.bin (half the download; expanded at "
                        "load, kernels compute in float32)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=main)


def main(args) -> int:
    from nnjit.compiler.bind import parse_bind_args
    from nnjit.compiler.onnx_import import parse_shape_args
    from nnjit.compiler.pipeline import compile_model
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    from nnjit.compiler.decoder import compile_decoder, is_decoder
    decoder = not args.shape and not args.bind and is_decoder(args.model)
    if args.kv_shield and not decoder:
        from nnjit.compiler.errors import NnjitError
        raise NnjitError(f"{args.model}: --kv-shield applies to decoder models (past.* inputs, no --shape/--bind)")
    if decoder:
        import secrets
        seed = secrets.randbits(63) if args.kv_shield else None
        s = compile_decoder(args.model, args.out, args.max_context, args.prefill, backends, args.tokenizer,
                            kv_shield_seed=seed, weights_format=args.weights)
        if args.json:
            print(json.dumps(s))
        else:
            print(f"{args.model} → {s['bundle']}: decoder, {s['layers']} layers, max context {s['max_context']}, "
                  f"prefill {s['prefill_len']} tokens/run: {s['steps']} prefill + {s['decode_steps']} decode steps, "
                  f"{s['kernels']} kernels in {s['seconds']} s")
            print(f"memory: weights {s['weights_bytes'] / 2**20:.2f} MiB (weights.bin {s['weights_file_bytes'] / 2**20:.2f} MiB), "
                  f"KV cache {s['kv_cache_bytes'] / 2**20:.2f} MiB, "
                  f"arena {s['arena_bytes'] / 2**20:.2f} MiB")
        return 0
    s = compile_model(args.model, args.out, parse_shape_args(args.shape), backends,
                      bind=parse_bind_args(args.bind), weights=args.weights)
    if args.json:
        print(json.dumps(s))
    else:
        saved = 1 - s["arena_bytes"] / s["intermediate_bytes"] if s["intermediate_bytes"] else 0
        print(f"{args.model} → {s['bundle']}: {s['onnx_nodes']} ONNX nodes → {s['steps']} steps, "
              f"{s['kernels']} kernels ({s['epilogues_fused']} epilogues fused, {s['batchnorm_folded']} BN folded, "
              f"{s['folded']} constants folded) in {s['seconds']} s")
        print(f"memory: weights {s['weights_bytes'] / 2**20:.2f} MiB (weights.bin {s['weights_file_bytes'] / 2**20:.2f} MiB), "
              f"arena {s['arena_bytes'] / 2**20:.2f} MiB "
              f"vs {s['intermediate_bytes'] / 2**20:.2f} MiB of intermediates "
              + (f"({saved:.0%} saved by reuse)" if saved >= 0 else "(only 256-byte alignment padding: nothing to reuse)"))
    return 0
