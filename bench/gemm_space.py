"""Time every schedule of the WASM gemm space (compiler/space.py) in V8 through Node.js.

    python -m nnjit.bench.gemm_space [M N K ...] [--unpacked] [--pw P] [--device all|x86-64|arm64]
                                     [--runs 9] [--rounds 5] [--pw-sweep 8,16,24,48]

Shapes are M N K triples (default: 512 512 512, 128 768 768, 32 1024 784). B is a packed constant
(panel width from space.packing_width unless --pw) or, with --unpacked, a row-major activation.
Prints GFLOP/s per candidate (plain and relaxed SIMD) and the default / best / worst of the space.
--pw-sweep times the default tile only, packed at each listed panel width (the packing rule's data).

All kernels of one shape are instantiated first and timed in interleaved rounds (each round: a
median of --runs calls per kernel; the figure is the best round), so that a load change on a shared
machine hits every candidate alike.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from nnjit.compiler.codegen import wasm
from nnjit.compiler.codegen.gemm_pack import packed_size
from nnjit.compiler.space import packing_width, wasm_gemm_space, wasm_gemm_space_all

_NODE_SCRIPT = r"""
const fs = require('fs');
const spec = JSON.parse(fs.readFileSync(process.argv[2]));
const items = spec.items.map(it => {
  let cur = 64; const addrs = [];
  for (const n of it.sizes) { addrs.push(cur); cur += Math.ceil(n / 64) * 64 + 64; }
  const memory = new WebAssembly.Memory({initial: Math.ceil((cur + 64) / 65536)});
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < (cur >> 2); i++) f32[i] = Math.random() - 0.5;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(it.wasm)), {env: {memory}});
  const run = inst.exports.run;
  for (let i = 0; i < 3; i++) run(...addrs);
  return {name: it.name, flops: it.flops, run, addrs, best: Infinity};
});
for (let round = 0; round < spec.rounds; round++) {
  for (const it of items) {
    const ts = [];
    for (let r = 0; r < spec.runs; r++) { const t0 = performance.now(); it.run(...it.addrs); ts.push(performance.now() - t0); }
    ts.sort((a, b) => a - b);
    it.best = Math.min(it.best, ts[ts.length >> 1] / 1e3);
  }
}
for (const it of items) console.log(JSON.stringify({name: it.name, gflops: it.flops / it.best / 1e9}));
"""


def params(M: int, N: int, K: int, sched: dict, packed: bool) -> dict:
    return dict(M=M, N=N, K=K, batch=[], a_strides=[], b_strides=[], c_strides=[], b_packed=packed,
                bias=None, residual=False, act="none", act_min=None, act_max=None, **sched)


def time_v8(M: int, N: int, K: int, jobs: list[tuple[str, bytes, int]], runs: int, rounds: int) -> dict[str, float]:
    """GFLOP/s per job name; jobs are (name, wasm binary, bytes of B in memory)."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i, (name, binary, b_bytes) in enumerate(jobs):
            path = Path(tmp) / f"k{i}.wasm"
            path.write_bytes(binary)
            items.append(dict(name=name, wasm=str(path), sizes=[M * K * 4, b_bytes, M * N * 4], flops=2.0 * M * N * K))
        (Path(tmp) / "spec.json").write_text(json.dumps(dict(runs=runs, rounds=rounds, items=items)))
        (Path(tmp) / "bench.js").write_text(_NODE_SCRIPT)
        # Node 20 hides relaxed SIMD behind a flag; --no-liftoff times the optimised tier only.
        out = subprocess.run([node, "--experimental-wasm-relaxed-simd", "--no-liftoff", str(Path(tmp) / "bench.js"),
                              str(Path(tmp) / "spec.json")], check=True, capture_output=True, text=True).stdout
    return {r["name"]: r["gflops"] for r in map(json.loads, out.splitlines())}


def _jobs(M, N, K, scheds, packed, pws):
    jobs = []
    for s, pw in zip(scheds, pws):
        plain, relaxed = wasm.build("gemm", params(M, N, K, s, packed))
        b_bytes = (packed_size(K, N, pw) if packed else K * N) * 4
        name = json.dumps(s, sort_keys=True)
        jobs += [(name + " plain", plain, b_bytes), (name + " relaxed", relaxed, b_bytes)]
    return jobs


def bench_space(M, N, K, *, packed=True, pw=None, device="all", runs=9, rounds=5) -> list[tuple[dict, float, float]]:
    pw = (pw or packing_width(M, N, K)) if packed else None
    space = wasm_gemm_space_all(M, N, K, packed_nr=pw) if device == "all" else \
        wasm_gemm_space(M, N, K, packed_nr=pw, device=device)
    t = time_v8(M, N, K, _jobs(M, N, K, space, packed, [pw] * len(space)), runs, rounds)
    return [(s, t[json.dumps(s, sort_keys=True) + " plain"], t[json.dumps(s, sort_keys=True) + " relaxed"]) for s in space]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", nargs="*", type=int, help="M N K [M N K ...]")
    ap.add_argument("--unpacked", action="store_true")
    ap.add_argument("--pw", type=int, default=None)
    ap.add_argument("--device", default="all", choices=["all", "x86-64", "arm64"])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pw-sweep", default=None, help="comma-separated panel widths: time the default tile at each")
    args = ap.parse_args(argv)
    dims = args.shape or [512, 512, 512, 128, 768, 768, 32, 1024, 784]
    if len(dims) % 3:
        raise SystemExit("shapes are M N K triples")
    for M, N, K in zip(dims[0::3], dims[1::3], dims[2::3]):
        if args.pw_sweep:
            base = wasm_gemm_space(M, N, K)[0]
            widths = [int(w) for w in args.pw_sweep.split(",") if int(w) % base["nr"] == 0]
            scheds = [dict(base, pw=w) for w in widths]
            t = time_v8(M, N, K, _jobs(M, N, K, scheds, True, widths), args.runs, args.rounds)
            print(f"gemm {M}x{N}x{K}, tile {base['mr']}x{base['nr']}, GFLOP/s in V8 by packed panel width")
            for s, w in zip(scheds, widths):
                name = json.dumps(s, sort_keys=True)
                print(f"  pw={w:<4} plain {t[name + ' plain']:6.1f}  relaxed {t[name + ' relaxed']:6.1f}")
            continue
        res = bench_space(M, N, K, packed=not args.unpacked, pw=args.pw, device=args.device,
                          runs=args.runs, rounds=args.rounds)
        layout = "row-major B" if args.unpacked else f"B packed pw={args.pw or packing_width(M, N, K)}"
        print(f"gemm {M}x{N}x{K} ({layout}), {len(res)} candidates, GFLOP/s in V8")
        for s, pl, rl in res:
            print(f"  {json.dumps(s):<52} plain {pl:6.1f}  relaxed {rl:6.1f}")
        for col, name in ((1, "plain"), (2, "relaxed")):
            best = max(res, key=lambda r: r[col])
            worst = min(res, key=lambda r: r[col])
            print(f"  {name:>7}: default {res[0][col]:.1f}  best {best[col]:.1f} {json.dumps(best[0])}"
                  f"  worst {worst[col]:.1f} {json.dumps(worst[0])}")


if __name__ == "__main__":
    main()
